#include "server_impl.hpp"

namespace ndrguard::filter {

// Before queue a recipient that cannot be a mailbox key is refused at RCPT (the sender hears
// it); after queue it is accepted and passed on unfiltered (see message_state::looked_up).
static server_limits session_limits(const serve_config& c) {
    server_limits l = c.limits;
    l.refuse_malformed_recipients = c.mode == filter_mode::before_queue;
    return l;
}

// One client connection, driven by completion handlers on the io thread.
struct filter_server::impl::session_state : std::enable_shared_from_this<session_state> {
    session_state(impl& owner, tcp::socket sock, std::string client, bool outbound)
        : m(owner), socket(std::move(sock)), timer(socket.get_executor()), smtp(owner.cfg.hostname, session_limits(owner.cfg)),
          peer(std::move(client)), outbound_only(outbound), fd(socket.native_handle()),
          deadline(std::chrono::steady_clock::now() + owner.limits.session) {}

    impl& m;
    tcp::socket socket;
    asio::steady_timer timer;  // idle timeout of each read
    smtp_server_session smtp;
    std::string peer;
    bool outbound_only;
    int fd;
    std::chrono::steady_clock::time_point deadline;
    std::array<char, 65536> input;  // not zeroed: 64 KB of memset per connection showed in profiles
    std::string output, pending;
    // The idle timeout: each read only moves idle_until; the one timer re-arms itself lazily
    // (arming and cancelling a timer around every read cost more than the reads' own work).
    bool reading = false, idle_expired = false, finished = false;
    std::chrono::steady_clock::time_point idle_until;
    std::size_t charged = 0;  // bytes of m.message_memory that this session's message holds

    // max_message_memory_mb: the message in progress is charged as it grows; one that would
    // take the total past the cap ends in 452 4.3.1 (Postfix retries), unless it is alone.
    void account_memory() {
        const std::size_t now = smtp.content_bytes();
        if (now < charged && !smtp.has_message()) return release_memory(charged - now);
        if (now <= charged) return;
        const std::size_t more = now - charged;
        const std::size_t cap = m.cfg.max_message_memory_mb << 20;
        if (m.message_memory != charged && m.message_memory + more > cap && !smtp.has_message()) {
            smtp.drop_message(smtp::render(smtp::reply_id::insufficient_storage));
            m.write_log("ndrguard: client=" + log_safe(peer) + " action=tempfail reason=max_message_memory_mb used_mb=" +
                        std::to_string(m.message_memory >> 20) + " max_message_memory_mb=" +
                        std::to_string(m.cfg.max_message_memory_mb));
            return release_memory(charged - std::min(charged, smtp.content_bytes()));
        }
        m.message_memory += more;
        charged = now;
    }
    void release_memory(std::size_t bytes) {
        m.message_memory -= bytes;
        charged -= bytes;
    }

    void start() {
        watch_idle(std::chrono::steady_clock::now() + m.limits.idle);
        send(smtp.greeting());  // (TCP_NODELAY comes from the listening socket)
    }

