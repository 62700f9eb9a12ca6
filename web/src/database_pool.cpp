#include "ndrguard/web/database_pool.hpp"

namespace ndrguard::web {

database_pool::database_pool(std::string conninfo, std::size_t size, std::chrono::milliseconds wait)
    : conninfo_(std::move(conninfo)), size_(size == 0 ? 1 : size), wait_(wait) {}

database_pool::lease::lease(lease&& other) noexcept
    : pool_(other.pool_), db_(std::move(other.db_)), reused_(other.reused_) {}

database_pool::lease::~lease() {
    if (db_) pool_->give_back(std::move(db_));
}

void database_pool::lease::discard() {
    if (!db_) return;
    db_.reset();
    pool_->give_back(nullptr);
}

void database_pool::give_back(std::unique_ptr<quarantine::database> db) {
    {
        std::lock_guard lock(mu_);
        if (db) idle_.push_back(std::move(db));
        else --open_;
    }
    freed_.notify_one();
}

database_pool::lease database_pool::acquire(bool fresh) {
    std::unique_lock lock(mu_);
    if (fresh) {
        std::vector<std::unique_ptr<quarantine::database>> suspect;
        suspect.swap(idle_);
        open_ -= suspect.size();
        lock.unlock();
        suspect.clear();  // closed outside the lock
        lock.lock();
    }
    const auto until = std::chrono::steady_clock::now() + wait_;
    for (;;) {
        if (!idle_.empty() && !fresh) {
            auto db = std::move(idle_.back());
            idle_.pop_back();
            return lease(this, std::move(db), true);
        }
        if (fresh && open_ >= size_ && !idle_.empty()) {  // room for the new one
            idle_.pop_back();
            --open_;
        }
        if (open_ < size_) {
            ++open_;
            lock.unlock();
            try {
                // connect_timeout (conninfo_with_deadlines) bounds this.
                return lease(this, std::make_unique<quarantine::database>(conninfo_), false);
            } catch (...) {
                give_back(nullptr);
                throw;
            }
        }
        if (freed_.wait_until(lock, until) == std::cv_status::timeout && idle_.empty() && open_ >= size_)
            throw quarantine::database_error("all " + std::to_string(size_) + " database connections of the web pages busy for " +
                                             std::to_string(wait_.count()) + " ms");
    }
}

database_pool::counts database_pool::now() const {
    std::lock_guard lock(mu_);
    return {open_, idle_.size()};
}

}  // namespace ndrguard::web
