// Idle next-hop connections (io thread only): Postfix opens a new SMTP session for most
// messages, and a fresh connection to the next hop per message cost ~20 ms here. Each idle one
// holds a process of the next hop's smtpd: after a burst at most next_hop_max_idle are kept
// (below its process limit, so that releases and digests find a free one), each for about
// next_hop_idle_seconds (before the next hop's own timeout closes it under us).
#pragma once

#include <boost/asio.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "ndrguard/filter/config.hpp"
#include "ndrguard/filter/deadlines.hpp"
#include "ndrguard/smtp/client.hpp"
#include "ndrguard/smtp/next_hop_connection.hpp"
#include "ndrguard/smtp/server.hpp"

namespace ndrguard::filter {

using smtp::next_hop_connection;

class next_hop_pool {
public:
    next_hop_pool(boost::asio::io_context& io, const serve_config& cfg, const deadlines& limits)
        : io_(io), cfg_(cfg), limits_(limits) {}

    // Reinjects `t` (alive until `done` runs); on the io thread.
    void send(const smtp::transaction& t, std::function<void(smtp::smtp_reply)> done);

private:
    void attempt(const smtp::transaction& t, std::function<void(smtp::smtp_reply)> done, bool may_reuse);
    // Back into the pool, or closed when it cannot carry another message.
    void park(const std::shared_ptr<next_hop_connection>& c);

    // Under load every connection is idle for a moment between two messages: a pool cut to
    // next_hop_max_idle at once would close and open connections all the time (~20 ms each).
    // So the ones beyond it are closed once idle for next_hop_burst_grace, the rest after
    // next_hop_idle_seconds, by one timer (none armed and cancelled per message).
    std::chrono::milliseconds idle_period() const {
        return std::chrono::duration_cast<std::chrono::milliseconds>(limits_.next_hop_idle) / 2;
    }
    void sweep_by(std::chrono::steady_clock::duration within);
    // idle_ is in the order the connections were parked (taken from the back): the longest
    // idle first.
    void sweep();

    struct idle {
        std::shared_ptr<next_hop_connection> connection;
        std::chrono::steady_clock::time_point since;
    };
    boost::asio::io_context& io_;
    const serve_config& cfg_;
    const deadlines& limits_;
    std::vector<boost::asio::ip::tcp::endpoint> endpoints_;  // the first address of next_hop
    std::vector<idle> idle_;  // the most recently used last: taken first
    boost::asio::steady_timer sweep_{io_};
    bool sweep_armed_ = false;
    std::chrono::steady_clock::time_point sweep_at_{};
};

}  // namespace ndrguard::filter
