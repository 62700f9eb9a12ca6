#include "ndrguard/quarantine/held_items.hpp"

#include <algorithm>
#include <map>
#include <set>

#include "pg_util.hpp"

namespace ndrguard::quarantine {

using pg::adjust_usage;
using pg::display_texts;
using pg::guarded;
using pg::ids_literal;
using pg::item_columns;
using pg::key_text;
using pg::key_texts;
using pg::summary_of;

item_summary pg::summary_of(const pqxx::row& r) {
    item_summary s;
    s.id = r[0].as<std::int64_t>();
    s.held_at = pg::from_epoch(r[1].as<double>());
    s.mailbox = from_db_text(r[2].as<std::string>());
    s.sender = from_db_text(r[3].as<std::string>());
    s.klass = r[4].as<std::string>();
    s.verification = r[5].as<std::string>();
    s.state = r[6].as<std::string>();
    s.reporting_mta = r[7].as<std::string>();
    s.subject = r[8].as<std::string>();
    s.original_subject = r[9].as<std::string>();
    s.reasons = pg::split_joined(r[10].as<std::string>());
    s.notes = pg::split_joined(r[11].as<std::string>());
    s.message_ids = pg::split_joined(r[12].as<std::string>());
    for (auto& id : s.message_ids) id = from_db_text(id);
    s.storm_id = r[13].as<std::int64_t>();
    s.size = r[14].as<std::int64_t>();
    s.original_recipient = from_db_text(r[15].as<std::string>());
    s.evidence = pg::split_joined(r[16].as<std::string>());
    return s;
}

void pg::adjust_usage(pqxx::work& txn, const std::string& mailbox, std::int64_t items, std::int64_t bytes) {
    txn.exec_params("UPDATE quarantine_mailboxes SET held_items = greatest(held_items + $2, 0), "
                    "held_bytes = greatest(held_bytes + $3, 0) WHERE mailbox = $1",
                    mailbox, items, bytes);
}

std::vector<hold_result> hold_messages(database& db, const quarantine_caps& caps, const std::vector<held_message>& batch) {
    std::vector<hold_result> results(batch.size());
    if (batch.empty()) return results;
    auto& conn = db.native().conn;
    std::set<day> days;
    for (const auto& m : batch) days.insert(utc_day(m.held_at));
    guarded("creating a quarantine day partition", [&] {
        for (day d : days) pg::create_day_partition(conn, "quarantine", d);
    });
    return guarded("holding messages in the quarantine", [&] {
        pqxx::work txn(conn);
        // A message held in storm mode before this instance learnt the storm's id: wait for a
        // storm sync that may be opening it (it holds this lock), then name the open storm.
        const bool storm_unknown = std::any_of(batch.begin(), batch.end(), [](const held_message& m) {
            return m.storm_id == 0 && std::find(m.notes.begin(), m.notes.end(), "storm") != m.notes.end();
        });
        if (storm_unknown) txn.exec("SELECT pg_advisory_xact_lock_shared(7426115)");
        std::set<std::string> names;
        for (const auto& m : batch) names.insert(key_text(m.mailbox));
        const std::string mailboxes = text_array_literal(std::vector<std::string>(names.begin(), names.end()));
        txn.exec_params("INSERT INTO quarantine_mailboxes (mailbox) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING", mailboxes);
        // Locked in name order by every instance: the cap is enforced exactly, and no deadlock.
        struct usage {
            std::int64_t items = 0, bytes = 0, added_items = 0, added_bytes = 0, dropped = 0;
        };
        std::map<std::string, usage> use;
        for (auto r : txn.exec_params("SELECT mailbox, held_items, held_bytes FROM quarantine_mailboxes "
                                      "WHERE mailbox = ANY($1::text[]) ORDER BY mailbox FOR UPDATE",
                                      mailboxes))
            use[r[0].as<std::string>()] = {r[1].as<std::int64_t>(), r[2].as<std::int64_t>(), 0, 0, 0};

        for (std::size_t i = 0; i < batch.size(); ++i) {
            const held_message& m = batch[i];
            const std::string mailbox = key_text(m.mailbox);
            const std::string queue_id = key_text(m.queue_id);
            std::optional<std::int64_t> key;
            if (!queue_id.empty()) key = message_id_hash(queue_id + pg::unit_separator + mailbox);
            const day d = utc_day(m.held_at);
            if (key) {
                auto prior = txn.exec_params("SELECT id FROM quarantine WHERE dedupe_key = $1 AND mailbox = $2 AND queue_id = $3 "
                                             "AND held_day >= $4::date LIMIT 1",
                                             *key, mailbox, queue_id, iso_date(d - std::chrono::days(7)));
                if (!prior.empty()) {
                    results[i] = {hold_result::outcome::already_held, prior[0][0].as<std::int64_t>()};
                    continue;
                }
            }
            usage& u = use[mailbox];
            const auto size = static_cast<std::int64_t>(m.message.size());
            if (m.forged && (u.items >= caps.max_items || u.bytes + size > caps.max_bytes)) {
                ++u.dropped;
                results[i] = {hold_result::outcome::dropped_over_cap, 0};
                continue;
            }
            auto row = txn.exec_params1(
                "INSERT INTO quarantine (held_day, held_at, mailbox, sender, client, queue_id, dedupe_key, class, verification, "
                "reasons, notes, message_ids, reporting_mta, subject, original_subject, storm_id, size, message, state, "
                "state_changed_at, original_recipient, evidence) VALUES ($1::date, $2::timestamptz, $3, $4, $5, $6, $7, $8, $9, "
                "$10::text[], $11::text[], $12::text[], $13, $14, $15, coalesce($16, CASE WHEN 'storm' = ANY($11::text[]) THEN "
                "(SELECT id FROM storms WHERE mailbox = $3 AND ended_at IS NULL) END), $17, $18, 'held', $2::timestamptz, $19, "
                "$20::text[]) RETURNING id",
                iso_date(d), pg::timestamp(m.held_at), mailbox, key_text(m.sender), key_text(m.client), queue_id, key,
                display_text(m.klass, 32), display_text(m.verification, 32), text_array_literal(display_texts(m.reasons)),
                text_array_literal(display_texts(m.notes)), text_array_literal(key_texts(m.message_ids)),
                display_text(m.reporting_mta, 255), display_text(m.subject, 998), display_text(m.original_subject, 998),
                m.storm_id ? std::optional<std::int64_t>(m.storm_id) : std::nullopt, size, pqxx::binarystring(m.message),
                key_text(m.original_recipient), text_array_literal(display_texts(m.evidence)));
            results[i] = {hold_result::outcome::held, row[0].as<std::int64_t>()};
            u.items += 1;
            u.bytes += size;
            u.added_items += 1;
            u.added_bytes += size;
        }
        std::vector<std::string> m;
        std::vector<std::int64_t> items, bytes, dropped;
        for (const auto& [mailbox, u] : use) {
            m.push_back(mailbox);
            items.push_back(u.added_items);
            bytes.push_back(u.added_bytes);
            dropped.push_back(u.dropped);
        }
        txn.exec_params(
            "UPDATE quarantine_mailboxes q SET held_items = q.held_items + d.i, held_bytes = q.held_bytes + d.b, "
            "dropped_over_cap = q.dropped_over_cap + d.x FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[]) "
            "AS d(m, i, b, x) WHERE q.mailbox = d.m",
            text_array_literal(m), bigint_array_literal(items), bigint_array_literal(bytes), bigint_array_literal(dropped));
        txn.commit();
        return results;
    });
}

std::vector<item_summary> list_items(database& db, const list_filter& f) {
    return guarded("listing the quarantine", [&] {
        pqxx::read_transaction txn(db.native().conn);
        std::vector<item_summary> out;
        auto rows = txn.exec_params(std::string("SELECT ") + item_columns +
                                        " FROM quarantine WHERE ($1 = '' OR mailbox = $1) AND ($2 = '' OR state = $2) "
                                        "AND held_at >= $3::timestamptz AND ($5 = 0 OR storm_id = $5) AND ($6 = '' OR "
                                        "strpos(lower(concat_ws(' ', subject, original_subject, reporting_mta, sender, "
                                        "original_recipient)), lower($6)) > 0) ORDER BY held_at, id LIMIT $4",
                                    key_text(mailbox_key(f.mailbox)), display_text(f.state, 32),
                                    pg::timestamp(f.since.value_or(clock_time{})), static_cast<long long>(f.limit),
                                    f.storm_id, display_text(f.search, 200));
        for (auto r : rows) out.push_back(summary_of(r));
        return out;
    });
}

std::optional<item_detail> get_item(database& db, std::int64_t id) {
    return guarded("reading a quarantined message", [&]() -> std::optional<item_detail> {
        pqxx::read_transaction txn(db.native().conn);
        auto rows = txn.exec_params(std::string("SELECT ") + item_columns + ", client, queue_id, message FROM quarantine WHERE id = $1",
                                    id);
        if (rows.empty()) return std::nullopt;
        item_detail d;
        d.summary = summary_of(rows[0]);
        // After summary_of's columns (pg::item_column_count of them).
        d.client = from_db_text(rows[0][pg::item_column_count].as<std::string>());
        d.queue_id = from_db_text(rows[0][pg::item_column_count + 1].as<std::string>());
        pqxx::binarystring bytes(rows[0][pg::item_column_count + 2]);
        d.message = bytes.str();
        return d;
    });
}

std::vector<std::int64_t> delete_items(database& db, const std::vector<std::int64_t>& ids, const std::string& who) {
    return guarded("deleting quarantined messages", [&] {
        pqxx::work txn(db.native().conn);
        std::vector<std::int64_t> out;
        // The content goes at once; the row stays (until its day expires) for the record.
        auto rows = txn.exec_params("UPDATE quarantine SET state = 'deleted', state_changed_at = now(), message = ''::bytea "
                                    "WHERE id = ANY($1::bigint[]) AND state = 'held' RETURNING id, mailbox, size",
                                    ids_literal(ids));
        for (auto r : rows) {
            out.push_back(r[0].as<std::int64_t>());
            adjust_usage(txn, r[1].as<std::string>(), -1, -r[2].as<std::int64_t>());
            txn.exec_params("INSERT INTO quarantine_audit (item_id, action, requested_by) VALUES ($1, 'delete', $2)",
                            out.back(), key_text(who));
        }
        txn.commit();
        std::sort(out.begin(), out.end());
        return out;
    });
}

expiry_report expire_quarantine(database& db, day first_kept) {
    auto& conn = db.native().conn;
    expiry_report report;
    for (day d : guarded("listing quarantine partitions", [&] { return pg::day_partitions(conn, "quarantine"); })) {
        if (d >= first_kept) break;
        guarded("expiring a quarantine day", [&] {
            pqxx::work txn(conn);
            for (auto r : txn.exec_params("SELECT mailbox, count(*), sum(size)::bigint FROM quarantine WHERE held_day = $1::date "
                                          "AND state IN ('held', 'releasing') GROUP BY mailbox ORDER BY mailbox",
                                          iso_date(d))) {
                adjust_usage(txn, r[0].as<std::string>(), -r[1].as<std::int64_t>(), -r[2].as<std::int64_t>());
                report.items_dropped += r[1].as<std::int64_t>();
            }
            pg::drop_day_partition(txn, "quarantine", d);
            txn.commit();
        });
        ++report.days_dropped;
    }
    // What was held on those days is gone: so are its release attempts and digests (their
    // totals stay in ndrguard_totals). The audit of deletions is kept.
    guarded("pruning release attempts and digests", [&] {
        pqxx::work txn(conn);
        txn.exec_params("DELETE FROM quarantine_releases WHERE started_at < $1::date AND state NOT IN ('started', 'sent')",
                        iso_date(first_kept));
        txn.exec_params("DELETE FROM digests WHERE started_at < $1::date AND state NOT IN ('building', 'sending')",
                        iso_date(first_kept));
        txn.commit();
    });
    return report;
}

mailbox_usage usage_of(database& db, const std::string& mailbox) {
    return guarded("reading a mailbox's quarantine usage", [&] {
        pqxx::read_transaction txn(db.native().conn);
        auto r = txn.exec_params("SELECT held_items, held_bytes, dropped_over_cap FROM quarantine_mailboxes WHERE mailbox = $1",
                                 key_text(mailbox_key(mailbox)));
        mailbox_usage u;
        if (!r.empty()) u = {r[0][0].as<std::int64_t>(), r[0][1].as<std::int64_t>(), r[0][2].as<std::int64_t>()};
        return u;
    });
}

}  // namespace ndrguard::quarantine
