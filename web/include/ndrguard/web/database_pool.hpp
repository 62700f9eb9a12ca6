// A few PostgreSQL connections shared by the release pages, /healthz and the admin API, so that
// requests do not fork a backend each (anyone can send hundreds a second). Bounded: at most
// `size` open; a request waits at most `wait` for one to be free (then database_error, which
// the pages answer with 503). A connection that failed is closed, not returned, and a new one
// is opened when next needed. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "ndrguard/quarantine/database.hpp"

namespace ndrguard::web {

class database_pool {
public:
    database_pool(std::string conninfo, std::size_t size, std::chrono::milliseconds wait);
    database_pool(const database_pool&) = delete;
    database_pool& operator=(const database_pool&) = delete;

    // One connection, exclusively, until the lease ends (back to the pool, or closed by discard()).
    class lease {
    public:
        lease(lease&& other) noexcept;
        lease& operator=(lease&&) = delete;
        ~lease();
        quarantine::database& db() { return *db_; }
        bool reused() const { return reused_; }  // opened by an earlier request (it may have died since)
        void discard();                          // it failed: close it rather than give it back

    private:
        friend class database_pool;
        lease(database_pool* pool, std::unique_ptr<quarantine::database> db, bool reused)
            : pool_(pool), db_(std::move(db)), reused_(reused) {}
        database_pool* pool_;
        std::unique_ptr<quarantine::database> db_;
        bool reused_;
    };

    // throws quarantine::database_error. `fresh`: a new connection, the idle ones closed first
    // (one of them has just failed: the server may have restarted, and they are dead too).
    lease acquire(bool fresh = false);

    // f(database&) on a pooled connection; a failure on a reused connection (the server may
    // have restarted since) is tried once more on a new one. For reads only: f may run twice.
    template <class F>
    auto read(F&& f) -> decltype(f(std::declval<quarantine::database&>())) {
        for (int attempt = 0;; ++attempt) {
            lease l = acquire(attempt > 0);
            try {
                return f(l.db());
            } catch (const std::exception&) {
                l.discard();
                if (!l.reused() || attempt > 0) throw;
            }
        }
    }

    struct counts {
        std::size_t open = 0, idle = 0;
    };
    counts now() const;

private:
    void give_back(std::unique_ptr<quarantine::database> db);
    std::string conninfo_;
    std::size_t size_;
    std::chrono::milliseconds wait_;
    mutable std::mutex mu_;
    std::condition_variable freed_;
    std::vector<std::unique_ptr<quarantine::database>> idle_;
    std::size_t open_ = 0;  // idle and leased, and those being opened
};

}  // namespace ndrguard::web
