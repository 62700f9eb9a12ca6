// The sent log's group-commit writer: outbound messages of all sessions in one transaction.
// (Lookups: async_lookup.hpp.)
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "ndrguard/quarantine/group_commit.hpp"
#include "ndrguard/quarantine/sent_log.hpp"

namespace ndrguard::quarantine {

struct sent_log_session {
    using item = sent_message;
    using result = bool;
    struct settings {};
    sent_log_session(const std::string& conninfo, const settings&) : db(conninfo), log(db) {}
    std::vector<bool> process(const std::vector<sent_message>& batch) {
        log.record(batch);
        return std::vector<bool>(batch.size(), true);
    }
    database db;
    sent_log log;  // remembers the day partitions it created
};

// A record answered "failed" by the timeout may still be committed: the message is then in the
// sent log once more when Postfix offers it again (harmless: a lookup finds an id, however often
// it was sent).
class sent_log_writer {
public:
    explicit sent_log_writer(std::string conninfo, std::size_t max_batch = 1000,
                             std::chrono::milliseconds wait_timeout = std::chrono::milliseconds(0))
        : commit_(std::move(conninfo), {}, max_batch, wait_timeout) {}
    // Blocks until the message is committed (true), or its batch failed or the wait timed out
    // (false, with `error`).
    bool record(sent_message m, std::string& error) {
        bool ignored = false;
        return commit_.submit(std::move(m), ignored, error);
    }
    void record_async(sent_message m, std::function<void(bool ok, const std::string& error)> done) {
        commit_.submit_async(std::move(m), [done = std::move(done)](bool ok, bool&&, const std::string& error) { done(ok, error); });
    }
    std::uint64_t batches() const { return commit_.batches(); }

private:
    group_commit<sent_log_session> commit_;
};

struct sent_lookup_request {
    std::vector<std::string> message_ids;  // raw or normalised
    std::chrono::system_clock::time_point since;
};

}  // namespace ndrguard::quarantine
