// One connection to the next hop (moved here from server.cpp as it is; helper "hop" moves it
// into the smtp library).
#pragma once

#include <sys/socket.h>

#include <array>
#include <boost/asio.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "ndrguard/filter/config.hpp"
#include "ndrguard/smtp/client.hpp"
#include "ndrguard/smtp/server.hpp"

namespace ndrguard::filter {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using smtp::smtp_client_session;
using smtp::smtp_reply;
using smtp::transaction;

// One connection to the next hop, driven on the io thread: the pure smtp_client_session decides
// what to send; this only moves bytes, with a timeout on every step. Reused across messages.
class next_hop_connection : public std::enable_shared_from_this<next_hop_connection> {
public:
    using done_fn = std::function<void(smtp_reply)>;  // code 0: no answer (connection failed)

    next_hop_connection(asio::io_context& io, const serve_config& cfg)
        : cfg_(cfg), socket_(io), timer_(io), client_(cfg.hostname) {}

    bool reusable() const { return connected_ && client_.reusable(); }
    // The content of the last message went out: it may be queued, so it is never sent again.
    bool content_sent() const { return client_.content_sent(); }

    // `t` must stay alive until `done` runs.
    void send(const tcp::endpoint& to, const transaction& t, done_fn done) {
        done_ = std::move(done);
        txn_ = &t;
        if (connected_) return begin();
        arm_timer();
        socket_.async_connect(to, [self = shared_from_this()](boost::system::error_code ec) {
            self->timer_.cancel();
            if (ec) return self->fail();
            boost::system::error_code ignore;
            self->socket_.set_option(tcp::no_delay(true), ignore);
            self->connected_ = true;
            self->begin();
        });
    }

    void close() {
        boost::system::error_code ignore;
        timer_.cancel();
        socket_.close(ignore);
        connected_ = false;
    }

    // An orderly end of an idle connection: QUIT without waiting (the socket buffer is empty,
    // so it never blocks), then close; the next hop's smtpd process is free at once.
    void quit() {
        if (connected_) {
            const std::string q = smtp_client_session::quit();
            (void)::send(socket_.native_handle(), q.data(), q.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        }
        close();
    }

private:
    void begin() {
        output_ = client_.start(*txn_);
        drive();
    }

    void arm_timer() {
        timer_.expires_after(std::chrono::seconds(cfg_.reinject_timeout_seconds));
        timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
            if (!ec) {
                boost::system::error_code ignore;
                self->socket_.cancel(ignore);  // the pending step ends with an error
            }
        });
    }

    // Sends what the client wants sent, then looks at its state: done, or read the next reply.
    void drive() {
        if (!output_.empty()) {
            arm_timer();
            asio::async_write(socket_, asio::buffer(output_), [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                self->timer_.cancel();
                if (ec) return self->fail();
                self->output_.clear();
                if (self->output_.capacity() > (1u << 20)) self->output_.shrink_to_fit();  // a big message sent: not kept in the pool
                self->drive();
            });
            return;
        }
        auto st = client_.state();
        if (st == smtp_client_session::status::delivered || st == smtp_client_session::status::refused)
            return finish(client_.outcome());
        if (st == smtp_client_session::status::broken) {
            smtp_reply r = client_.outcome();
            close();
            if (r.code >= 500) r = {451, "4.3.0 Error: next hop refused the connection: " + r.text};
            return finish(r);
        }
        arm_timer();
        socket_.async_read_some(asio::buffer(input_), [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
            self->timer_.cancel();
            if (ec) return self->fail();
            self->output_ = self->client_.feed(std::string_view(self->input_.data(), n));
            self->drive();
        });
    }

    void fail() {
        close();
        finish({});
    }

    void finish(smtp_reply r) {
        auto done = std::move(done_);
        done_ = nullptr;
        txn_ = nullptr;
        done(std::move(r));
    }

    const serve_config& cfg_;
    tcp::socket socket_;
    asio::steady_timer timer_;
    smtp_client_session client_;
    bool connected_ = false;
    const transaction* txn_ = nullptr;
    done_fn done_;
    std::string output_;
    std::array<char, 16384> input_{};
};

}  // namespace ndrguard::filter
