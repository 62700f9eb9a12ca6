// Helpers shared by the libpqxx code of this library (not installed, not seen by callers).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <pqxx/pqxx>
#include <string>
#include <thread>
#include <vector>

#include "ndrguard/quarantine/database.hpp"
#include "ndrguard/quarantine/held_items.hpp"
#include "ndrguard/quarantine/storms.hpp"

namespace ndrguard::quarantine {

namespace pg {

// A connection's socket as the watchdog sees it: its own duplicate of the descriptor (shutting
// that down ends libpq's wait on the original, and the number can never be another socket's,
// whatever libpq closes meanwhile) and the deadline of the operation using it.
struct watched_socket {
    int fd = -1;
    std::chrono::milliseconds timeout{0};
    std::atomic<bool> cut{false};
    // Under the watchdog's mutex: the thread that used it last (a pooled connection moves
    // between threads), the operation that armed it (only that one disarms it), its deadline.
    std::thread::id user;
    std::uint64_t armed_by = 0;
    std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
};
// Registers a connection's socket (duplicated here; -1 or a zero timeout: never cut).
std::shared_ptr<watched_socket> watch_socket(int fd, std::chrono::milliseconds timeout);
void unwatch_socket(watched_socket& s);  // before the connection goes; closes the duplicate

// One operation of this thread (pg::guarded, outermost call): every connection the thread uses
// during it is armed with the operation's start + its timeout, and disarmed at the end.
class operation {
public:
    operation();
    ~operation();
    operation(const operation&) = delete;
    operation& operator=(const operation&) = delete;
    // A connection of this operation was cut by the watchdog (the failure is a timeout), and
    // after how long.
    bool cut(std::chrono::milliseconds& timeout) const;
};
void note_use(const std::shared_ptr<watched_socket>& s);  // database::native(): this thread uses it now
bool used_by_current_operation(const watched_socket& s);

}  // namespace pg

struct database::impl {
    impl(const std::string& conninfo, std::chrono::milliseconds timeout);
    ~impl();
    pqxx::connection conn;
    bool lookup_prepared = false;  // the sent log lookup, prepared once per connection
    std::shared_ptr<pg::watched_socket> watch;
};

namespace pg {

[[noreturn]] void rethrow_as_database_error(const char* what, const operation& op);

// Any libpqxx or libpq failure becomes a database_error saying what we were doing, and of which
// kind; the whole call is one operation under the connections' deadlines.
template <class F>
auto guarded(const char* what, F&& f) -> decltype(f()) {
    operation op;
    try {
        return f();
    } catch (...) {
        rethrow_as_database_error(what, op);
    }
}

constexpr char unit_separator = '\x1f';  // joins list items into one text (chr(31) in SQL)

// ISO timestamp with microseconds, UTC: what timestamptz reads back exactly.
inline std::string timestamp(std::chrono::system_clock::time_point t) {
    auto d = utc_day(t);
    long long us = static_cast<long long>(std::chrono::duration_cast<std::chrono::microseconds>(t - d).count());
    char buf[64];
    long long secs = us / 1000000;
    std::snprintf(buf, sizeof buf, "%s %02lld:%02lld:%02lld.%06lld+00", iso_date(d).c_str(), secs / 3600,
                  (secs / 60) % 60, secs % 60, static_cast<long long>(us % 1000000));
    return buf;
}

// What `extract(epoch FROM t)::float8` gives back, as a time point.
inline std::chrono::system_clock::time_point from_epoch(double seconds) {
    return std::chrono::system_clock::time_point(std::chrono::duration_cast<std::chrono::system_clock::duration>(
        std::chrono::duration<double>(seconds)));
}

inline std::string joined(const std::vector<std::string>& items) {
    std::string out;
    for (std::size_t i = 0; i < items.size(); ++i) {
        if (i) out.push_back(unit_separator);
        out += items[i];
    }
    return out;
}

inline std::vector<std::string> split_joined(const std::string& text) {
    std::vector<std::string> out;
    if (text.empty()) return out;
    std::size_t start = 0;
    while (true) {
        std::size_t end = text.find(unit_separator, start);
        out.push_back(text.substr(start, end == std::string::npos ? std::string::npos : end - start));
        if (end == std::string::npos) break;
        start = end + 1;
    }
    return out;
}

// table_YYYYMMDD, by sql/0005's function (it runs as the schema's owner: ndrguard's own roles
// have no DDL rights).
inline void create_day_partition(pqxx::connection& conn, const std::string& table, day d) {
    pqxx::work txn(conn);
    txn.exec_params("SELECT ndrguard_create_day_partition($1, $2::date)", table, iso_date(d));
    txn.commit();
}

inline void drop_day_partition(pqxx::work& txn, const std::string& table, day d) {
    txn.exec_params("SELECT ndrguard_drop_day_partition($1, $2::date)", table, iso_date(d));
}

// The day partitions of a table, oldest first.
inline std::vector<day> day_partitions(pqxx::connection& conn, const std::string& table) {
    pqxx::read_transaction txn(conn);
    std::vector<day> out;
    for (auto row : txn.exec("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                             "WHERE i.inhparent = " + txn.quote(table) + "::regclass"))
        if (auto d = partition_day(row[0].as<std::string>(), table)) out.push_back(*d);
    std::sort(out.begin(), out.end());
    return out;
}

// Shared by the store's domains (storms.cpp, held_items.cpp, release_ledger.cpp,
// digest_ledger.cpp, metrics_queries.cpp).

inline std::string ids_literal(const std::vector<std::int64_t>& ids) { return bigint_array_literal(ids); }

// Text columns must be valid UTF-8 without NUL; envelope fields are raw bytes from the network.
// What is a key or is sent again (mailboxes, senders, Message-IDs, queue ids, recipients) goes
// through the reversible escape of sql_text.hpp and comes back exactly; display-only texts
// (subjects, reporting MTAs, replies) are cut and their bad bytes replaced (display_text).
inline std::string key_text(std::string_view s) { return to_db_text(s); }

inline std::vector<std::string> key_texts(const std::vector<std::string>& v) {
    std::vector<std::string> out;
    for (const auto& s : v) out.push_back(to_db_text(s));
    return out;
}

inline std::vector<std::string> display_texts(const std::vector<std::string>& v) {
    std::vector<std::string> out;
    for (const auto& s : v) out.push_back(display_text(s, 998));
    return out;
}

// A held item's columns, as summary_of reads them (held_items.cpp).
inline constexpr const char* item_columns =
    "id, extract(epoch FROM held_at)::float8, mailbox, sender, class, verification, state, reporting_mta, subject, "
    "original_subject, array_to_string(reasons, chr(31)), array_to_string(notes, chr(31)), "
    "array_to_string(message_ids, chr(31)), coalesce(storm_id, 0), size, original_recipient, "
    "array_to_string(evidence, chr(31))";
inline constexpr int item_column_count = 17;  // of item_columns: what a query adds after them starts here
item_summary summary_of(const pqxx::row& r);
// Adjusts a mailbox's held totals (never below zero) when items leave the held state (held_items.cpp).
void adjust_usage(pqxx::work& txn, const std::string& mailbox, std::int64_t items, std::int64_t bytes);

// A storm's columns, as storm_records reads them (with its top reporters; storms.cpp).
inline constexpr const char* storm_columns =
    "id, mailbox, extract(epoch FROM started_at)::float8, extract(epoch FROM quiet_since)::float8, "
    "extract(epoch FROM ended_at)::float8, verified, forged, unverifiable, delivered, rejected, quarantined, dropped, "
    "array_to_string(sample_subjects, chr(31))";
std::vector<storm_record> storm_records(pqxx::transaction_base& txn, const pqxx::result& rows);

// Adds to a running total of sql/0006 (read by the metrics; metrics_queries.cpp).
void add_total(pqxx::work& txn, const char* name, std::int64_t n);

}  // namespace pg
}  // namespace ndrguard::quarantine
