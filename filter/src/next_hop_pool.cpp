#include "next_hop_pool.hpp"

#include "ndrguard/smtp/address.hpp"

namespace ndrguard::filter {

using smtp::smtp_reply;
using smtp::split_host_port;
using smtp::transaction;
using tcp = boost::asio::ip::tcp;

void next_hop_pool::send(const transaction& t, std::function<void(smtp_reply)> done) {
    if (endpoints_.empty()) {
        try {
            auto hp = split_host_port(cfg_.next_hop);
            tcp::resolver resolver(io_);
            endpoints_.push_back(*resolver.resolve(hp->first, std::to_string(hp->second)).begin());
        } catch (const std::exception&) {
            return done({0, "cannot resolve " + cfg_.next_hop});
        }
    }
    attempt(t, std::move(done), true);
}

void next_hop_pool::attempt(const transaction& t, std::function<void(smtp_reply)> done, bool may_reuse) {
    std::shared_ptr<next_hop_connection> c;
    while (may_reuse && !idle_.empty() && !c) {
        c = std::move(idle_.back().connection);
        idle_.pop_back();
        if (!c->reusable()) c.reset();
    }
    const bool reused = c != nullptr;
    if (!c) c = std::make_shared<next_hop_connection>(io_, cfg_.hostname, limits_.reinject);
    c->send(endpoints_, t, [this, c, reused, &t, done = std::move(done)](smtp_reply r) mutable {
        park(c);
        // A pooled connection the next hop closed meanwhile (perhaps after a 421) fails
        // before the content went out: the message cannot be queued there, so it goes again
        // on a new connection (the other pooled ones may be as stale).
        if (r.code == 0 && reused && !c->content_sent()) return attempt(t, std::move(done), false);
        if (r.code == 0) r.text = cfg_.next_hop;  // "cannot reach the next hop: HOST:PORT"
        done(std::move(r));
    });
}

void next_hop_pool::park(const std::shared_ptr<next_hop_connection>& c) {
    if (!c->reusable()) return c->close();
    if (idle_.size() >= 64) return c->quit();
    idle_.push_back({c, std::chrono::steady_clock::now()});
    sweep_by(idle_.size() > static_cast<std::size_t>(cfg_.next_hop_max_idle) ? limits_.next_hop_burst_grace : idle_period());
}

void next_hop_pool::sweep_by(std::chrono::steady_clock::duration within) {
    const auto at = std::chrono::steady_clock::now() + within;
    if (sweep_armed_ && sweep_at_ <= at) return;
    sweep_armed_ = true;
    sweep_at_ = at;
    sweep_.expires_at(at);  // cancels the wait armed before, whose handler then does nothing
    sweep_.async_wait([this](boost::system::error_code ec) {
        if (ec) return;
        sweep_armed_ = false;
        sweep();
    });
}

void next_hop_pool::sweep() {
    const auto now = std::chrono::steady_clock::now();
    const auto max_idle = static_cast<std::size_t>(cfg_.next_hop_max_idle);
    const auto burst_grace = limits_.next_hop_burst_grace;
    std::size_t close = 0;
    while (close < idle_.size() &&
           (idle_[close].since <= now - limits_.next_hop_idle ||
            (idle_.size() - close > max_idle && idle_[close].since <= now - burst_grace)))
        idle_[close++].connection->quit();
    idle_.erase(idle_.begin(), idle_.begin() + static_cast<std::ptrdiff_t>(close));
    if (!idle_.empty()) sweep_by(idle_.size() > max_idle ? burst_grace : idle_period());
}

}  // namespace ndrguard::filter
