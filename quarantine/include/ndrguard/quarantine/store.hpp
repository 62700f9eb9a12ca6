// PostgreSQL side of storms and the quarantine (sql/0002_storms_quarantine.sql). Every failure
// is a database_error; callers answer 451 for a message they could not hold.
#pragma once

#include <chrono>
#include <map>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ndrguard/quarantine/database.hpp"
#include "ndrguard/quarantine/storm.hpp"

namespace ndrguard::quarantine {

// Writes one instance's deltas and reads back the state of those mailboxes and of `watched`
// ones, in one transaction: counters upserted per (mailbox, bucket), storms entered, gone quiet
// or ended by the thresholds, deltas added to the open storms.
// `events`, when given, counts the storms this call opened and ended (exactly one instance's sync
// opens or ends each storm).
struct storm_sync_events {
    std::int64_t started = 0, ended = 0;
};
std::vector<mailbox_storm_state> storm_sync(database& db, const storm_settings& s, const std::vector<storm_delta>& deltas,
                                            const std::vector<std::string>& watched, clock_time now,
                                            storm_sync_events* events = nullptr);

struct storm_record {
    std::int64_t id = 0;
    std::string mailbox;
    clock_time started_at;
    std::optional<clock_time> quiet_since, ended_at;
    ndr_tally tally;
    std::vector<std::string> sample_subjects;
    std::vector<std::pair<std::string, std::int64_t>> top_reporters;  // most messages first (at most 10)
};
std::vector<storm_record> storms(database& db, const std::string& mailbox_or_all, clock_time since);

// Drops counter buckets older than `before` (they are outside every window).
std::size_t expire_counters(database& db, clock_time before);

// Drops storms that ended before `before` (with their reporters); returns how many.
std::size_t expire_storms(database& db, clock_time before);

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
    std::vector<std::string> reasons, notes, message_ids;
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

// Exactly-once release, in three steps around the SMTP transaction (filter/release.cpp):
//   begin_release: 'held' -> 'releasing', an attempt recorded as 'started' (who, how);
//   mark_release_sent: just before the final dot; false if the attempt was taken over;
//   finish_release: 'done' (item 'released') or 'failed' (item 'held' again).
// An attempt left 'started' by a crash is taken over after `lease`; one left 'sent' may have
// reached Postfix and is never retried unless `force`.
struct release_claim {
    enum class outcome {
        claimed,           // go ahead: attempt_id is ours
        unknown_item,
        already_released,  // by whom and when in `detail`
        deleted,
        in_progress,       // another attempt is running
        uncertain,         // an earlier attempt crashed after handing the message over
    } what = outcome::claimed;
    std::int64_t attempt_id = 0;
    std::string detail;
    std::string mailbox, sender, message;  // when claimed
};
release_claim begin_release(database& db, std::int64_t item_id, const std::string& who, const std::string& via,
                            std::chrono::seconds lease, bool force);
bool mark_release_sent(database& db, std::int64_t attempt_id);
void finish_release(database& db, std::int64_t attempt_id, bool delivered, const std::string& reply);

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

// Digests (sql/0003_digests.sql): every held item is reported in at most one digest.
// Mailboxes with held items not claimed by a live digest (one 'building' for less than `lease`).
std::vector<std::string> mailboxes_to_report(database& db, std::chrono::seconds lease);

struct digest_claim {
    std::int64_t digest_id = 0;             // 0: nothing to report
    std::vector<item_summary> items;        // oldest first
    std::vector<storm_record> storms;       // the storms those items came in
    std::int64_t taken_over = 0;            // items reclaimed from digests that crashed while building
};
// Claims the mailbox's unreported held items for a new digest (state 'building'). With
// `dry_run` nothing is written: what a claim would take now.
digest_claim claim_digest(database& db, const std::string& mailbox, std::chrono::seconds lease, bool dry_run = false);
// 'building' -> 'sending', just before the final dot; false when the claim was taken over
// meanwhile (the lease passed) and the mail must not be sent.
bool mark_digest_sending(database& db, std::int64_t digest_id);
// 'sent', or 'failed' (its items become unreported again, for the next pass).
void finish_digest(database& db, std::int64_t digest_id, bool sent, const std::string& reply);

struct digest_record {
    std::int64_t id = 0;
    std::string mailbox, state, reply;
    clock_time started_at;
    std::int64_t items = 0;
};
std::vector<digest_record> digests_of(database& db, const std::string& mailbox_or_all, std::size_t limit);

struct quarantine_totals {
    std::int64_t held_items = 0, mailboxes = 0, storms_open = 0;
};
quarantine_totals totals(database& db);

// What the metrics endpoint reads at each scrape (cheap: indexed or small tables).
struct metrics_snapshot {
    std::int64_t held_items = 0, storms_open = 0;
    double oldest_held_age_seconds = 0;
    std::map<std::string, std::int64_t> releases;  // released, failed, uncertain
    std::map<std::string, std::int64_t> digests;   // sent, failed, abandoned, uncertain
    double last_digest_sent = 0;                   // Unix time, 0: never
};
metrics_snapshot metrics_totals(database& db);

}  // namespace ndrguard::quarantine
