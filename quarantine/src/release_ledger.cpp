#include "ndrguard/quarantine/release_ledger.hpp"

#include "pg_util.hpp"

namespace ndrguard::quarantine {

using pg::add_total;
using pg::adjust_usage;
using pg::guarded;
using pg::key_text;

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

}  // namespace ndrguard::quarantine
