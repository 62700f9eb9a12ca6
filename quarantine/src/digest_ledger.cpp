#include "ndrguard/quarantine/digest_ledger.hpp"

#include <algorithm>

#include "pg_util.hpp"

namespace ndrguard::quarantine {

using pg::add_total;
using pg::guarded;
using pg::item_columns;
using pg::key_text;
using pg::storm_columns;
using pg::storm_records;
using pg::summary_of;

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

}  // namespace ndrguard::quarantine
