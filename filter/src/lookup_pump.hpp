// The sent-log lookup pump (io thread only): drives the non-blocking PostgreSQL connection of
// quarantine::async_sent_lookups on the io thread, so that lookups of concurrent sessions go
// out as one query and nothing blocks the loop.
//
// Lookups asked while the io thread works through one batch of ready sockets go out as one
// query: the pump is posted, so it runs after the handlers already queued. When busy (the
// last query left less than 1 ms ago, and other sessions are open that may ask too), a
// lookup also waits lookup_gather_microseconds for more to come: each query costs
// PostgreSQL about as much as the lookups in it together.
#pragma once

#include <boost/asio.hpp>
#include <chrono>
#include <cstdint>
#include <memory>

#include "ndrguard/filter/metrics.hpp"
#include "ndrguard/quarantine/async_lookup.hpp"

namespace ndrguard::filter {

class sent_lookup_pump {
public:
    sent_lookup_pump(boost::asio::io_context& io, quarantine::async_sent_lookups& lookups, filter_metrics& metrics,
                     std::chrono::microseconds gather)
        : io_(io), lookups_(lookups), metrics_(metrics), gather_(gather) {}

    // After a submit(): the lookup goes out with the others asked meanwhile.
    void soon();

private:
    void pump();

    boost::asio::io_context& io_;
    quarantine::async_sent_lookups& lookups_;
    filter_metrics& metrics_;
    const std::chrono::microseconds gather_;
    // The lookups' PostgreSQL socket, watched by the io thread.
    std::unique_ptr<boost::asio::posix::stream_descriptor> socket_;
    std::uint64_t connection_ = 0;
    bool wait_armed_ = false;
    boost::asio::steady_timer deadline_{io_};
    std::chrono::steady_clock::time_point due_ = std::chrono::steady_clock::time_point::max();
    bool pump_due_ = false;
    boost::asio::steady_timer gather_timer_{io_};
    std::chrono::steady_clock::time_point last_pump_{};
};

}  // namespace ndrguard::filter
