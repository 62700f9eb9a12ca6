#include "ndrguard/quarantine/storms.hpp"

#include <algorithm>
#include <map>
#include <set>

#include "pg_util.hpp"

namespace ndrguard::quarantine {

using pg::guarded;
using pg::key_text;
using pg::storm_columns;
using pg::storm_records;

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

std::vector<storm_record> pg::storm_records(pqxx::transaction_base& txn, const pqxx::result& rows) {
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

}  // namespace ndrguard::quarantine
