// `ndrguard serve` wired: the deciders, bind, stop and run (which starts the housekeeping threads
// and the io thread). The roles are in the files server_impl.hpp lists.
#include "server_impl.hpp"

namespace ndrguard::filter {

// Deciders: threads that run handle() (blocking on PostgreSQL and the next hop). One more is
// started whenever a job finds none idle; idle ones end after a minute.
void filter_server::impl::decide(std::function<void()> job) {
    std::lock_guard lock(mu);
    decide_jobs.push_back(std::move(job));
    if (idle_deciders == 0) {
        ++deciders;
        std::thread([this] { decider(); }).detach();
    } else {
        decide_ready.notify_one();
    }
}

void filter_server::impl::decider() {
    std::unique_lock lock(mu);
    while (true) {
        ++idle_deciders;
        bool got = decide_ready.wait_for(lock, limits.decider_idle, [&] { return !decide_jobs.empty() || decide_stop; });
        --idle_deciders;
        if (!got || decide_jobs.empty()) break;
        auto job = std::move(decide_jobs.front());
        decide_jobs.pop_front();
        lock.unlock();
        job();
        lock.lock();
    }
    --deciders;
    sessions_done.notify_all();
}

filter_server::filter_server(serve_config cfg, std::ostream& log) : impl_(std::make_unique<impl>(std::move(cfg), log)) {}

const filter_metrics& filter_server::metrics() const { return impl_->metrics; }
filter_server::~filter_server() = default;

namespace {

std::unique_ptr<tcp::acceptor> listen_on(asio::io_context& io, const std::string& where) {
    auto hp = split_host_port(where);
    if (!hp) throw std::runtime_error("want host:port, got " + where);
    tcp::endpoint ep(asio::ip::make_address(hp->first), hp->second);
    auto a = std::make_unique<tcp::acceptor>(io);
    a->open(ep.protocol());
    a->set_option(tcp::acceptor::reuse_address(true));
    a->bind(ep);
    a->listen();
    // Accepted sockets inherit it on Linux: SMTP is a dialogue of small writes, and waiting for
    // the peer's delayed ACK before each one cost ~25 ms a message.
    a->set_option(tcp::no_delay(true));
    return a;
}

}  // namespace

void filter_server::bind() {
    impl_->acceptor = listen_on(impl_->io, impl_->cfg.listen);
    if (!impl_->cfg.outbound_listen.empty()) impl_->outbound_acceptor = listen_on(impl_->io, impl_->cfg.outbound_listen);
    if (!impl_->cfg.policy_listen.empty()) {
        impl& m = *impl_;
        m.policy = std::make_unique<policy_listener>(
            policy_service_context{m.cfg, m.metrics, m.storms_mu, m.storms, m.storm_synced_at_ms, [&m](std::string l) { m.write_log(std::move(l)); }});
    }
}

void filter_server::stop() {
    impl& m = *impl_;
    m.stopping = true;
    asio::post(m.io, [&m] {
        boost::system::error_code ignore;
        if (m.acceptor) m.acceptor->close(ignore);
        if (m.outbound_acceptor) m.outbound_acceptor->close(ignore);
    });
    // Sessions see the end of their input: one between messages ends now; one inside a message
    // finishes deciding and answering it first (only reading is shut), and one cut off mid-DATA
    // was answered nothing, so Postfix still has that message.
    std::lock_guard lock(m.mu);
    for (int fd : m.session_fds) ::shutdown(fd, SHUT_RD);
    m.sessions_done.notify_all();  // run() waits for this
}

void filter_server::run() {
    impl& m = *impl_;
    std::thread retention([&m] { m.retention_loop(); });
    std::thread storm_sync([&m] { m.storm_sync_loop(); });
    auto keep_running = asio::make_work_guard(m.io);
    m.log_timer = std::make_unique<asio::steady_timer>(m.io);
    m.flush_log_every(std::chrono::milliseconds(100));
    m.accept_next(*m.acceptor, false);
    if (m.outbound_acceptor) m.accept_next(*m.outbound_acceptor, true);
    std::thread io_thread([&m] { m.io.run(); });
    if (m.policy) m.policy->start();
    {
        std::unique_lock lock(m.mu);
        m.sessions_done.wait(lock, [&] { return m.stopping.load(); });
        // Let running sessions finish their message (bounded: Postfix retries what is cut off).
        m.sessions_done.wait_for(lock, m.limits.stop_grace, [&] { return m.sessions == 0; });
    }
    if (m.policy) m.policy->stop();  // before the last storm sync, which writes its refusals
    m.storm_sync_stop = true;
    m.sessions_done.notify_all();  // wakes the retention loop and the storm sync (for a last round)
    retention.join();
    storm_sync.join();
    keep_running.reset();
    m.io.stop();
    io_thread.join();
    m.flush_log();
    std::unique_lock lock(m.mu);
    m.decide_stop = true;
    m.decide_ready.notify_all();
    m.sessions_done.wait_for(lock, m.limits.deciders_stop_grace, [&] { return m.deciders == 0; });
}

}  // namespace ndrguard::filter
