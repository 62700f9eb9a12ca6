#include "ndrguard/quarantine/sent_log_writer.hpp"

#include <vector>

namespace ndrguard::quarantine {

sent_log_writer::sent_log_writer(std::string conninfo, std::size_t max_batch)
    : conninfo_(std::move(conninfo)), max_batch_(max_batch), thread_([this] { run(); }) {}

sent_log_writer::~sent_log_writer() {
    {
        std::lock_guard lock(mu_);
        stopping_ = true;
    }
    wake_writer_.notify_all();
    thread_.join();
}

std::uint64_t sent_log_writer::batches() const {
    std::lock_guard lock(mu_);
    return batches_;
}

bool sent_log_writer::record(sent_message m, std::string& error) {
    auto p = std::make_shared<pending>();
    p->message = std::move(m);
    std::unique_lock lock(mu_);
    if (stopping_) {
        error = "sent log writer is stopping";
        return false;
    }
    queue_.push_back(p);
    wake_writer_.notify_one();
    wake_waiters_.wait(lock, [&] { return p->done; });
    error = p->error;
    return p->ok;
}

void sent_log_writer::run() {
    std::unique_ptr<database> db;
    std::unique_ptr<sent_log> log;
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
        try {
            if (!db) {
                db = std::make_unique<database>(conninfo_);
                log = std::make_unique<sent_log>(*db);
            }
            std::vector<sent_message> messages;
            messages.reserve(batch.size());
            for (const auto& p : batch) messages.push_back(p->message);
            log->record(messages);
        } catch (const std::exception& e) {
            ok = false;
            error = e.what();
            log.reset();  // reconnect for the next batch
            db.reset();
        }
        {
            std::lock_guard lock(mu_);
            ++batches_;
            for (auto& p : batch) {
                p->done = true;
                p->ok = ok;
                p->error = error;
            }
        }
        wake_waiters_.notify_all();
    }
}

}  // namespace ndrguard::quarantine
