// Group commit: sessions hand items to one thread, which processes whatever has gathered in one
// transaction (or one query) and wakes each session when its own item is done (or failed).
// Thousands of items a second then cost a few transactions a second, and each session still
// answers 250 only after its item is durable. The same works for reads: many sessions' sent-log
// lookups answered by one query.
//
// `Session` is built on a connection (`Session(database&, const settings&)`, again after a
// failure) and has `settings`, `item`, `result` and
// `std::vector<result> process(const std::vector<item>&)`, one result per item, throwing on failure.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "ndrguard/quarantine/database.hpp"

namespace ndrguard::quarantine {

template <class Session>
class group_commit {
public:
    using item = typename Session::item;
    using result = typename Session::result;

    // Connects lazily (and again after a failure) with `conninfo`.
    explicit group_commit(std::string conninfo, typename Session::settings settings = {}, std::size_t max_batch = 1000)
        : conninfo_(std::move(conninfo)), settings_(std::move(settings)), max_batch_(max_batch), thread_([this] { run(); }) {}
    ~group_commit() {
        {
            std::lock_guard lock(mu_);
            stopping_ = true;
        }
        wake_writer_.notify_all();
        thread_.join();
    }
    group_commit(const group_commit&) = delete;
    group_commit& operator=(const group_commit&) = delete;

    // Blocks until the item is committed (true, with its result) or its batch failed (false,
    // with `error`).
    bool submit(item it, result& out, std::string& error) {
        auto p = std::make_shared<pending>();
        p->it = std::move(it);
        {
            std::lock_guard lock(mu_);
            if (stopping_) {
                error = "writer is stopping";
                return false;
            }
            queue_.push_back(p);
        }
        wake_writer_.notify_one();
        // Each session waits on its own: only the sessions whose items are done are woken.
        std::unique_lock wait(p->mu);
        p->cv.wait(wait, [&] { return p->finished; });
        error = std::move(p->error);
        out = std::move(p->res);
        return p->ok;
    }

    // The same without blocking: `done` runs on the writer's thread when the item's batch is
    // committed or failed (keep it short; hand the result to your own thread).
    using callback = std::function<void(bool ok, result&& res, const std::string& error)>;
    void submit_async(item it, callback done) {
        auto p = std::make_shared<pending>();
        p->it = std::move(it);
        p->done = std::move(done);
        {
            std::lock_guard lock(mu_);
            if (!stopping_) {
                queue_.push_back(p);
                p = nullptr;
            }
        }
        if (p) {
            p->done(false, result{}, "writer is stopping");
            return;
        }
        wake_writer_.notify_one();
    }

    std::uint64_t batches() const {  // transactions written so far (for logs and metrics)
        std::lock_guard lock(mu_);
        return batches_;
    }

private:
    struct pending {
        item it;
        result res{};
        std::mutex mu;
        std::condition_variable cv;
        bool finished = false;
        callback done;  // set: submit_async
        bool ok = false;
        std::string error;
    };

    void run() {
        std::unique_ptr<database> db;
        std::unique_ptr<Session> session;
        while (true) {
            std::vector<std::shared_ptr<pending>> batch;
            {
                std::unique_lock lock(mu_);
                wake_writer_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
                if (queue_.empty() && stopping_) return;
                while (!queue_.empty() && batch.size() < max_batch_) {
                    batch.push_back(std::move(queue_.front()));
                    queue_.pop_front();
                }
            }
            bool ok = true;
            std::string error;
            std::vector<result> results;
            try {
                if (!session) {
                    db = std::make_unique<database>(conninfo_);
                    session = std::make_unique<Session>(*db, settings_);
                }
                std::vector<item> items;
                items.reserve(batch.size());
                for (const auto& p : batch) items.push_back(p->it);
                results = session->process(items);
                if (results.size() != batch.size()) throw database_error("internal: one result per item expected");
            } catch (const std::exception& e) {
                ok = false;
                error = e.what();
                session.reset();  // reconnect for the next batch
                db.reset();
            }
            for (std::size_t i = 0; i < batch.size(); ++i) {
                batch[i]->ok = ok;
                batch[i]->error = error;
                if (ok) batch[i]->res = std::move(results[i]);
                if (batch[i]->done) {
                    batch[i]->done(ok, std::move(batch[i]->res), error);
                    continue;
                }
                {
                    std::lock_guard done(batch[i]->mu);
                    batch[i]->finished = true;
                }
                batch[i]->cv.notify_one();
            }
            std::lock_guard lock(mu_);
            ++batches_;
        }
    }

    std::string conninfo_;
    typename Session::settings settings_;
    std::size_t max_batch_;
    mutable std::mutex mu_;
    std::condition_variable wake_writer_;
    std::deque<std::shared_ptr<pending>> queue_;
    bool stopping_ = false;
    std::uint64_t batches_ = 0;
    std::thread thread_;
};

}  // namespace ndrguard::quarantine
