#include "ndrguard/quarantine/store.hpp"

#include <algorithm>
#include <map>
#include <set>

#include "pg_util.hpp"

namespace ndrguard::quarantine {

using pg::guarded;

namespace {

std::string ids_literal(const std::vector<std::int64_t>& ids) { return bigint_array_literal(ids); }

constexpr const char* item_columns =
    "id, extract(epoch FROM held_at)::float8, mailbox, sender, class, verification, state, reporting_mta, subject, "
    "original_subject, array_to_string(reasons, chr(31)), array_to_string(notes, chr(31)), "
    "array_to_string(message_ids, chr(31)), coalesce(storm_id, 0), size, original_recipient";

item_summary summary_of(const pqxx::row& r) {
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
    return s;
}

// Text columns must be valid UTF-8 without NUL; envelope fields are raw bytes from the network.
// What is a key or is sent again (mailboxes, senders, Message-IDs, queue ids, recipients) goes
// through the reversible escape of sql_text.hpp and comes back exactly; display-only texts
// (subjects, reporting MTAs, replies) are cut and their bad bytes replaced (display_text).
std::string key_text(std::string_view s) { return to_db_text(s); }

std::vector<std::string> key_texts(const std::vector<std::string>& v) {
    std::vector<std::string> out;
    for (const auto& s : v) out.push_back(to_db_text(s));
    return out;
}

std::vector<std::string> display_texts(const std::vector<std::string>& v) {
    std::vector<std::string> out;
    for (const auto& s : v) out.push_back(display_text(s, 998));
    return out;
}

}  // namespace

std::vector<mailbox_storm_state> storm_sync(database& db, const storm_settings& s, const std::vector<storm_delta>& deltas,
                                            const std::vector<std::string>& watched, clock_time now, storm_sync_events* events) {
    return guarded("syncing storm counters", [&] {
        auto& conn = db.native().conn;
        pqxx::work txn(conn);
        // One sync at a time across every instance: each then sees the others' counts, and the
        // storm transitions below never race.
        txn.exec("SELECT pg_advisory_xact_lock(7426115)");
        const std::string now_text = pg::timestamp(now);
        const std::string since_text = pg::timestamp(now - s.window);

        std::set<std::string> mailboxes;  // as stored
        for (const auto& w : watched) mailboxes.insert(key_text(w));
        if (!deltas.empty()) {
            std::vector<std::string> m, b;
            std::vector<std::int64_t> v, f, u;
            for (const auto& d : deltas) {
                m.push_back(key_text(d.mailbox));
                b.push_back(pg::timestamp(d.bucket));
                v.push_back(d.tally.verified);
                f.push_back(d.tally.forged);
                u.push_back(d.tally.unverifiable);
                mailboxes.insert(m.back());
            }
            txn.exec_params(
                "INSERT INTO ndr_counts (mailbox, bucket, verified, forged, unverifiable) "
                "SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::bigint[], $4::bigint[], $5::bigint[]) "
                "ON CONFLICT (mailbox, bucket) DO UPDATE SET verified = ndr_counts.verified + excluded.verified, "
                "forged = ndr_counts.forged + excluded.forged, unverifiable = ndr_counts.unverifiable + excluded.unverifiable",
                text_array_literal(m), text_array_literal(b), bigint_array_literal(v), bigint_array_literal(f),
                bigint_array_literal(u));
        }
        const std::string touched = text_array_literal(std::vector<std::string>(mailboxes.begin(), mailboxes.end()));

        // Per mailbox: what this instance saw since its last sync.
        std::map<std::string, std::pair<ndr_tally, std::vector<std::string>>> per_mailbox;
        std::vector<std::string> rm, rmta;
        std::vector<std::int64_t> rn;
        for (const auto& d : deltas) {
            auto& [tally, subjects] = per_mailbox[key_text(d.mailbox)];
            tally += d.tally;
            // A mailbox has one delta per counter bucket: a storm across a bucket's edge brings
            // the same subject twice, and the UPDATE below only skips those stored before.
            for (const auto& subj : d.sample_subjects) {
                std::string text = display_text(subj, 200);
                if (subjects.size() < s.max_sample_subjects && std::find(subjects.begin(), subjects.end(), text) == subjects.end())
                    subjects.push_back(std::move(text));
            }
            for (const auto& [mta, n] : d.reporters) {
                rm.push_back(key_text(d.mailbox));
                rmta.push_back(display_text(mta, 255));
                rn.push_back(n);
            }
        }
        std::vector<std::string> pm, psubj;
        std::vector<std::int64_t> pv, pf, pu, pdl, prj, pqu, pdr;
        for (const auto& [mailbox, entry] : per_mailbox) {
            pm.push_back(mailbox);
            const ndr_tally& t = entry.first;
            pv.push_back(t.verified);
            pf.push_back(t.forged);
            pu.push_back(t.unverifiable);
            pdl.push_back(t.delivered);
            prj.push_back(t.rejected);
            pqu.push_back(t.quarantined);
            pdr.push_back(t.dropped);
            psubj.push_back(pg::joined(entry.second));
        }
        // Storms already open count the new bounces...
        if (!pm.empty())
            txn.exec_params(
                "UPDATE storms st SET verified = st.verified + d.v, forged = st.forged + d.f, "
                "unverifiable = st.unverifiable + d.u "
                "FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[]) AS d(m, v, f, u) "
                "WHERE st.mailbox = d.m AND st.ended_at IS NULL",
                text_array_literal(pm), bigint_array_literal(pv), bigint_array_literal(pf), bigint_array_literal(pu));

        // Enter: the window count reached the threshold (one open storm per mailbox: the unique
        // index makes a second entry a no-op).
        // ... a new one starts with the window's counts of every instance, the bounces that made it.
        auto entered = txn.exec_params(
            "INSERT INTO storms (mailbox, started_at, verified, forged, unverifiable) "
            "SELECT mailbox, $2::timestamptz, sum(verified), sum(forged), sum(unverifiable) FROM ndr_counts "
            "WHERE mailbox = ANY($1::text[]) AND bucket > $3::timestamptz "
            "GROUP BY mailbox HAVING sum(verified + forged + unverifiable) >= $4 "
            "ON CONFLICT (mailbox) WHERE ended_at IS NULL DO NOTHING RETURNING id, mailbox",
            touched, now_text, since_text, s.threshold);
        // Messages held in the moments before the storm was written name it too.
        for (auto r : entered)
            txn.exec_params("UPDATE quarantine SET storm_id = $1 WHERE mailbox = $2 AND storm_id IS NULL AND held_at > $3::timestamptz "
                            "AND 'storm' = ANY(notes)",
                            r[0].as<std::int64_t>(), r[1].as<std::string>(), since_text);
        // Quiet: under the exit threshold (hysteresis); loud again clears it.
        txn.exec_params(
            "UPDATE storms st SET quiet_since = CASE WHEN c.n < $3 THEN coalesce(st.quiet_since, $1::timestamptz) END "
            "FROM (SELECT o.id, coalesce((SELECT sum(verified + forged + unverifiable) FROM ndr_counts n "
            "      WHERE n.mailbox = o.mailbox AND n.bucket > $2::timestamptz), 0) AS n "
            "      FROM storms o WHERE o.ended_at IS NULL) c WHERE st.id = c.id",
            now_text, since_text, s.exit_threshold);
        // End: quiet for the whole cool-down.
        auto ended = txn.exec_params(
            "UPDATE storms SET ended_at = $1::timestamptz WHERE ended_at IS NULL AND quiet_since <= $2::timestamptz",
            now_text, pg::timestamp(now - s.cool_down));

        // What was done with them, sample subjects and reporting MTAs: for the open storms, new
        // ones included (what this sync brings is what made the storm).
        if (!pm.empty())
            txn.exec_params(
                "UPDATE storms st SET delivered = st.delivered + d.dl, rejected = st.rejected + d.rj, "
                "quarantined = st.quarantined + d.qu, dropped = st.dropped + d.dr "
                "FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[]) AS d(m, dl, rj, qu, dr) "
                "WHERE st.mailbox = d.m AND st.ended_at IS NULL",
                text_array_literal(pm), bigint_array_literal(pdl), bigint_array_literal(prj), bigint_array_literal(pqu),
                bigint_array_literal(pdr));
        if (!pm.empty())
            txn.exec_params(
                "UPDATE storms st SET sample_subjects = (st.sample_subjects || coalesce((SELECT array_agg(x) "
                "  FROM unnest(string_to_array(d.subj, chr(31))) x WHERE NOT x = ANY(st.sample_subjects)), '{}'))[1:$3] "
                "FROM unnest($1::text[], $2::text[]) AS d(m, subj) "
                "WHERE st.mailbox = d.m AND st.ended_at IS NULL AND d.subj <> '' AND cardinality(st.sample_subjects) < $3",
                text_array_literal(pm), text_array_literal(psubj), static_cast<long long>(s.max_sample_subjects));
        if (!rm.empty())
            txn.exec_params(
                "INSERT INTO storm_reporters (storm_id, reporting_mta, messages) "
                "SELECT st.id, r.mta, sum(r.n) FROM unnest($1::text[], $2::text[], $3::bigint[]) AS r(m, mta, n) "
                "JOIN storms st ON st.mailbox = r.m AND st.ended_at IS NULL GROUP BY st.id, r.mta "
                "ON CONFLICT (storm_id, reporting_mta) DO UPDATE SET messages = storm_reporters.messages + excluded.messages",
                text_array_literal(rm), text_array_literal(rmta), bigint_array_literal(rn));

        // The state of what we touched or watch, and of every open storm (few): an instance
        // learns of a storm another one detected before its first bounce for that mailbox.
        std::vector<mailbox_storm_state> out;
        auto rows = txn.exec_params(
            "SELECT m.mailbox, coalesce((SELECT sum(verified + forged + unverifiable) FROM ndr_counts n "
            "       WHERE n.mailbox = m.mailbox AND n.bucket > $2::timestamptz), 0)::bigint, "
            "       coalesce((SELECT id FROM storms st WHERE st.mailbox = m.mailbox AND st.ended_at IS NULL), 0) "
            "FROM (SELECT unnest($1::text[]) UNION SELECT mailbox FROM storms WHERE ended_at IS NULL) AS m(mailbox)",
            touched, since_text);
        for (auto r : rows) out.push_back({from_db_text(r[0].as<std::string>()), r[1].as<std::int64_t>(), r[2].as<std::int64_t>()});
        txn.commit();
        if (events) {
            events->started += static_cast<std::int64_t>(entered.size());
            events->ended += static_cast<std::int64_t>(ended.affected_rows());
        }
        return out;
    });
}

namespace {

constexpr const char* storm_columns =
    "id, mailbox, extract(epoch FROM started_at)::float8, extract(epoch FROM quiet_since)::float8, "
    "extract(epoch FROM ended_at)::float8, verified, forged, unverifiable, delivered, rejected, quarantined, dropped, "
    "array_to_string(sample_subjects, chr(31))";

std::vector<storm_record> storm_records(pqxx::transaction_base& txn, const pqxx::result& rows) {
    std::vector<storm_record> out;
    for (auto r : rows) {
        storm_record s;
        s.id = r[0].as<std::int64_t>();
        s.mailbox = from_db_text(r[1].as<std::string>());
        s.started_at = pg::from_epoch(r[2].as<double>());
        if (!r[3].is_null()) s.quiet_since = pg::from_epoch(r[3].as<double>());
        if (!r[4].is_null()) s.ended_at = pg::from_epoch(r[4].as<double>());
        s.tally = {r[5].as<std::int64_t>(), r[6].as<std::int64_t>(), r[7].as<std::int64_t>(), r[8].as<std::int64_t>(),
                   r[9].as<std::int64_t>(), r[10].as<std::int64_t>(), r[11].as<std::int64_t>()};
        s.sample_subjects = pg::split_joined(r[12].as<std::string>());
        for (auto t : txn.exec_params("SELECT reporting_mta, messages FROM storm_reporters WHERE storm_id = $1 "
                                      "ORDER BY messages DESC, reporting_mta LIMIT 10",
                                      s.id))
            s.top_reporters.emplace_back(t[0].as<std::string>(), t[1].as<std::int64_t>());
        out.push_back(std::move(s));
    }
    return out;
}

}  // namespace

std::vector<storm_record> storms(database& db, const std::string& mailbox, clock_time since) {
    return guarded("listing storms", [&] {
        pqxx::read_transaction txn(db.native().conn);
        auto rows = txn.exec_params(std::string("SELECT ") + storm_columns +
                                        " FROM storms WHERE ($1 = '' OR mailbox = $1) AND (ended_at IS NULL OR ended_at >= "
                                        "$2::timestamptz) ORDER BY id",
                                    key_text(mailbox), pg::timestamp(since));
        return storm_records(txn, rows);
    });
}

std::size_t expire_counters(database& db, clock_time before) {
    return guarded("expiring storm counters", [&] {
        pqxx::work txn(db.native().conn);
        auto r = txn.exec_params("DELETE FROM ndr_counts WHERE bucket < $1::timestamptz", pg::timestamp(before));
        txn.commit();
        return static_cast<std::size_t>(r.affected_rows());
    });
}

std::size_t expire_storms(database& db, clock_time before) {
    return guarded("expiring storms", [&] {
        pqxx::work txn(db.native().conn);
        auto r = txn.exec_params("DELETE FROM storms WHERE ended_at < $1::timestamptz", pg::timestamp(before));
        txn.commit();
        return static_cast<std::size_t>(r.affected_rows());
    });
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
                "state_changed_at, original_recipient) VALUES ($1::date, $2::timestamptz, $3, $4, $5, $6, $7, $8, $9, "
                "$10::text[], $11::text[], $12::text[], $13, $14, $15, coalesce($16, CASE WHEN 'storm' = ANY($11::text[]) THEN "
                "(SELECT id FROM storms WHERE mailbox = $3 AND ended_at IS NULL) END), $17, $18, 'held', $2::timestamptz, $19) "
                "RETURNING id",
                iso_date(d), pg::timestamp(m.held_at), mailbox, key_text(m.sender), key_text(m.client), queue_id, key,
                display_text(m.klass, 32), display_text(m.verification, 32), text_array_literal(display_texts(m.reasons)),
                text_array_literal(display_texts(m.notes)), text_array_literal(key_texts(m.message_ids)),
                display_text(m.reporting_mta, 255), display_text(m.subject, 998), display_text(m.original_subject, 998),
                m.storm_id ? std::optional<std::int64_t>(m.storm_id) : std::nullopt, size, pqxx::binarystring(m.message),
                key_text(m.original_recipient));
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
        d.client = from_db_text(rows[0][16].as<std::string>());
        d.queue_id = from_db_text(rows[0][17].as<std::string>());
        pqxx::binarystring bytes(rows[0][18]);
        d.message = bytes.str();
        return d;
    });
}

