// Sent-log lookups that never block: one libpq connection in non-blocking mode, driven by the
// caller's event loop (wait for `socket()` to be ready as `advance()` asks, then call it again).
// Requests that arrive while a query runs are sent together as the next one, so a busy filter
// makes one query for many messages, and no thread is woken to make it.
//
// Bounded: with a timeout, every request is answered within it (a failure when the server is
// slow or frozen), and a connect or query that takes longer drops the connection; the caller
// calls advance() again at deadline() at the latest. A query that fails for its data (not the
// connection, not a timeout) is asked again request by request, so that only the request at
// fault fails.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ndrguard/quarantine/sent_log.hpp"
#include "ndrguard/quarantine/sent_log_writer.hpp"

struct pg_conn;  // libpq's PGconn, kept out of this header

namespace ndrguard::quarantine {

class async_sent_lookups {
public:
    using done_fn = std::function<void(bool ok, std::vector<sent_match>&& found, const std::string& error)>;
    enum class wait { none, read, write };
    using clock = std::chrono::steady_clock;

    // The timeout is the one conninfo_with_deadlines put into `conninfo` (operation_timeout_of).
    explicit async_sent_lookups(std::string conninfo, std::size_t max_batch = 200);
    async_sent_lookups(std::string conninfo, std::chrono::milliseconds timeout, std::size_t max_batch = 200);
    ~async_sent_lookups();
    async_sent_lookups(const async_sent_lookups&) = delete;
    async_sent_lookups& operator=(const async_sent_lookups&) = delete;

    // Queues a lookup (answered within the timeout from now); call advance() next. `done` runs
    // inside advance(), exactly once.
    void submit(sent_lookup_request r, done_fn done);

    // Does what can be done now (connect, send, read results, time out, call the done functions)
    // and says what to wait for on socket() before calling again (and call it at deadline() at
    // the latest). A failure fails the requests it concerns (their done functions get ok=false)
    // and drops the connection; the next request connects again.
    wait advance(clock::time_point now = clock::now());
    clock::time_point deadline() const;  // max: nothing to time out

    int socket() const;             // -1 when there is no connection
    std::uint64_t connection() const { return connections_; }  // changes with every new connection
    std::uint64_t queries() const { return queries_; }

private:
    struct request {
        sent_lookup_request r;
        done_fn done;  // empty once answered (timed out while its query runs)
        clock::time_point deadline = clock::time_point::max();
        bool alone = false;  // its batch failed for its data: asked on its own
    };
    enum class state { idle, connecting, preparing, ready, querying };
    void fail_all(const std::string& error, bool may_retry = true);
    void expire(clock::time_point now);
    void drop_connection();  // closes it; the next request connects again
    void query_failed(const std::string& error, database_error::kind failure);
    bool send_batch();
    wait collect();

    std::string conninfo_;
    std::chrono::milliseconds timeout_;
    std::size_t max_batch_;
    clock::time_point phase_deadline_ = clock::time_point::max();  // of the connect or query under way
    std::string result_error_;  // the query's error result, read to its end before it is acted on
    database_error::kind result_failure_ = database_error::kind::request;
    ::pg_conn* conn_ = nullptr;
    state state_ = state::idle;
    wait connect_wait_ = wait::write;
    std::deque<request> queued_;
    std::vector<request> in_flight_;
    std::vector<sent_match> rows_;
    std::uint64_t queries_ = 0;
    std::uint64_t connections_ = 0;
    bool proven_ = false;  // this connection has answered a query: a failure may be its age
};

// What a batch of lookups asks of the database, and how its rows are shared out: pure, shared by
// the blocking and the non-blocking paths.
struct lookup_query {
    std::string hashes, ids, since_day;  // the three parameters, as text
    bool empty = true;
};
lookup_query lookup_query_for(const std::vector<std::string>& message_ids, std::chrono::system_clock::time_point since);
std::vector<std::vector<sent_match>> share_matches(const std::vector<sent_lookup_request>& batch,
                                                   const std::vector<sent_match>& found);
extern const char* const sent_lookup_sql;

}  // namespace ndrguard::quarantine
