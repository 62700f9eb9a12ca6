// `ndrguard serve`: the content filter on the network. Client sessions are event-driven on one
// Asio thread (idle and session timeouts by timers; the count bounded by max_sessions, beyond
// which the client gets 421 and Postfix retries); a complete message goes to a pool of decider
// threads, which block on PostgreSQL and the next hop (idle deciders end after a minute). Next-
// hop and database connections are pooled; sent-log records, sent-log lookups and quarantine
// holds of concurrent sessions are grouped into shared transactions (group_commit.hpp); storm
// counts are written and read back by their own thread every storm_sync_ms.
//
// Every message gets exactly one answer, and 250 only after the next hop answered 250 (and,
// for outbound mail, the sent log committed); any internal failure answers 451 so Postfix
// keeps the message.
#pragma once

#include <atomic>
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>

#include "ndrguard/filter/config.hpp"
#include "ndrguard/filter/metrics.hpp"

namespace ndrguard::filter {

class filter_server {
public:
    filter_server(serve_config cfg, std::ostream& log);
    ~filter_server();

    // Binds the listening socket (throws std::runtime_error with the reason on failure).
    void bind();
    // Accepts until stop(); returns when every session has ended (or after a grace period).
    void run();
    // Callable from any thread (a signal handler thread): stops accepting.
    void stop();
    // What it counted so far (read by the metrics endpoint from any thread).
    const filter_metrics& metrics() const;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace ndrguard::filter
