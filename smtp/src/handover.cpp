#include "ndrguard/smtp/handover.hpp"

#include <boost/asio.hpp>
#include <chrono>

#include "ndrguard/smtp/address.hpp"

namespace ndrguard::smtp {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

namespace {

// Blocking calls on an Asio socket ignore SO_RCVTIMEO (Asio waits in poll() itself), so every
// step here is an asynchronous operation on a private io_context, run until it ends or its
// timer fires; the timer closes the socket, which ends the operation at once.
class deadline_socket {
public:
    explicit deadline_socket(int timeout_seconds) : timeout_(std::chrono::seconds(timeout_seconds)) {}

    error_code connect(const std::string& host, const std::string& port) {
        error_code not_numeric;
        const auto address = asio::ip::make_address(host, not_numeric);
        if (!not_numeric) {  // the usual next hop, 127.0.0.1:10026: no resolver thread
            const tcp::endpoint to(address, static_cast<std::uint16_t>(std::stoi(port)));
            return run_step([&](auto done) { socket_.async_connect(to, [done](error_code e) { done(e); }); });
        }
        tcp::resolver resolver(io_);
        tcp::resolver::results_type found;
        error_code ec = run_step([&](auto done) {
            resolver.async_resolve(host, port, [&found, done](error_code e, tcp::resolver::results_type r) {
                found = std::move(r);
                done(e);
            });
        }, [&] { resolver.cancel(); });
        if (ec) return ec;
        return run_step([&](auto done) {
            asio::async_connect(socket_, found, [done](error_code e, const tcp::endpoint&) { done(e); });
        });
    }

    error_code write(std::string_view bytes) {
        return run_step([&](auto done) {
            asio::async_write(socket_, asio::buffer(bytes.data(), bytes.size()), [done](error_code e, std::size_t) { done(e); });
        });
    }

    error_code read_some(char* buf, std::size_t size, std::size_t& n) {
        return run_step([&](auto done) {
            socket_.async_read_some(asio::buffer(buf, size), [&n, done](error_code e, std::size_t got) {
                n = got;
                done(e);
            });
        });
    }

private:
    template <class Start>
    error_code run_step(Start start) {
        return run_step(start, [] {});
    }

    // `start(done)` begins the operation; `abandon` stops it when the deadline passes (on top
    // of closing the socket).
    template <class Start, class Abandon>
    error_code run_step(Start start, Abandon abandon) {
        error_code result = asio::error::would_block;
        bool expired = false;
        asio::steady_timer timer(io_, timeout_);
        timer.async_wait([&](error_code ec) {
            if (ec) return;  // the step ended first
            expired = true;
            error_code ignore;
            socket_.close(ignore);
            abandon();
        });
        start([&](error_code ec) {
            result = ec;
            timer.cancel();
        });
        io_.restart();
        io_.run();
        return expired ? error_code(asio::error::timed_out) : result;
    }

    asio::io_context io_;
    tcp::socket socket_{io_};
    std::chrono::seconds timeout_;
};

}  // namespace

handover send_once(const transaction& t, const handover_options& o, const std::function<bool()>& at_the_dot) {
    handover h;
    auto hp = split_host_port(o.next_hop);
    if (!hp) {
        h.reply = {0, "bad next_hop " + o.next_hop};
        return h;
    }
    deadline_socket socket(o.timeout_seconds);
    // What a failed step says; `waiting` names what did not come in time.
    auto failed = [&](error_code ec, std::string_view waiting) {
        h.reply = {0, ec == asio::error::timed_out
                          ? "no " + std::string(waiting) + " within " + std::to_string(o.timeout_seconds) + " s (reinject_timeout_seconds)"
                          : std::string(waiting) + ": " + ec.message()};
        return h;
    };
    if (error_code ec = socket.connect(hp->first, std::to_string(hp->second))) return failed(ec, "connection");
    smtp_client_session client(o.hostname);
    client.hold_final_dot(true);
    std::string out = client.start(t);
    char buf[4096];
    while (true) {
        if (!out.empty())
            if (error_code ec = socket.write(out)) return failed(ec, "write");
        out.clear();
        auto st = client.state();
        if (st == smtp_client_session::status::before_final_dot) {
            if (!at_the_dot()) return h;  // closing now leaves nothing queued
            h.reached = handover::stage::after_dot;
            out = client.final_dot();
            continue;
        }
        if (st == smtp_client_session::status::delivered || st == smtp_client_session::status::refused ||
            st == smtp_client_session::status::broken) {
            h.reply = client.outcome();
            if (st == smtp_client_session::status::delivered) (void)socket.write(smtp_client_session::quit());
            return h;
        }
        std::size_t n = 0;
        if (error_code ec = socket.read_some(buf, sizeof buf, n))
            return failed(ec, client.state() == smtp_client_session::status::connecting ? "greeting" : "reply");
        out = client.feed(std::string_view(buf, n));
    }
}

}  // namespace ndrguard::smtp
