// The pure pieces of the database layer: hashing, day arithmetic, names and literals.
// Nothing here talks to a server, so all of it is unit-tested without one.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ndrguard::quarantine {

// FNV-1a 64 of a normalised Message-ID, as the signed bigint PostgreSQL stores. Stable across
// versions and machines: it is persisted.
std::int64_t message_id_hash(std::string_view normalized_id);

// Days are UTC calendar days, counted from 1970-01-01.
using day = std::chrono::sys_days;
day utc_day(std::chrono::system_clock::time_point t);
std::string iso_date(day d);                          // "2026-03-02"
// Day partitions of a table partitioned by day: "sent_log_20260302", "quarantine_20260302".
std::string partition_name(day d, std::string_view table = "sent_log");
std::optional<day> partition_day(std::string_view partition, std::string_view table = "sent_log");  // the inverse

// A PostgreSQL array literal of texts: {"a","b\"c"}; every element quoted and escaped.
std::string text_array_literal(const std::vector<std::string>& items);

// The same for a bigint array: {1,-2,3}.
std::string bigint_array_literal(const std::vector<std::int64_t>& items);

}  // namespace ndrguard::quarantine
