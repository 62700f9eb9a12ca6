#include "ndrguard/quarantine/database.hpp"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <libpq-fe.h>
#include <pqxx/pqxx>

#include "ndrguard/quarantine/async_lookup.hpp"
#include "ndrguard/quarantine/sent_log_writer.hpp"
#include "pg_util.hpp"

#include "ndrguard/detector/detector.hpp"

namespace ndrguard::quarantine {

using pg::guarded;

std::string conninfo_with_deadlines(const std::string& conninfo, int timeout_ms, const std::string& extra_options) {
    char* error = nullptr;
    PQconninfoOption* parsed = PQconninfoParse(conninfo.c_str(), &error);
    if (!parsed) {
        std::string e = error ? error : "out of memory";
        if (error) PQfreemem(error);
        while (!e.empty() && (e.back() == '\n' || e.back() == ' ')) e.pop_back();
        throw database_error("the database connection string: " + e);
    }
    // Every keyword libpq knows, in its own order (so that applying this twice is a no-op).
    std::vector<std::pair<std::string, std::string>> kv;
    for (PQconninfoOption* o = parsed; o->keyword; ++o) kv.emplace_back(o->keyword, o->val ? o->val : "");
    PQconninfoFree(parsed);
    auto set = [&](const std::string& key, const std::string& value) {
        for (auto& [k, v] : kv)
            if (k == key) v = value;
    };
    auto get = [&](const std::string& key) {
        for (auto& [k, v] : kv)
            if (k == key) return v;
        return std::string();
    };
    const int ms = std::max(timeout_ms, 1);
    const int seconds = std::max(2, (ms + 999) / 1000);  // libpq's least connect_timeout is 2
    if (get("connect_timeout").empty()) set("connect_timeout", std::to_string(seconds));
    set("keepalives", "1");
    if (get("keepalives_idle").empty()) set("keepalives_idle", std::to_string(seconds));
    if (get("keepalives_interval").empty()) set("keepalives_interval", "1");
    if (get("keepalives_count").empty()) set("keepalives_count", "3");
    if (get("tcp_user_timeout").empty()) set("tcp_user_timeout", std::to_string(ms));
    // Ours first, then the caller's: a caller's own -c statement_timeout wins.
    std::string ours = "-c statement_timeout=" + std::to_string(ms) + " -c lock_timeout=" + std::to_string(ms);
    if (!extra_options.empty()) ours += " " + extra_options;
    std::string options = get("options");
    if (options.find(ours) == std::string::npos) options = options.empty() ? ours : ours + " " + options;
    set("options", options);
    std::string out;
    for (const auto& [k, v] : kv) {
        if (v.empty()) continue;
        if (!out.empty()) out.push_back(' ');
        out += k + "='";
        for (char c : v) {
            if (c == '\'' || c == '\\') out.push_back('\\');
            out.push_back(c);
        }
        out.push_back('\'');
    }
    return out;
}

database_error::kind failure_of_sqlstate(std::string_view sqlstate) {
    using kind = database_error::kind;
    if (sqlstate == "57014" || sqlstate == "55P03") return kind::timeout;  // statement_timeout, lock_timeout
    if (sqlstate.substr(0, 2) == "08" || sqlstate.substr(0, 2) == "53" || sqlstate.substr(0, 4) == "57P0") return kind::connection;
    return kind::request;
}

std::chrono::milliseconds operation_timeout_of(const std::string& conninfo) {
    PQconninfoOption* parsed = PQconninfoParse(conninfo.c_str(), nullptr);
    if (!parsed) return std::chrono::milliseconds(0);
    std::string options;
    for (PQconninfoOption* o = parsed; o->keyword; ++o)
        if (std::string_view(o->keyword) == "options" && o->val) options = o->val;
    PQconninfoFree(parsed);
    const std::string key = "statement_timeout=";
    const auto at = options.rfind(key);  // the last one is the server's
    if (at == std::string::npos) return std::chrono::milliseconds(0);
    return std::chrono::milliseconds(std::strtol(options.c_str() + at + key.size(), nullptr, 10));
}

database::impl::impl(const std::string& conninfo, std::chrono::milliseconds timeout) : conn(conninfo) {
    // A connection is never re-established behind our back (libpqxx 6 would, in the middle of
    // an operation, on a socket the watchdog does not know; libpqxx 7 never does): database
    // replaces a broken one at the start of the next operation instead.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    conn.inhibit_reactivation(true);
#pragma GCC diagnostic pop
    watch = pg::watch_socket(conn.sock(), timeout);
}

database::impl::~impl() { pg::unwatch_socket(*watch); }

database::database(const std::string& conninfo) : database(conninfo, operation_timeout_of(conninfo)) {}

database::database(const std::string& conninfo, std::chrono::milliseconds operation_timeout)
    : conninfo_(conninfo), timeout_(operation_timeout) {
    impl_ = guarded("connecting to PostgreSQL", [&] { return std::make_unique<impl>(conninfo_, timeout_); });
}

database::~database() = default;

bool database::broken() const { return impl_->watch->cut || !impl_->conn.is_open(); }

database::impl& database::native() {
    // Replaced only between operations of this thread on it: within one, the failure stands.
    if (broken() && !pg::used_by_current_operation(*impl_->watch)) {
        auto fresh = guarded("connecting to PostgreSQL again", [&] { return std::make_unique<impl>(conninfo_, timeout_); });
        retired_ = std::move(impl_);
        impl_ = std::move(fresh);
    }
    pg::note_use(impl_->watch);
    return *impl_;
}

migration_report migrate(database& db, const std::filesystem::path& sql_dir) {
    // Version -> file, from names like 0001_sent_log.sql.
    std::map<int, std::filesystem::path> files;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(sql_dir, ec)) {
        const std::string name = e.path().filename().string();
        if (e.path().extension() != ".sql" || name.size() < 6 || name[4] != '_' ||
            !std::all_of(name.begin(), name.begin() + 4, [](char c) { return c >= '0' && c <= '9'; }))
            continue;
        files[std::stoi(name.substr(0, 4))] = e.path();
    }
    if (ec) throw database_error("reading migrations in " + sql_dir.string() + ": " + ec.message());
    if (files.empty()) throw database_error("no migrations (NNNN_name.sql) in " + sql_dir.string());

