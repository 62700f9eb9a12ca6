// Group commit: sessions hand items to one thread, which processes whatever has gathered in one
// transaction (or one query) and wakes each session when its own item is done (or failed).
// Thousands of items a second then cost a few transactions a second, and each session still
// answers 250 only after its item is durable. The same works for reads: many sessions' sent-log
// lookups answered by one query.
//
// Bounded: a submitter has its answer within `wait_timeout`, even when the writer is stuck on a
// frozen server (the database's watchdog ends that call; the writer reconnects for the next
// batch). An item answered "failed" by its timeout is never reported done later: one still
// queued is dropped, one already in a batch may still be committed (see the callers for what
// that means), its result is ignored.
//
// Isolated: a batch that fails for its request (database_error::kind::request, or any other
// exception) is tried again item by item, so that only the item at fault fails. A connection
// failure or a timeout fails the whole batch at once (a dead server gets no storm of retries),
// except that a connection that had worked before is given one more try on a new one (a server
// restart while it was idle).
//
// `Session` is built with `Session(const std::string& conninfo, const settings&)` (again after a
// connection failure) and has `settings`, `item`, `result` and
// `std::vector<result> process(const std::vector<item>&)`, one result per item, throwing on failure.
#pragma once

#include <algorithm>
#include <chrono>
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
    using clock = std::chrono::steady_clock;

    // Connects lazily (and again after a failure) with `conninfo`. `wait_timeout` zero: no bound.
    explicit group_commit(std::string conninfo, typename Session::settings settings = {}, std::size_t max_batch = 1000,
                          std::chrono::milliseconds wait_timeout = std::chrono::milliseconds(0))
        : conninfo_(std::move(conninfo)), settings_(std::move(settings)), max_batch_(max_batch), wait_timeout_(wait_timeout),
          thread_([this] { run(); }), timekeeper_([this] { keep_time(); }) {}
    ~group_commit() {
        {
            std::lock_guard lock(mu_);
            stopping_ = true;
        }
        wake_writer_.notify_all();
        wake_timekeeper_.notify_all();
        thread_.join();
        timekeeper_.join();
    }
    group_commit(const group_commit&) = delete;
    group_commit& operator=(const group_commit&) = delete;

    // Blocks until the item is committed (true, with its result), its batch failed or the wait
    // timed out (false, with `error`).
    bool submit(item it, result& out, std::string& error) {
        auto p = std::make_shared<pending>();
        p->it = std::move(it);
        if (!enqueue(p, false)) {
            error = "writer is stopping";
            return false;
        }
        // Each session waits on its own: only the sessions whose items are done are woken.
        std::unique_lock wait(p->mu);
        if (wait_timeout_.count() > 0) {
            if (!p->cv.wait_until(wait, p->deadline, [&] { return p->finished; })) {
                p->finished = true;
                wait.unlock();
                forget(p);
                error = timeout_error();
                return false;
            }
        } else {
            p->cv.wait(wait, [&] { return p->finished; });
        }
        error = std::move(p->error);
        out = std::move(p->res);
        return p->ok;
    }

    // The same without blocking: `done` runs exactly once, on the writer's thread when the
    // item's batch is committed or failed, or on the timekeeper's at the timeout (keep it short;
    // hand the result to your own thread).
    using callback = std::function<void(bool ok, result&& res, const std::string& error)>;
    void submit_async(item it, callback done) {
        auto p = std::make_shared<pending>();
        p->it = std::move(it);
        p->done = std::move(done);
        if (!enqueue(p, true)) p->done(false, result{}, "writer is stopping");
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
        bool finished = false;  // under mu: answered (done, failed or timed out), exactly once
        callback done;          // set: submit_async
        bool ok = false;
        std::string error;
        clock::time_point deadline = clock::time_point::max();
    };
    using pending_ptr = std::shared_ptr<pending>;

    std::string timeout_error() const {
        return "no answer from PostgreSQL within " + std::to_string(wait_timeout_.count()) + " ms (database_timeout_ms)";
    }

    bool enqueue(const pending_ptr& p, bool timed) {
        {
            std::lock_guard lock(mu_);
            if (stopping_) return false;
            if (wait_timeout_.count() > 0) p->deadline = clock::now() + wait_timeout_;
            queue_.push_back(p);
            if (timed && wait_timeout_.count() > 0) {
                // Those answered already go now, not at their deadline (their memory with them).
                while (!timed_.empty() && answered(*timed_.front())) timed_.pop_front();
                timed_.push_back(p);  // deadlines in submission order: the front is the next one
                if (timed_.size() == 1) wake_timekeeper_.notify_one();
            }
        }
        wake_writer_.notify_one();
        return true;
    }

    // An item answered by its timeout: out of the queue if it is still there (its memory goes now).
    void forget(const pending_ptr& p) {
        std::lock_guard lock(mu_);
        auto at = std::find(queue_.begin(), queue_.end(), p);
        if (at != queue_.end()) queue_.erase(at);
    }

    // Answers an item unless it was answered already; true when this call did.
    static bool settle(pending& p, bool ok, result&& res, const std::string& error) {
        callback done;
        {
            std::lock_guard lock(p.mu);
            if (p.finished) return false;
            p.finished = true;
            p.ok = ok;
            p.error = error;
            if (ok) p.res = std::move(res);
            done = std::move(p.done);
        }
        if (done)
            done(ok, std::move(p.res), p.error);
        else
            p.cv.notify_one();
        return true;
    }

    static bool answered(pending& p) {
        std::lock_guard lock(p.mu);
        return p.finished;
    }

    // Times out asynchronous items whose deadline passed, whatever the writer is doing.
    void keep_time() {
        std::unique_lock lock(mu_);
        while (true) {
            while (!timed_.empty() && answered(*timed_.front())) timed_.pop_front();
            if (stopping_ && timed_.empty()) return;
            if (timed_.empty()) {
                wake_timekeeper_.wait(lock);
                continue;
            }
            pending_ptr front = timed_.front();
            if (clock::now() < front->deadline) {
                wake_timekeeper_.wait_until(lock, front->deadline);
                continue;
            }
            timed_.pop_front();
            auto at = std::find(queue_.begin(), queue_.end(), front);
            if (at != queue_.end()) queue_.erase(at);
            lock.unlock();
            settle(*front, false, result{}, timeout_error());
            lock.lock();
        }
    }

    struct attempt_outcome {
        bool ok = false;
        std::vector<result> results;
        std::string error;
        database_error::kind failure = database_error::kind::request;
    };

    attempt_outcome attempt(std::unique_ptr<Session>& session, const std::vector<item>& items) {
        attempt_outcome a;
        try {
            if (!session) session = std::make_unique<Session>(conninfo_, settings_);
            a.results = session->process(items);
            if (a.results.size() != items.size()) throw database_error("internal: one result per item expected");
            a.ok = true;
        } catch (const database_error& e) {
            a.error = e.what();
            a.failure = e.failure;
        } catch (const std::exception& e) {
            a.error = e.what();
        }
        if (!a.ok && a.failure != database_error::kind::request) {
            session.reset();  // reconnect for the next batch
            proven_ = false;
        }
        if (a.ok) proven_ = true;
        return a;
    }

    void write(std::unique_ptr<Session>& session, std::vector<pending_ptr>& batch) {
        std::vector<item> items;
        items.reserve(batch.size());
        for (const auto& p : batch) items.push_back(std::move(p->it));  // not needed by the pending any more
        const bool had_worked = proven_;
        attempt_outcome a = attempt(session, items);
        // A kept connection that died while idle (a server restart): once more, on a new one.
        if (!a.ok && a.failure == database_error::kind::connection && had_worked) a = attempt(session, items);
        if (a.ok) {
            for (std::size_t i = 0; i < batch.size(); ++i) settle(*batch[i], true, std::move(a.results[i]), "");
            return;
        }
        if (a.failure != database_error::kind::request || batch.size() == 1) {
            for (auto& p : batch) settle(*p, false, result{}, a.error);
            return;
        }
        // One item spoilt the batch: each on its own, so that only that one fails.
        for (std::size_t i = 0; i < batch.size(); ++i) {
            if (answered(*batch[i])) continue;  // timed out meanwhile: answered already, not written now
            std::vector<item> one;
            one.push_back(std::move(items[i]));
            attempt_outcome b = attempt(session, one);
            if (b.ok) {
                settle(*batch[i], true, std::move(b.results[0]), "");
            } else if (b.failure == database_error::kind::request) {
                settle(*batch[i], false, result{}, b.error);
            } else {
                for (std::size_t j = i; j < batch.size(); ++j) settle(*batch[j], false, result{}, b.error);
                return;
            }
        }
    }

    void run() {
        std::unique_ptr<Session> session;
        while (true) {
            std::vector<pending_ptr> batch;
            {
                std::unique_lock lock(mu_);
                wake_writer_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
                if (queue_.empty() && stopping_) return;
                while (!queue_.empty() && batch.size() < max_batch_) {
                    if (!answered(*queue_.front())) batch.push_back(std::move(queue_.front()));
                    queue_.pop_front();
                }
            }
            if (batch.empty()) continue;  // every one answered by its timeout already
            write(session, batch);
            std::lock_guard lock(mu_);
            ++batches_;
        }
    }

    std::string conninfo_;
    typename Session::settings settings_;
    std::size_t max_batch_;
    std::chrono::milliseconds wait_timeout_;
    mutable std::mutex mu_;
    std::condition_variable wake_writer_, wake_timekeeper_;
    std::deque<pending_ptr> queue_;
    std::deque<pending_ptr> timed_;  // asynchronous items with a deadline, oldest first
    bool stopping_ = false;
    bool proven_ = false;  // writer thread: the session has committed a batch since it connected
    std::uint64_t batches_ = 0;
    std::thread thread_;
    std::thread timekeeper_;
};

}  // namespace ndrguard::quarantine
