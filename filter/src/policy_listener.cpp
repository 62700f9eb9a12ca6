// The policy service's connections (policy_listener.hpp). One thread, one io_context: every
// connection is a small state machine around ps::request_reader with one timer, a deadline
// of policy_request_timeout_seconds from a request's first byte (a byte now and then does not
// extend it) or of policy_idle_timeout_seconds between requests.
#include "policy_listener.hpp"

#include <sys/socket.h>

#include <array>
#include <cstdio>
#include <thread>
#include <unordered_map>
#include <vector>

#include "ndrguard/policy/decision.hpp"
#include "serve_common.hpp"

namespace ndrguard::filter {

namespace ps = ndrguard::policy;  // (filter::policy is the verdict table)

namespace {

std::int64_t steady_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

struct policy_listener::impl {
    explicit impl(policy_service_context c)
        : ctx(std::move(c)), settings(ps::settings_of(ctx.cfg)),
          rate(std::chrono::seconds(ctx.cfg.policy_null_sender_window_seconds), 100000) {}

    struct session;
    policy_service_context ctx;
    ps::service_settings settings;
    ps::null_sender_rate rate;  // the policy thread only
    asio::io_context io{1};
    tcp::acceptor acceptor{io};
    std::thread thread;
    std::unordered_map<session*, std::weak_ptr<session>> sessions;  // the policy thread only

    void accept_next();
    std::string answer(const ps::policy_request& r);
};

struct policy_listener::impl::session : std::enable_shared_from_this<session> {
    session(impl& o, tcp::socket s) : owner(o), sock(std::move(s)), timer(o.io) {
        boost::system::error_code ec;
        auto ep = sock.remote_endpoint(ec);
        peer = ec ? "-" : ep.address().to_string() + ":" + std::to_string(ep.port());
    }
    impl& owner;
    tcp::socket sock;
    asio::steady_timer timer;
    ps::request_reader reader;
    std::array<char, 4096> buf{};
    std::string out;
    std::vector<ps::policy_request> requests;
    std::chrono::steady_clock::time_point deadline;
    bool in_request = false, closed = false;
    std::string peer;

    void start() {
        deadline = std::chrono::steady_clock::now() + std::chrono::seconds(owner.ctx.cfg.policy_idle_timeout_seconds);
        arm();
        read();
    }
    void arm() {
        timer.expires_at(deadline);
        timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
            if (ec || self->closed) return;
            if (std::chrono::steady_clock::now() < self->deadline) return self->arm();
            self->owner.ctx.log("ndrguard: policy timeout peer=" + self->peer + (self->in_request ? " state=in_request" : " state=idle") +
                                " note=closed");
            self->close();
        });
    }
    void read() {
        sock.async_read_some(asio::buffer(buf), [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
            if (ec || self->closed) return self->close();
            self->got(n);
        });
    }
    void got(std::size_t n) {
        requests.clear();
        const bool ok = reader.feed(std::string_view(buf.data(), n), requests);
        for (const auto& r : requests) out += owner.answer(r);
        if (!ok) {
            // SMTPD_POLICY_README: no answer to a request in trouble; log and disconnect.
            owner.ctx.metrics.policy_requests[5].fetch_add(1, std::memory_order_relaxed);
            owner.ctx.log("ndrguard: policy malformed peer=" + peer + " error=" + std::string(ps::to_string(reader.error())) +
                          " note=closed_unanswered");
        }
        const bool now_in = ok && reader.in_request();
        const auto now = std::chrono::steady_clock::now();
        if (now_in && !in_request) deadline = now + std::chrono::seconds(owner.ctx.cfg.policy_request_timeout_seconds);
        else if (!now_in) deadline = now + std::chrono::seconds(owner.ctx.cfg.policy_idle_timeout_seconds);
        if (now_in != in_request || !now_in) arm();
        in_request = now_in;
        if (out.empty()) return ok ? read() : close();
        asio::async_write(sock, asio::buffer(out), [self = shared_from_this(), ok](boost::system::error_code ec, std::size_t) {
            self->out.clear();
            if (ec || !ok || self->closed) return self->close();
            self->read();
        });
    }
    void close() {
        if (closed) return;
        closed = true;
        boost::system::error_code ignore;
        sock.shutdown(tcp::socket::shutdown_both, ignore);
        sock.close(ignore);
        timer.cancel();
        owner.sessions.erase(this);
        owner.ctx.metrics.policy_connections_active.fetch_sub(1, std::memory_order_relaxed);
    }
};