    return guarded("migrating the schema", [&] {
        migration_report report;
        pqxx::work txn(db.native().conn);
        // Held until this transaction ends; every version is applied inside it, so a failure
        // leaves the schema as it was.
        // A migration may rewrite a big table (0007 scans the sent log): it is not held to the
        // per-statement bound of database_timeout_ms, but to migration_timeout (the caller's
        // connection carries the same bound for the watchdog).
        txn.exec("SET LOCAL statement_timeout = '" + std::to_string(migration_timeout.count()) + "ms'");
        txn.exec("SELECT pg_advisory_xact_lock(7426113)");  // ndrguard's migration lock
        // Only when missing: the least-privileged roles (deploy/postgres/roles.sql) may not create
        // tables, and an up-to-date schema needs nothing from them but this read.
        if (txn.exec1("SELECT to_regclass('schema_migrations') IS NULL")[0].as<bool>())
            txn.exec("CREATE TABLE schema_migrations ("
                     " version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())");
        std::set<int> done;
        for (auto row : txn.exec("SELECT version FROM schema_migrations")) done.insert(row[0].as<int>());
        for (const auto& [version, path] : files) {
            if (done.count(version)) continue;
            std::ifstream in(path, std::ios::binary);
            if (!in) throw database_error("cannot read " + path.string());
            std::string sql((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
            txn.exec(sql);
            txn.exec("INSERT INTO schema_migrations (version, name) VALUES (" + txn.quote(version) + ", " +
                     txn.quote(path.filename().string()) + ")");
            report.applied.push_back(version);
        }
        report.schema_version = txn.exec1("SELECT coalesce(max(version), 0) FROM schema_migrations")[0].as<int>();
        txn.commit();
        return report;
    });
}

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

}  // namespace ndrguard::quarantine
