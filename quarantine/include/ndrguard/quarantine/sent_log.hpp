// The sent log (sql/0001_sent_log.sql): what this site sent, by Message-ID, kept in day
// partitions. Group-commit writes: sent_log_writer.hpp; non-blocking lookups: async_lookup.hpp.
// Every failure is a database_error.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "ndrguard/quarantine/database.hpp"

namespace ndrguard::quarantine {

struct sent_message {
    std::string message_id;  // as written in the header; normalised here
    std::string sender;
    std::vector<std::string> recipients;
    std::chrono::system_clock::time_point sent_at;
};

struct sent_match {
    std::string message_id;  // normalised
    std::chrono::system_clock::time_point sent_at;  // its latest send
};

// Warm-up (DESIGN.md): a bounce may refer to a message up to `bounce_window_days` old, so until
// the sent log's first day reaches that far back, "not in the sent log" may only mean "sent
// before the log began". `first_day`: none when the log is empty (or not read yet).
bool in_warm_up(std::optional<day> first_day, std::chrono::system_clock::time_point now, int bounce_window_days);

class sent_log {
public:
    explicit sent_log(database& db) : db_(db) {}

    // Records a batch in one transaction (one INSERT for the whole batch, the day partitions
    // created first when missing). Messages whose id does not normalise are skipped; the
    // number recorded is returned.
    std::size_t record(const std::vector<sent_message>& batch);

    // Which of these ids (raw or normalised) were sent on or after `since`.
    std::vector<sent_match> lookup(const std::vector<std::string>& message_ids,
                                   std::chrono::system_clock::time_point since);

    // Drops whole days before `first_kept`; returns how many day partitions went.
    std::size_t drop_days_before(day first_kept);

    // The days present, oldest first.
    std::vector<day> days();

private:
    void ensure_partition(day d);
    database& db_;
    std::set<day> known_days_;
};

}  // namespace ndrguard::quarantine
