// The pure pieces of the database layer: hashing, day arithmetic, names and literals.
// Nothing here talks to a server, so all of it is unit-tested without one.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ndrguard/detector/utf8.hpp"

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

// Strings from the network in PostgreSQL text columns. PostgreSQL refuses NUL and anything that
// is not well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF),
// and one such string used to fail its whole statement (issue 13). Every key column (mailboxes,
// senders, Message-IDs, queue ids) is therefore written through to_db_text and read back
// through from_db_text, a reversible escape: well-formed UTF-8 stays as it is, and four things
// are escaped: a byte that is not part of a well-formed sequence, NUL and chr(31) (our list
// separator in SQL) as \xHH, the backslash as "\\". So the text is always storable,
// from_db_text(to_db_text(x)) == x for every x, and two different strings never share a text:
// the same raw Message-ID gives the same text on record and on lookup.
std::string to_db_text(std::string_view raw);
std::string from_db_text(std::string_view stored);  // the inverse (a stray backslash is kept)

using detector::utf8_sequence_at;  // ndrguard/detector/utf8.hpp
using detector::valid_utf8;

// Display-only texts (subjects, replies, reporting MTAs): well-formed UTF-8 kept, each other
// byte and NUL replaced by '?', cut to at most `max` bytes on a character boundary. Lossy, so
// never used for anything compared or sent.
std::string display_text(std::string_view s, std::size_t max);

// The same for a bigint array: {1,-2,3}.
std::string bigint_array_literal(const std::vector<std::int64_t>& items);

}  // namespace ndrguard::quarantine
