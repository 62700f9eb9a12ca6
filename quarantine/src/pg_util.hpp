// Helpers shared by the libpqxx code of this library (not installed, not seen by callers).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "ndrguard/quarantine/database.hpp"

namespace ndrguard::quarantine {

struct database::impl {
    explicit impl(const std::string& conninfo) : conn(conninfo) {}
    pqxx::connection conn;
    bool lookup_prepared = false;  // the sent log lookup, prepared once per connection
};

namespace pg {

// Any libpqxx or libpq failure becomes a database_error saying what we were doing.
template <class F>
auto guarded(const char* what, F&& f) -> decltype(f()) {
    try {
        return f();
    } catch (const database_error&) {
        throw;
    } catch (const std::exception& e) {
        throw database_error(std::string(what) + ": " + e.what());
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

}  // namespace pg
}  // namespace ndrguard::quarantine
