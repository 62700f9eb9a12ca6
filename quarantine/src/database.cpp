#include "ndrguard/quarantine/database.hpp"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <libpq-fe.h>
#include <pqxx/pqxx>

#include "pg_util.hpp"

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

}  // namespace ndrguard::quarantine
