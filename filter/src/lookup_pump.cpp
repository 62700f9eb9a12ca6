#include "lookup_pump.hpp"

namespace ndrguard::filter {

namespace asio = boost::asio;
namespace q = ndrguard::quarantine;

void sent_lookup_pump::soon() {
    if (pump_due_) return;
    pump_due_ = true;
    auto run = [this] {
        pump_due_ = false;
        last_pump_ = std::chrono::steady_clock::now();
        pump();
    };
    const bool busy = std::chrono::steady_clock::now() - last_pump_ < std::chrono::milliseconds(1) &&
                      metrics_.sessions_active.load(std::memory_order_relaxed) > 1;
    if (busy && gather_.count() > 0) {
        gather_timer_.expires_after(gather_);
        gather_timer_.async_wait([run](boost::system::error_code) { run(); });
    } else {
        asio::post(io_, run);
    }
}

void sent_lookup_pump::pump() {
    const auto w = lookups_.advance();
    metrics_.lookup_queries.store(lookups_.queries(), std::memory_order_relaxed);
    // libpq may have closed its socket (a failure) or opened another (a reconnect). Asio lets
    // go of the old number at once, in this same handler: were an accepted client given that
    // number first, Asio's deregistration would take the client's socket out of epoll.
    const int fd = lookups_.socket();
    if (socket_ && (lookups_.connection() != connection_ || socket_->native_handle() != fd)) {
        socket_->release();  // libpq owns (and has closed) the old one
        socket_.reset();
        wait_armed_ = false;
    }
    if (!socket_ && fd >= 0) {
        connection_ = lookups_.connection();
        socket_ = std::make_unique<asio::posix::stream_descriptor>(io_, fd);
    }
    // The next deadline of a connect, query or request: advance() then fails what is late
    // (and drops the connection, let go of above in that same call of the pump).
    const auto due = lookups_.deadline();
    if (due != due_) {
        due_ = due;
        deadline_.cancel();
        if (due != std::chrono::steady_clock::time_point::max()) {
            deadline_.expires_at(due);
            deadline_.async_wait([this](boost::system::error_code ec) {
                if (ec) return;  // re-armed or stopping
                due_ = std::chrono::steady_clock::time_point::max();
                pump();
            });
        }
    }
    if (w == q::async_sent_lookups::wait::none || !socket_ || wait_armed_) return;
    wait_armed_ = true;
    socket_->async_wait(w == q::async_sent_lookups::wait::read ? asio::posix::stream_descriptor::wait_read
                                                              : asio::posix::stream_descriptor::wait_write,
                        [this, generation = connection_](boost::system::error_code) {
                            if (generation != connection_) return;  // an old connection's
                            wait_armed_ = false;
                            pump();
                        });
}

}  // namespace ndrguard::filter