    // While a message is being decided the idle timer only re-arms: every wait of a decision is
    // bounded on its own (database_timeout_ms, reinject_timeout_seconds), and then the answer
    // (or its failed write to a client that has gone) ends or resumes the session.
    void watch_idle(std::chrono::steady_clock::time_point at) {
        timer.expires_at(at);
        timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
            if (ec || self->finished) return;  // the session ended (perhaps just as this fired)
            const auto now = std::chrono::steady_clock::now();
            if (self->reading && now >= self->idle_until) {
                boost::system::error_code ignore;
                self->idle_expired = true;
                self->socket.cancel(ignore);  // idle too long: the read ends, nothing was accepted
                return;
            }
            self->watch_idle(self->reading ? self->idle_until : now + self->m.limits.idle);
        });
    }

    void send(std::string bytes) {
        output = std::move(bytes);
        asio::async_write(socket, asio::buffer(output), [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
            if (ec || self->smtp.closed()) return self->finish();
            self->read();
        });
    }

    void read() {
        const auto now = std::chrono::steady_clock::now();
        if (now > deadline) return say_goodbye(smtp::render(smtp::reply_id::session_too_long, m.cfg.hostname));
        reading = true;
        idle_until = now + m.limits.idle;
        socket.async_read_some(asio::buffer(input), [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
            self->reading = false;
            if (ec && self->idle_expired) return self->say_goodbye(smtp::render(smtp::reply_id::idle_timeout, self->m.cfg.hostname));
            if (ec) return self->finish();  // gone or stopping: nothing is lost
            self->pending += self->smtp.feed(std::string_view(self->input.data(), n));
            self->after_input();
        });
    }

    // A complete message is decided by a decider thread; its answer comes back here.
    void after_input() {
        account_memory();
        if (smtp.has_message()) {
            std::string content = smtp.take_content();
            const bool big = content.size() > (8u << 20);
            return run_message(m.pipeline, smtp.message(), std::move(content), peer, outbound_only,
                                   [self = shared_from_this(), big](std::string answer) {
                                       self->release_memory(self->charged);
                                       if (big) ::malloc_trim(0);  // the heap back to the system
                                       self->pending += self->smtp.complete(answer);
                                       self->after_input();
                                   });
        }
        if (!pending.empty()) return send(std::exchange(pending, {}));
        if (smtp.closed()) return finish();
        read();
    }

    // The last reply, then the end; nothing of an unfinished transaction was accepted.
    void say_goodbye(const std::string& reply) {
        output = reply + "\r\n";
        asio::async_write(socket, asio::buffer(output),
                          [self = shared_from_this()](boost::system::error_code, std::size_t) { self->finish(); });
    }

    void finish() {
        if (finished) return;
        finished = true;
        release_memory(charged);
        boost::system::error_code ignore;
        timer.cancel();
        socket.close(ignore);
        m.session_ended(fd);
    }
};

void filter_server::impl::session_ended(int fd) {
    std::lock_guard lock(mu);
    session_fds.erase(fd);
    --sessions;
    metrics.sessions_active.fetch_sub(1, std::memory_order_relaxed);
    // Only run() waits for sessions to end, and only once stopping: no wake-up per session
    // otherwise (three threads wait on this condition).
    if (stopping) sessions_done.notify_all();
}

void filter_server::impl::accept_next(tcp::acceptor& listener, bool outbound_only) {
    // The peer's address comes with accept() itself (no getpeername() per connection).
    auto from = std::make_shared<tcp::endpoint>();
    listener.async_accept(*from, [this, &listener, outbound_only, from](boost::system::error_code ec, tcp::socket socket) {
        if (stopping) return;
        if (ec) {
            // EMFILE and the like: try again shortly.
            auto retry = std::make_shared<asio::steady_timer>(io, std::chrono::milliseconds(50));
            retry->async_wait([this, &listener, outbound_only, retry](boost::system::error_code) { accept_next(listener, outbound_only); });
            return;
        }
        accept_next(listener, outbound_only);
        std::string peer = from->address().to_string();
        bool over = false;
        {
            std::lock_guard lock(mu);
            over = sessions >= cfg.max_sessions;
            if (!over) {
                ++sessions;
                metrics.sessions.fetch_add(1, std::memory_order_relaxed);
                metrics.sessions_active.fetch_add(1, std::memory_order_relaxed);
                session_fds.insert(socket.native_handle());
            }
        }
        if (over) {
            auto refused = std::make_shared<std::pair<tcp::socket, std::string>>(
                std::move(socket), smtp::render(smtp::reply_id::service_busy, cfg.hostname) + "\r\n");
            asio::async_write(refused->first, asio::buffer(refused->second),
                              [refused](boost::system::error_code, std::size_t) {
                                  boost::system::error_code ignore;
                                  refused->first.close(ignore);
                              });
            write_log("ndrguard: refused a connection: max_sessions=" + std::to_string(cfg.max_sessions) + " reached");
            return;
        }
        std::make_shared<session_state>(*this, std::move(socket), std::move(peer), outbound_only)->start();
    });
}

}  // namespace ndrguard::filter
