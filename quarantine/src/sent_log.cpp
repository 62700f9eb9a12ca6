#include "ndrguard/quarantine/sent_log.hpp"

#include <algorithm>
#include <pqxx/pqxx>

#include "ndrguard/quarantine/async_lookup.hpp"
#include "ndrguard/quarantine/sent_log_writer.hpp"
#include "pg_util.hpp"

#include "ndrguard/detector/detector.hpp"

namespace ndrguard::quarantine {

using pg::guarded;

void sent_log::ensure_partition(day d) {
    if (known_days_.count(d)) return;
    guarded("creating a sent_log day partition", [&] { pg::create_day_partition(db_.native().conn, "sent_log", d); });
    known_days_.insert(d);
}

std::size_t sent_log::record(const std::vector<sent_message>& batch) {
    std::vector<std::string> days, ids, senders, recipients, times;
    std::vector<std::int64_t> hashes;
    for (const auto& m : batch) {
        std::string id = detector::normalize_message_id(m.message_id);
        if (id.empty()) continue;
        day d = utc_day(m.sent_at);
        ensure_partition(d);
        days.push_back(iso_date(d));
        // The hash is of the raw id, the text its reversible escape (sql_text.hpp): rows written
        // before the escape keep their hashes, and a lookup escapes the same way.
        hashes.push_back(message_id_hash(id));
        ids.push_back(to_db_text(id));
        senders.push_back(to_db_text(m.sender));
        std::vector<std::string> rcpts;
        for (const auto& r : m.recipients) rcpts.push_back(to_db_text(r));  // chr(31) escaped too
        recipients.push_back(pg::joined(rcpts));
        times.push_back(pg::timestamp(m.sent_at));
    }
    if (ids.empty()) return 0;
    return guarded("recording sent messages", [&] {
        pqxx::work txn(db_.native().conn);
        // One statement for the whole batch: arrays in, unnest() to rows (see libraries.md:
        // ~50x the throughput of a row per statement).
        txn.exec_params(
            "INSERT INTO sent_log (sent_day, id_hash, message_id, sender, recipients, sent_at) "
            "SELECT d, h, i, s, string_to_array(r, chr(31)), t "
            "FROM unnest($1::date[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::timestamptz[]) "
            "AS x(d, h, i, s, r, t)",
            text_array_literal(days), bigint_array_literal(hashes), text_array_literal(ids),
            text_array_literal(senders), text_array_literal(recipients), text_array_literal(times));
        txn.commit();
        return ids.size();
    });
}

// One row per id found, with its latest send (an id sent again, as bulk mailers do for each
// recipient, is still one row): a send is in a request's window exactly when the latest is.
// No ORDER BY: nothing depends on the order, and the sort was a good part of the query's cost.
const char* const sent_lookup_sql =
    "SELECT message_id, extract(epoch FROM max(sent_at))::float8 FROM sent_log "
    "WHERE id_hash = ANY($1::bigint[]) AND message_id = ANY($2::text[]) AND sent_day >= $3::date "
    "GROUP BY message_id";

lookup_query lookup_query_for(const std::vector<std::string>& message_ids, std::chrono::system_clock::time_point since) {
    std::vector<std::string> ids;
    std::vector<std::int64_t> hashes;
    for (const auto& raw : message_ids) {
        std::string id = detector::normalize_message_id(raw);
        if (id.empty() || std::find(ids.begin(), ids.end(), id) != ids.end()) continue;
        hashes.push_back(message_id_hash(id));
        ids.push_back(std::move(id));
    }
    for (auto& id : ids) id = to_db_text(id);  // as record() stored it
    lookup_query q;
    q.empty = ids.empty();
    q.hashes = bigint_array_literal(hashes);
    q.ids = text_array_literal(ids);
    q.since_day = iso_date(utc_day(since));
    return q;
}

std::vector<std::vector<sent_match>> share_matches(const std::vector<sent_lookup_request>& batch,
                                                   const std::vector<sent_match>& found) {
    std::vector<std::vector<sent_match>> out(batch.size());
    for (std::size_t i = 0; i < batch.size(); ++i)
        for (const auto& raw : batch[i].message_ids) {
            const std::string id = detector::normalize_message_id(raw);
            for (const auto& m : found)
                if (m.message_id == id && m.sent_at >= batch[i].since &&
                    std::none_of(out[i].begin(), out[i].end(), [&](const sent_match& x) { return x.message_id == id; }))
                    out[i].push_back(m);
        }
    return out;
}

std::vector<sent_match> sent_log::lookup(const std::vector<std::string>& message_ids,
                                         std::chrono::system_clock::time_point since) {
    std::vector<sent_match> found;
    const lookup_query q = lookup_query_for(message_ids, since);
    if (q.empty) return found;
    return guarded("looking up the sent log", [&] {
        // Prepared once per connection: planning a query over the day partitions cost the
        // server more than running it. One statement, no BEGIN/COMMIT round trips around it.
        auto& native = db_.native();
        if (!native.lookup_prepared) {
            native.conn.prepare("ndrguard_sent_lookup", sent_lookup_sql);
            native.lookup_prepared = true;
        }
        pqxx::nontransaction txn(native.conn);
        auto rows = txn.exec_prepared("ndrguard_sent_lookup", q.hashes, q.ids, q.since_day);
        for (auto row : rows) found.push_back({from_db_text(row[0].as<std::string>()), pg::from_epoch(row[1].as<double>())});
        return share_matches({{message_ids, since}}, found).front();
    });
}

std::vector<day> sent_log::days() {
    return guarded("listing sent_log partitions", [&] {
        return pg::day_partitions(db_.native().conn, "sent_log");
    });
}

std::size_t sent_log::drop_days_before(day first_kept) {
    std::size_t dropped = 0;
    for (day d : days()) {
        if (d >= first_kept) break;
        guarded("dropping an old sent_log day", [&] {
            pqxx::work txn(db_.native().conn);
            pg::drop_day_partition(txn, "sent_log", d);
            txn.commit();
        });
        known_days_.erase(d);
        ++dropped;
    }
    return dropped;
}

bool in_warm_up(std::optional<day> first_day, std::chrono::system_clock::time_point now, int bounce_window_days) {
    return !first_day || *first_day > utc_day(now) - std::chrono::days(bounce_window_days);
}

}  // namespace ndrguard::quarantine
