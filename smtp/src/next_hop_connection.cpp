#include "ndrguard/smtp/next_hop_connection.hpp"

#include "ndrguard/smtp/replies.hpp"

#include <sys/socket.h>

namespace ndrguard::smtp {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

next_hop_connection::next_hop_connection(asio::io_context& io, std::string ehlo_hostname, std::chrono::seconds step_timeout)
    : socket_(io), timer_(io), step_timeout_(step_timeout), client_(std::move(ehlo_hostname)) {}

void next_hop_connection::send(const std::vector<tcp::endpoint>& to, const transaction& t, done_fn done, dot_hook at_the_dot) {
    done_ = std::move(done);
    at_the_dot_ = std::move(at_the_dot);
    txn_ = &t;
    dot_sent_ = false;
    if (connected_) return begin();
    arm_timer("connection");
    asio::async_connect(socket_, to, [self = shared_from_this()](error_code ec, const tcp::endpoint&) {
        self->timer_.cancel();
        if (ec) return self->fail(ec);
        error_code ignore;
        self->socket_.set_option(tcp::no_delay(true), ignore);
        self->connected_ = true;
        self->begin();
    });
}

void next_hop_connection::close() {
    error_code ignore;
    timer_.cancel();
    socket_.close(ignore);
    connected_ = false;
}

void next_hop_connection::quit() {
    if (connected_) {
        const std::string q = smtp_client_session::quit();
        (void)::send(socket_.native_handle(), q.data(), q.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    }
    close();
}

void next_hop_connection::begin() {
    client_.hold_final_dot(static_cast<bool>(at_the_dot_));
    output_ = client_.start(*txn_);
    drive();
}

void next_hop_connection::arm_timer(const char* waiting) {
    waiting_ = waiting;
    timed_out_ = false;
    const std::uint64_t step = ++step_;
    timer_.expires_after(step_timeout_);
    timer_.async_wait([self = shared_from_this(), step](error_code ec) {
        if (ec || step != self->step_) return;  // cancelled, or the step ended just before
        self->timed_out_ = true;
        error_code ignore;
        self->socket_.cancel(ignore);  // the pending step ends with an error
    });
}

// Sends what the client wants sent, then looks at its state: done, the final dot, or read the
// next reply.
void next_hop_connection::drive() {
    if (!output_.empty()) {
        arm_timer("write");
        asio::async_write(socket_, asio::buffer(output_), [self = shared_from_this()](error_code ec, std::size_t) {
            self->timer_.cancel();
            if (ec) return self->fail(ec);
            self->output_.clear();
            if (self->output_.capacity() > (1u << 20)) self->output_.shrink_to_fit();  // a big message sent: not kept in the pool
            self->drive();
        });
        return;
    }
    auto st = client_.state();
    if (st == smtp_client_session::status::before_final_dot) {
        if (!at_the_dot_()) {  // closing now leaves nothing queued
            close();
            return finish({});
        }
        dot_sent_ = true;
        output_ = client_.final_dot();
        return drive();
    }
    if (st == smtp_client_session::status::delivered || st == smtp_client_session::status::refused)
        return finish(client_.outcome());
    if (st == smtp_client_session::status::broken) {
        smtp_reply r = client_.outcome();
        close();
        if (r.code >= 500) {  // the reply table's next_hop_refused_connection: "451 4.3.0 ..."
            const std::string line = render(reply_id::next_hop_refused_connection, {}, r.text);
            r = {reply_of(reply_id::next_hop_refused_connection).code, line.substr(4)};
        }
        return finish(r);
    }
    arm_timer(st == smtp_client_session::status::connecting ? "greeting" : "reply");
    socket_.async_read_some(asio::buffer(input_), [self = shared_from_this()](error_code ec, std::size_t n) {
        self->timer_.cancel();
        if (ec) return self->fail(ec);
        self->output_ = self->client_.feed(std::string_view(self->input_.data(), n));
        self->drive();
    });
}

void next_hop_connection::fail(const error_code& ec) {
    const std::string waiting = waiting_;
    smtp_reply r{0, timed_out_ ? "no " + waiting + " within " + std::to_string(step_timeout_.count()) +
                                     " s (reinject_timeout_seconds)"
                               : waiting + ": " + ec.message()};
    close();
    finish(std::move(r));
}

void next_hop_connection::finish(smtp_reply r) {
    auto done = std::move(done_);
    done_ = nullptr;
    at_the_dot_ = nullptr;
    txn_ = nullptr;
    done(std::move(r));
}

}  // namespace ndrguard::smtp