namespace {

// Adds to a running total of sql/0006 (read by the metrics).
void add_total(pqxx::work& txn, const char* name, std::int64_t n) {
    if (n == 0) return;
    txn.exec_params("INSERT INTO ndrguard_totals (name, value) VALUES ($1, $2) "
                    "ON CONFLICT (name) DO UPDATE SET value = ndrguard_totals.value + excluded.value",
                    name, n);
}

void adjust_usage(pqxx::work& txn, const std::string& mailbox, std::int64_t items, std::int64_t bytes) {
    txn.exec_params("UPDATE quarantine_mailboxes SET held_items = greatest(held_items + $2, 0), "
                    "held_bytes = greatest(held_bytes + $3, 0) WHERE mailbox = $1",
                    mailbox, items, bytes);
}

}  // namespace

release_claim begin_release(database& db, std::int64_t item_id, const std::string& who, const std::string& via,
                            std::chrono::seconds lease, bool force) {
    return guarded("starting a release", [&] {
        pqxx::work txn(db.native().conn);
        release_claim c;
        auto item = txn.exec_params("SELECT state, mailbox, sender, message FROM quarantine WHERE id = $1 FOR UPDATE", item_id);
        if (item.empty()) {
            c.what = release_claim::outcome::unknown_item;
            return c;
        }
        const std::string state = item[0][0].as<std::string>();
        auto last = txn.exec_params(
            "SELECT id, state, requested_by, via, to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), "
            "to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), "
            "started_at > now() - make_interval(secs => $2) FROM quarantine_releases WHERE item_id = $1 ORDER BY id DESC LIMIT 1",
            item_id, static_cast<double>(lease.count()));
        auto describe = [&](const char* what) {
            if (last.empty()) return std::string(what);
            return std::string(what) + " by " + from_db_text(last[0][2].as<std::string>()) + " via " + last[0][3].as<std::string>() + " at " +
                   (last[0][5].is_null() ? last[0][4].as<std::string>() : last[0][5].as<std::string>()) + " UTC";
        };
        if (state == "released") {
            c.what = release_claim::outcome::already_released;
            c.detail = describe("released");
            return c;
        }
        if (state == "deleted") {
            c.what = release_claim::outcome::deleted;
            return c;
        }
        if (state == "releasing" && !last.empty()) {
            const std::string attempt_state = last[0][1].as<std::string>();
            if (attempt_state == "sent" && !force) {
                c.what = release_claim::outcome::uncertain;
                c.detail = describe("an earlier release handed the message to the next hop") +
                           " and stopped before recording its answer: it may have been delivered";
                return c;
            }
            if (attempt_state == "started" && last[0][6].as<bool>() && !force) {
                c.what = release_claim::outcome::in_progress;
                c.detail = describe("a release is running, started");
                return c;
            }
            // A crashed attempt that never handed the message over, or forced: superseded.
            txn.exec_params("UPDATE quarantine_releases SET state = 'superseded', finished_at = now() WHERE id = $1",
                            last[0][0].as<std::int64_t>());
            add_total(txn, "releases_failed", 1);
        }
        txn.exec_params("UPDATE quarantine SET state = 'releasing', state_changed_at = now() WHERE id = $1", item_id);
        c.attempt_id = txn.exec_params1("INSERT INTO quarantine_releases (item_id, requested_by, via, state, started_at) "
                                        "VALUES ($1, $2, $3, 'started', now()) RETURNING id",
                                        item_id, key_text(who), display_text(via, 32))[0]
                           .as<std::int64_t>();
        c.mailbox = from_db_text(item[0][1].as<std::string>());
        c.sender = from_db_text(item[0][2].as<std::string>());
        c.message = pqxx::binarystring(item[0][3]).str();
        txn.commit();
        c.what = release_claim::outcome::claimed;
        return c;
    });
}