void policy_listener::impl::accept_next() {
    acceptor.async_accept([this](boost::system::error_code ec, tcp::socket sock) {
        if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
        if (!ec) {
            if (sessions.size() >= ctx.cfg.policy_max_connections) {
                boost::system::error_code ignore;
                auto ep = sock.remote_endpoint(ignore);
                ctx.log("ndrguard: policy busy peer=" + (ignore ? std::string("-") : ep.address().to_string()) +
                        " open=" + std::to_string(sessions.size()) + " note=closed");
                sock.close(ignore);
            } else {
                boost::system::error_code ignore;
                sock.set_option(tcp::no_delay(true), ignore);
                auto s = std::make_shared<session>(*this, std::move(sock));
                sessions.emplace(s.get(), s);
                ctx.metrics.policy_connections_active.fetch_add(1, std::memory_order_relaxed);
                s->start();
            }
        }
        accept_next();
    });
}

std::string policy_listener::impl::answer(const ps::policy_request& r) {
    const auto started = std::chrono::steady_clock::now();
    const auto now = std::chrono::system_clock::now();
    const auto mailbox = ps::candidate_mailbox(r, settings);
    ps::mailbox_facts f;
    if (mailbox) {
        if (settings.null_sender_limit > 0) f.null_senders = rate.hit(*mailbox, now);
        const std::int64_t synced = ctx.storm_synced_at_ms.load(std::memory_order_relaxed);
        f.state_fresh = synced > 0 && steady_ms() - synced <= std::int64_t(ctx.cfg.policy_max_state_age_seconds) * 1000;
        std::lock_guard lock(ctx.storms_mu);
        f.in_storm = ctx.storms.in_storm(*mailbox);
        f.storm_id = ctx.storms.storm_id(*mailbox);
    }
    const ps::answer a = ps::decide(r, f, settings);
    if (a.count_refusal) {
        // Counted as the filter counts a bounce it refused: it cannot be verified (no content),
        // and it was rejected. The storm's window, and so its end, sees it.
        quarantine::ndr_tally t;
        t.unverifiable = 1;
        t.rejected = 1;
        std::lock_guard lock(ctx.storms_mu);
        ctx.storms.observe(*mailbox, t, {}, {}, now);
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    ctx.metrics.policy_requests[static_cast<std::size_t>(a.outcome)].fetch_add(1, std::memory_order_relaxed);
    ctx.metrics.policy_seconds.observe(seconds);
    char us[32];
    std::snprintf(us, sizeof us, "%.1f", seconds * 1e6);
    std::string line = "ndrguard: policy queue_id=" + log_safe(r.queue_id, 40) + " client=" + log_safe(r.client_address, 60) +
                       " helo=" + log_safe(r.helo_name, 100) + " from=<" + (r.sender.empty() ? "" : log_safe(r.sender)) +
                       "> to=<" + log_safe(r.recipient) + "> state=" + log_safe(r.protocol_state, 20) +
                       " result=" + std::string(ps::to_string(a.outcome)) + " reason=" + std::string(a.reason);
    if (mailbox) {
        if (f.storm_id) line += " storm_id=" + std::to_string(f.storm_id);
        if (settings.null_sender_limit > 0) line += " null_senders=" + std::to_string(f.null_senders);
    }
    line += " action=\"" + a.action + "\" us=" + us;
    ctx.log(std::move(line));
    return ps::wire_answer(a);
}

policy_listener::policy_listener(policy_service_context ctx) : impl_(std::make_unique<impl>(std::move(ctx))) {
    auto hp = split_host_port(impl_->ctx.cfg.policy_listen);
    if (!hp) throw std::runtime_error("policy_listen: want host:port, got " + impl_->ctx.cfg.policy_listen);
    tcp::endpoint ep(asio::ip::make_address(hp->first), hp->second);
    auto& a = impl_->acceptor;
    a.open(ep.protocol());
    a.set_option(tcp::acceptor::reuse_address(true));
    a.bind(ep);
    a.listen(asio::socket_base::max_listen_connections);
}

policy_listener::~policy_listener() { stop(); }

void policy_listener::start() {
    impl_->accept_next();
    impl_->thread = std::thread([m = impl_.get()] { m->io.run(); });
}

void policy_listener::stop() {
    impl& m = *impl_;
    if (!m.thread.joinable()) return;
    asio::post(m.io, [&m] {
        boost::system::error_code ignore;
        m.acceptor.close(ignore);
        std::vector<std::shared_ptr<impl::session>> open;
        for (auto& [p, w] : m.sessions)
            if (auto s = w.lock()) open.push_back(std::move(s));
        for (auto& s : open) s->close();
    });
    m.thread.join();
}

}  // namespace ndrguard::filter
