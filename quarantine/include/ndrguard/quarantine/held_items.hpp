// The quarantine's held items (sql/0002_storms_quarantine.sql): holding a batch under the
// per-mailbox caps, listing, reading, deleting, expiring whole days, a mailbox's usage. Every
// failure is a database_error; callers answer 451 for a message they could not hold.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ndrguard/quarantine/database.hpp"
#include "ndrguard/quarantine/storm.hpp"

namespace ndrguard::quarantine {

struct quarantine_caps {
    std::int64_t max_items = 20000;              // per mailbox
    std::int64_t max_bytes = 500ll * 1024 * 1024;  // per mailbox
};

// A message to hold for one mailbox.
struct held_message {
    std::string mailbox;  // mailbox_key()
    std::string sender, client, queue_id;
    std::string klass, verification;
    std::vector<std::string> reasons, notes, message_ids;
    std::vector<std::string> evidence;  // the verdict's evidence tags (filter/verdict.hpp)
    std::string reporting_mta, subject, original_subject;
    std::string original_recipient;  // whom the returned message was for (its first failed recipient)
    std::int64_t storm_id = 0;
    bool forged = false;  // forged ones are dropped past the cap; the others are always kept
    std::string message;
    clock_time held_at;
};

struct hold_result {
    enum class outcome { held, already_held, dropped_over_cap } what = outcome::held;
    std::int64_t id = 0;  // held or already_held
};

// Holds a batch in one transaction (the caller answers 250 after it returned). A message that
// carries Postfix's queue id and was held before for the same mailbox (Postfix retried after a
// 451) is not held twice.
std::vector<hold_result> hold_messages(database& db, const quarantine_caps& caps, const std::vector<held_message>& batch);

struct item_summary {
    std::int64_t id = 0;
    clock_time held_at;
    std::string mailbox, sender, klass, verification, state, reporting_mta, subject, original_subject, original_recipient;
    std::vector<std::string> reasons, notes, message_ids, evidence;
    std::int64_t storm_id = 0;
    std::int64_t size = 0;
};

struct list_filter {
    std::string mailbox;               // "" = all
    std::optional<clock_time> since;
    std::string state = "held";        // "" = any
    std::int64_t storm_id = 0;         // 0 = any
    std::string search;                // "" = any; else a case-insensitive substring of the subjects,
                                       // the reporting MTA, the sender or the original's recipient
    std::size_t limit = 1000;
};
std::vector<item_summary> list_items(database& db, const list_filter& f);

struct item_detail {
    item_summary summary;
    std::string client, queue_id;
    std::string message;
};
std::optional<item_detail> get_item(database& db, std::int64_t id);
// Deletes held items (audited); returns the ids that were held and are now deleted.
std::vector<std::int64_t> delete_items(database& db, const std::vector<std::int64_t>& ids, const std::string& who);

struct expiry_report {
    std::size_t days_dropped = 0;
    std::int64_t items_dropped = 0;  // of which were still held
};
// Drops whole days held before `first_kept` (and adjusts the per-mailbox totals).
expiry_report expire_quarantine(database& db, day first_kept);

struct mailbox_usage {
    std::int64_t held_items = 0, held_bytes = 0, dropped_over_cap = 0;
};
mailbox_usage usage_of(database& db, const std::string& mailbox);

}  // namespace ndrguard::quarantine
