// One connection to the next hop (Postfix's second smtpd), driven on an io_context: the pure
// smtp_client_session decides what to send; this only moves bytes, with a deadline on every
// step (connect, each write, each read). Reused across messages by the filter's pool; run on a
// private io_context by send_once (releases, digests).
#pragma once

#include <array>
#include <boost/asio.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ndrguard/smtp/client.hpp"

namespace ndrguard::smtp {

class next_hop_connection : public std::enable_shared_from_this<next_hop_connection> {
public:
    using tcp = boost::asio::ip::tcp;
    // Code 0: no answer; the text says which step failed ("no reply within 120 s
    // (reinject_timeout_seconds)", "connection: Connection refused"), or is empty when
    // at_the_dot declined to send the dot.
    using done_fn = std::function<void(smtp_reply)>;
    // Runs just before the final dot; false closes the connection instead (nothing queued).
    using dot_hook = std::function<bool()>;

    next_hop_connection(boost::asio::io_context& io, std::string ehlo_hostname, std::chrono::seconds step_timeout);

    bool reusable() const { return connected_ && client_.reusable(); }
    // The content of the last message went out: it may be queued, so it is never sent again.
    bool content_sent() const { return client_.content_sent(); }
    // The final dot of the last message went out (with a hook: after it, the message may be queued).
    bool dot_sent() const { return dot_sent_; }

    // `t` must stay alive until `done` runs. When not connected yet, connects to the first
    // endpoint of `to` that answers. A 5xx that ends the session (instead of the greeting or
    // EHLO reply, say) comes back as 451: the next hop refused the connection, not the message.
    // With `at_the_dot`, the content goes without its final dot and the hook decides.
    void send(const std::vector<tcp::endpoint>& to, const transaction& t, done_fn done, dot_hook at_the_dot = {});

    void close();
    // An orderly end of an idle connection: QUIT without waiting (the socket buffer is empty,
    // so it never blocks), then close; the next hop's smtpd process is free at once.
    void quit();

private:
    void begin();
    // `waiting` names what is awaited, for the text of a timeout or error.
    void arm_timer(const char* waiting);
    void drive();
    void fail(const boost::system::error_code& ec);
    void finish(smtp_reply r);

    tcp::socket socket_;
    boost::asio::steady_timer timer_;
    std::chrono::seconds step_timeout_;
    smtp_client_session client_;
    bool connected_ = false;
    bool dot_sent_ = false;
    bool timed_out_ = false;
    std::uint64_t step_ = 0;  // which step the armed timer belongs to (a late expiry is ignored)
    const char* waiting_ = "";
    const transaction* txn_ = nullptr;
    done_fn done_;
    dot_hook at_the_dot_;
    std::string output_;
    std::array<char, 16384> input_{};
};

}  // namespace ndrguard::smtp
