// The policy service's listener (policy_listen): Postfix's check_policy_service connections on a
// thread and io_context of their own, so that its answers never wait behind the filter's
// sessions. Each request is read by policy::request_reader, decided by policy::decide from the
// filter's storm tracker (under storms_mu; never PostgreSQL) and the null-sender rate, answered,
// logged and counted. A refusal is counted into the storm tracker like a bounce the filter saw.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "ndrguard/filter/config.hpp"
#include "ndrguard/filter/metrics.hpp"
#include "ndrguard/quarantine/storm.hpp"

namespace ndrguard::filter {

struct policy_service_context {
    const serve_config& cfg;
    filter_metrics& metrics;
    std::mutex& storms_mu;
    quarantine::storm_tracker& storms;  // under storms_mu
    // When the storm state was last read from PostgreSQL (steady clock, ms since its epoch; 0: never).
    const std::atomic<std::int64_t>& storm_synced_at_ms;
    std::function<void(std::string)> log;
};

class policy_listener {
public:
    explicit policy_listener(policy_service_context ctx);  // binds cfg.policy_listen (throws when it cannot)
    ~policy_listener();
    void start();  // its thread
    void stop();   // closes the listener and every connection, joins the thread

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace ndrguard::filter