bool mark_release_sent(database& db, std::int64_t attempt_id) {
    return guarded("recording a release hand-over", [&] {
        pqxx::work txn(db.native().conn);
        auto r = txn.exec_params("UPDATE quarantine_releases SET state = 'sent' WHERE id = $1 AND state = 'started'", attempt_id);
        txn.commit();
        return r.affected_rows() == 1;
    });
}

void finish_release(database& db, std::int64_t attempt_id, bool delivered, const std::string& reply) {
    guarded("finishing a release", [&] {
        pqxx::work txn(db.native().conn);
        auto r = txn.exec_params("UPDATE quarantine_releases SET state = $2, finished_at = now(), reply = $3 "
                                 "WHERE id = $1 AND state IN ('started', 'sent') RETURNING item_id",
                                 attempt_id, delivered ? "done" : "failed", display_text(reply, 500));
        if (!r.empty()) {
            auto item = txn.exec_params("UPDATE quarantine SET state = $2, state_changed_at = now() WHERE id = $1 AND state = 'releasing' "
                                        "RETURNING mailbox, size",
                                        r[0][0].as<std::int64_t>(), delivered ? "released" : "held");
            if (delivered && !item.empty()) adjust_usage(txn, item[0][0].as<std::string>(), -1, -item[0][1].as<std::int64_t>());
            add_total(txn, delivered ? "releases_released" : "releases_failed", 1);
        }
        txn.commit();
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

namespace {

// A digest left 'building' past its lease: its pass stopped before handing anything over.
// `lease` names the query parameter with the lease in seconds.
std::string stale_digest(const char* lease) {
    return std::string("state = 'building' AND started_at < now() - make_interval(secs => ") + lease + ")";
}

}  // namespace

std::vector<std::string> mailboxes_to_report(database& db, std::chrono::seconds lease) {
    return guarded("finding mailboxes to report", [&] {
        pqxx::read_transaction txn(db.native().conn);
        std::vector<std::string> out;
        for (auto r : txn.exec_params("SELECT DISTINCT mailbox FROM quarantine WHERE state = 'held' AND (digest_id IS NULL OR "
                                      "digest_id IN (SELECT id FROM digests WHERE " + stale_digest("$1") + ")) ORDER BY mailbox",
                                      static_cast<double>(lease.count())))
            out.push_back(from_db_text(r[0].as<std::string>()));
        return out;
    });
}

digest_claim claim_digest(database& db, const std::string& mailbox_in, std::chrono::seconds lease, bool dry_run) {
    return guarded("claiming items for a digest", [&] {
        const std::string mailbox = key_text(mailbox_key(mailbox_in));
        const double lease_seconds = static_cast<double>(lease.count());
        pqxx::work txn(db.native().conn);
        digest_claim c;
        pqxx::result items;
        if (dry_run) {
            items = txn.exec_params(std::string("SELECT ") + item_columns +
                                        " FROM quarantine WHERE mailbox = $1 AND state = 'held' AND (digest_id IS NULL OR "
                                        "digest_id IN (SELECT id FROM digests WHERE mailbox = $1 AND " + stale_digest("$2") +
                                        ")) ORDER BY held_at, id",
                                    mailbox, lease_seconds);
        } else {
            // Two passes at once: the second waits here, then finds everything claimed (without
            // the lock each would take a part, and the mailbox would get two digests).
            txn.exec_params("SELECT pg_advisory_xact_lock(hashtext('ndrguard digest ' || $1))", mailbox);
            // A digest still 'building' after its lease was left by a pass that stopped before
            // handing anything over: its items are ours now, and it can no longer send.
            auto stale = txn.exec_params(
                "UPDATE digests SET state = 'abandoned', finished_at = now(), reply = 'stopped before sending; taken over' "
                "WHERE mailbox = $1 AND " + stale_digest("$2") + " RETURNING id",
                mailbox, lease_seconds);
            std::vector<std::int64_t> stale_ids;
            for (auto r : stale) stale_ids.push_back(r[0].as<std::int64_t>());
            add_total(txn, "digests_abandoned", static_cast<std::int64_t>(stale_ids.size()));
            if (!stale_ids.empty())
                c.taken_over = txn.exec_params1("SELECT count(*) FROM quarantine WHERE mailbox = $1 AND state = 'held' AND "
                                                "digest_id = ANY($2::bigint[])",
                                                mailbox, bigint_array_literal(stale_ids))[0]
                                   .as<std::int64_t>();
            c.digest_id = txn.exec_params1("INSERT INTO digests (mailbox, state, started_at) VALUES ($1, 'building', now()) RETURNING id",
                                           mailbox)[0]
                              .as<std::int64_t>();
            // Row locks make this exactly-once: a concurrent pass waits for our commit, then
            // finds digest_id set and skips the row.
            auto claimed = txn.exec_params(
                "UPDATE quarantine SET digest_id = $2 WHERE mailbox = $1 AND state = 'held' AND (digest_id IS NULL OR "
                "digest_id = ANY($3::bigint[])) RETURNING id",
                mailbox, c.digest_id, bigint_array_literal(stale_ids));
            if (claimed.empty()) {
                txn.exec_params("DELETE FROM digests WHERE id = $1", c.digest_id);
                txn.commit();
                c.digest_id = 0;
                return c;
            }
            txn.exec_params("UPDATE digests SET items = $2 WHERE id = $1", c.digest_id, static_cast<long long>(claimed.size()));
            items = txn.exec_params(std::string("SELECT ") + item_columns + " FROM quarantine WHERE digest_id = $1 AND mailbox = $2 "
                                        "ORDER BY held_at, id",
                                    c.digest_id, mailbox);
        }
        std::vector<std::int64_t> storm_ids;
        for (auto r : items) {
            c.items.push_back(summary_of(r));
            if (c.items.back().storm_id && std::find(storm_ids.begin(), storm_ids.end(), c.items.back().storm_id) == storm_ids.end())
                storm_ids.push_back(c.items.back().storm_id);
        }
        if (!storm_ids.empty())
            c.storms = storm_records(txn, txn.exec_params(std::string("SELECT ") + storm_columns +
                                                              " FROM storms WHERE id = ANY($1::bigint[]) ORDER BY started_at, id",
                                                          bigint_array_literal(storm_ids)));
        txn.commit();
        return c;
    });
}

bool mark_digest_sending(database& db, std::int64_t digest_id) {
    return guarded("marking a digest as sending", [&] {
        pqxx::work txn(db.native().conn);
        auto r = txn.exec_params("UPDATE digests SET state = 'sending' WHERE id = $1 AND state = 'building'", digest_id);
        txn.commit();
        return r.affected_rows() == 1;
    });
}

void finish_digest(database& db, std::int64_t digest_id, bool sent, const std::string& reply) {
    guarded("finishing a digest", [&] {
        pqxx::work txn(db.native().conn);
        auto r = txn.exec_params("UPDATE digests SET state = $2, finished_at = now(), reply = $3 "
                                 "WHERE id = $1 AND state IN ('building', 'sending')",
                                 digest_id, sent ? "sent" : "failed", display_text(reply, 500));
        add_total(txn, sent ? "digests_sent" : "digests_failed", static_cast<std::int64_t>(r.affected_rows()));
        if (!sent) txn.exec_params("UPDATE quarantine SET digest_id = NULL WHERE digest_id = $1", digest_id);
        txn.commit();
    });
}

std::vector<digest_record> digests_of(database& db, const std::string& mailbox, std::size_t limit) {
    return guarded("listing digests", [&] {
        pqxx::read_transaction txn(db.native().conn);
        std::vector<digest_record> out;
        for (auto r : txn.exec_params("SELECT id, mailbox, state, reply, extract(epoch FROM started_at)::float8, items FROM digests "
                                      "WHERE ($1 = '' OR mailbox = $1) ORDER BY id DESC LIMIT $2",
                                      key_text(mailbox_key(mailbox)), static_cast<long long>(limit))) {
            digest_record d;
            d.id = r[0].as<std::int64_t>();
            d.mailbox = from_db_text(r[1].as<std::string>());
            d.state = r[2].as<std::string>();
            d.reply = r[3].as<std::string>();
            d.started_at = pg::from_epoch(r[4].as<double>());
            d.items = r[5].as<std::int64_t>();
            out.push_back(std::move(d));
        }
        return out;
    });
}

quarantine_totals totals(database& db) {
    return guarded("counting the quarantine", [&] {
        pqxx::read_transaction txn(db.native().conn);
        auto r = txn.exec1("SELECT coalesce(sum(held_items), 0)::bigint, count(*) FILTER (WHERE held_items > 0), "
                           "(SELECT count(*) FROM storms WHERE ended_at IS NULL) FROM quarantine_mailboxes");
        return quarantine_totals{r[0].as<std::int64_t>(), r[1].as<std::int64_t>(), r[2].as<std::int64_t>()};
    });
}

metrics_snapshot metrics_totals(database& db) {
    return guarded("reading metrics", [&] {
        pqxx::read_transaction txn(db.native().conn);
        metrics_snapshot m;
        auto r = txn.exec1(
            "SELECT (SELECT coalesce(sum(held_items), 0)::bigint FROM quarantine_mailboxes), "
            "(SELECT count(*) FROM storms WHERE ended_at IS NULL), "
            "(SELECT coalesce(extract(epoch FROM now() - min(held_at)), 0)::float8 FROM quarantine WHERE state = 'held'), "
            "(SELECT coalesce(extract(epoch FROM max(finished_at)), 0)::float8 FROM digests WHERE state = 'sent')");
        m.held_items = r[0].as<std::int64_t>();
        m.storms_open = r[1].as<std::int64_t>();
        m.oldest_held_age_seconds = r[2].as<double>();
        m.last_digest_sent = r[3].as<double>();
        for (auto row : txn.exec("SELECT name, value FROM ndrguard_totals")) {
            const std::string name = row[0].as<std::string>();
            const auto value = row[1].as<std::int64_t>();
            if (name.rfind("releases_", 0) == 0) m.releases[name.substr(9)] = value;
            if (name.rfind("digests_", 0) == 0) m.digests[name.substr(8)] = value;
        }
        // A hand-over unanswered for an hour will not finish: it is uncertain (never resent).
        m.releases["uncertain"] = txn.exec1("SELECT count(*) FROM quarantine_releases WHERE state = 'sent' AND "
                                            "started_at < now() - interval '1 hour'")[0]
                                      .as<std::int64_t>();
        m.digests["uncertain"] =
            txn.exec1("SELECT count(*) FROM digests WHERE state = 'sending' AND started_at < now() - interval '1 hour'")[0]
                .as<std::int64_t>();
        return m;
    });
}

}  // namespace ndrguard::quarantine
