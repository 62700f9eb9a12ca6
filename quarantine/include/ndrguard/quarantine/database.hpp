// PostgreSQL access for ndrguard: connections and schema migrations (the domains have their own
// headers: sent_log.hpp, storms.hpp, held_items.hpp, ...). This library is the only code that talks
// SQL. Every failure surfaces as database_error, which the filter turns into an SMTP 451 so
// that Postfix keeps the message and retries.
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "ndrguard/quarantine/sql_text.hpp"

namespace ndrguard::quarantine {

struct database_error : std::runtime_error {
    // What failed: the request itself (a statement or its data; the connection still works, so
    // a batch may be tried again item by item), the connection, or the time allowed.
    enum class kind { request, connection, timeout };
    explicit database_error(const std::string& what, kind k = kind::request) : std::runtime_error(what), failure(k) {}
    kind failure;
    bool request_failed() const { return failure == kind::request; }
};

// How a server error's SQLSTATE is taken: a lost or refused connection, a server going away or
// short of resources (class 08, 57P0x, 53) is `connection`; statement_timeout and lock_timeout
// (57014, 55P03) are `timeout`; anything else concerns the request. Pure.
database_error::kind failure_of_sqlstate(std::string_view sqlstate);

// The operation timeout conninfo_with_deadlines wrote into `conninfo` (its statement_timeout);
// zero when there is none.
std::chrono::milliseconds operation_timeout_of(const std::string& conninfo);

// `conninfo` (a libpq key=value string or a postgresql:// URI) with client-side deadlines added,
// as a key=value string: connect_timeout, TCP keepalives and tcp_user_timeout (a vanished
// server is noticed), and statement_timeout and lock_timeout for the server (a locked table
// ends the statement). `extra_options` (e.g. "-c plan_cache_mode=force_generic_plan") join the
// caller's own `options`, which come last and win. Idempotent. Throws database_error on a
// conninfo libpq cannot parse. A server that is frozen answers none of this: callers still keep
// their own timer on every wait.
std::string conninfo_with_deadlines(const std::string& conninfo, int timeout_ms, const std::string& extra_options = {});

// One connection (libpqxx connections are not thread-safe: one per thread or strand).
//
// Every operation on it (each call of this library) must end within `operation_timeout`: a
// watchdog thread shared by all connections cuts the socket of one that passes its deadline
// (shutdown(2)), so that libpq's blocked wait returns even from a frozen server and the call
// throws database_error(kind::timeout). A connection found broken (cut, or lost) is replaced by
// a new one at the start of the next operation; it is never silently re-established in the
// middle of one. Without a timeout (zero) nothing is cut.
class database {
public:
    // The timeout is the one conninfo_with_deadlines put into `conninfo` (operation_timeout_of).
    explicit database(const std::string& conninfo);  // throws database_error
    database(const std::string& conninfo, std::chrono::milliseconds operation_timeout);
    ~database();
    database(const database&) = delete;
    database& operator=(const database&) = delete;
    struct impl;  // holds the libpqxx connection; libpqxx stays out of this header
    // The connection, for this library's operations: reconnects first when it is broken, and
    // puts it under the current operation's deadline (see pg::guarded).
    impl& native();
    bool broken() const;  // cut by the watchdog or lost: the next operation reconnects
    std::chrono::milliseconds operation_timeout() const { return timeout_; }

private:
    std::string conninfo_;
    std::chrono::milliseconds timeout_;
    std::unique_ptr<impl> impl_;
    std::unique_ptr<impl> retired_;  // the broken one, kept until the next reconnect (references to it stay valid)
};

struct migration_report {
    std::vector<int> applied;   // versions applied by this call, in order
    int schema_version = 0;     // highest version present afterwards
};

// Applies sql/NNNN_name.sql files not yet recorded in schema_migrations, in version order,
// each in its own transaction, under an advisory lock so that two instances starting at once
// do not both migrate. Idempotent.
// How long a migration may take as a whole: open a `database` with this operation timeout for
// it (serve does), since a migration can rewrite a big table.
inline constexpr std::chrono::milliseconds migration_timeout{std::chrono::minutes(10)};
migration_report migrate(database& db, const std::filesystem::path& sql_dir);

}  // namespace ndrguard::quarantine
