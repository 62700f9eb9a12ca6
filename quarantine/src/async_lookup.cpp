#include "ndrguard/quarantine/async_lookup.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <cstdlib>
#include <utility>

#include "pg_util.hpp"

namespace ndrguard::quarantine {

namespace {

constexpr const char* statement = "ndrguard_sent_lookup";

std::string pq_error(PGconn* c, const char* what) {
    std::string e = c ? PQerrorMessage(c) : "out of memory";
    while (!e.empty() && (e.back() == '\n' || e.back() == ' ')) e.pop_back();
    return std::string(what) + ": " + e;
}

}  // namespace

async_sent_lookups::async_sent_lookups(std::string conninfo, std::size_t max_batch)
    : async_sent_lookups(conninfo, operation_timeout_of(conninfo), max_batch) {}

// The lookup's one plan is reused for every query (planning over the day partitions cost more
// than running them): plan_cache_mode joins the connection's options, after the deadlines (the
// caller's own options come last and win).
async_sent_lookups::async_sent_lookups(std::string conninfo, std::chrono::milliseconds timeout, std::size_t max_batch)
    : conninfo_(timeout.count() > 0
                    ? conninfo_with_deadlines(conninfo, static_cast<int>(timeout.count()), "-c plan_cache_mode=force_generic_plan")
                    : std::move(conninfo)),
      timeout_(timeout), max_batch_(max_batch) {}

async_sent_lookups::~async_sent_lookups() {
    if (conn_) PQfinish(conn_);
}

int async_sent_lookups::socket() const { return conn_ ? PQsocket(conn_) : -1; }

void async_sent_lookups::submit(sent_lookup_request r, done_fn done) {
    request q{std::move(r), std::move(done)};
    if (timeout_.count() > 0) q.deadline = clock::now() + timeout_;
    queued_.push_back(std::move(q));
}

async_sent_lookups::clock::time_point async_sent_lookups::deadline() const {
    if (timeout_.count() <= 0) return clock::time_point::max();
    auto at = state_ == state::connecting || state_ == state::preparing || state_ == state::querying ? phase_deadline_
                                                                                                     : clock::time_point::max();
    // Requests wait in the order they came: the oldest one unanswered has the nearest deadline.
    for (const auto& f : in_flight_)
        if (f.done) return std::min(at, f.deadline);
    for (const auto& q : queued_) at = std::min(at, q.deadline);  // requeued ones are at the front
    return at;
}

void async_sent_lookups::drop_connection() {
    if (conn_) PQfinish(conn_);
    conn_ = nullptr;
    state_ = state::idle;
    proven_ = false;
    rows_.clear();
    result_error_.clear();
}

// Nothing waits longer than the timeout: a connect or query that takes longer drops the
// connection (a frozen server would never answer), and a request waiting longer fails, whether
// queued or in a query still running (the query's answer then goes to the others).
void async_sent_lookups::expire(clock::time_point now) {
    if (timeout_.count() <= 0) return;
    const std::string error = "no answer from PostgreSQL within " + std::to_string(timeout_.count()) + " ms (database_timeout_ms)";
    std::vector<done_fn> late;
    const bool busy = state_ == state::connecting || state_ == state::preparing || state_ == state::querying;
    if (busy && now >= phase_deadline_) {
        drop_connection();
        for (auto& f : in_flight_)
            if (f.done) late.push_back(std::move(f.done));
        in_flight_.clear();
    }
    for (auto& f : in_flight_)
        if (f.done && now >= f.deadline) late.push_back(std::exchange(f.done, nullptr));
    for (auto it = queued_.begin(); it != queued_.end();) {
        if (now < it->deadline) {
            ++it;
            continue;
        }
        late.push_back(std::move(it->done));
        it = queued_.erase(it);
    }
    for (auto& d : late)
        if (d) d(false, {}, error);
}

void async_sent_lookups::fail_all(const std::string& error, bool may_retry) {
    const bool retry = may_retry && state_ == state::querying && proven_;
    drop_connection();
    if (retry) {
        // A connection that worked before and fails now was most likely closed by a server
        // restart while idle: the same requests once more, on a fresh one.
        for (auto it = in_flight_.rbegin(); it != in_flight_.rend(); ++it) queued_.push_front(std::move(*it));
        in_flight_.clear();
        return;
    }
    // Only what was sent fails with the connection; what waits gets a fresh one. When the
    // server is away, the fresh one fails too and so do they.
    std::vector<request> failed = std::move(in_flight_);
    in_flight_.clear();
    if (failed.empty()) {
        failed.assign(std::make_move_iterator(queued_.begin()), std::make_move_iterator(queued_.end()));
        queued_.clear();
    }
    for (auto& f : failed)
        if (f.done) f.done(false, {}, error);
}

// A query answered with an error. For its data (not the connection, not a timeout), the
// connection is fine and the fault is one request's: each is asked again on its own, and one
// asked on its own fails alone. Anything else fails as the connection does.
void async_sent_lookups::query_failed(const std::string& error, database_error::kind failure) {
    if (failure != database_error::kind::request || state_ != state::querying) {
        fail_all(error, failure == database_error::kind::connection);
        return;
    }
    state_ = state::ready;
    rows_.clear();
    std::vector<request> failed = std::move(in_flight_);
    in_flight_.clear();
    failed.erase(std::remove_if(failed.begin(), failed.end(), [](const request& f) { return !f.done; }), failed.end());
    if (failed.size() <= 1) {  // alone already (or the others timed out): it was this one
        for (auto& f : failed) f.done(false, {}, error);
        return;
    }
    for (auto it = failed.rbegin(); it != failed.rend(); ++it) {
        it->alone = true;
        queued_.push_front(std::move(*it));
    }
}

bool async_sent_lookups::send_batch() {
    std::vector<std::string> ids;
    auto earliest = std::chrono::system_clock::time_point::max();
    while (!queued_.empty() && in_flight_.size() < max_batch_) {
        // One asked again on its own goes alone.
        if (queued_.front().alone && !in_flight_.empty()) break;
        const bool alone = queued_.front().alone;
        const auto& r = queued_.front().r;
        ids.insert(ids.end(), r.message_ids.begin(), r.message_ids.end());
        earliest = std::min(earliest, r.since);
        in_flight_.push_back(std::move(queued_.front()));
        queued_.pop_front();
        if (alone) break;
    }
    const lookup_query q = lookup_query_for(ids, earliest);
    if (q.empty) {  // nothing to ask: every request has no match
        auto done = std::move(in_flight_);
        in_flight_.clear();
        for (auto& d : done)
            if (d.done) d.done(true, {}, "");
        return true;
    }
    const char* values[3] = {q.hashes.c_str(), q.ids.c_str(), q.since_day.c_str()};
    if (!PQsendQueryPrepared(conn_, statement, 3, values, nullptr, nullptr, 0)) return false;
    ++queries_;
    state_ = state::querying;
    if (timeout_.count() > 0) phase_deadline_ = clock::now() + timeout_;
    return true;
}

// Reads what has come; wait::none when the query (or the preparation) is complete.
async_sent_lookups::wait async_sent_lookups::collect() {
    if (!PQconsumeInput(conn_)) {
        fail_all(pq_error(conn_, "looking up the sent log"));
        return wait::none;
    }
    while (!PQisBusy(conn_)) {
        PGresult* res = PQgetResult(conn_);
        if (!res) return wait::none;  // complete
        const ExecStatusType st = PQresultStatus(res);
        if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
            // Read on to the end of the answer first: the connection may still serve.
            if (result_error_.empty()) {
                std::string e = PQresultErrorMessage(res);
                while (!e.empty() && e.back() == '\n') e.pop_back();
                result_error_ = "looking up the sent log: " + (e.empty() ? std::string("error") : e);
                const char* sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
                result_failure_ = failure_of_sqlstate(sqlstate ? sqlstate : "");
            }
            PQclear(res);
            continue;
        }
        for (int i = 0; i < PQntuples(res); ++i)
            rows_.push_back({from_db_text(std::string_view(PQgetvalue(res, i, 0), static_cast<std::size_t>(PQgetlength(res, i, 0)))),
                             pg::from_epoch(std::strtod(PQgetvalue(res, i, 1), nullptr))});
        PQclear(res);
    }
    return wait::read;
}

async_sent_lookups::wait async_sent_lookups::advance(clock::time_point now) {
    expire(now);
    while (true) {
        switch (state_) {
            case state::idle: {
                if (queued_.empty()) return wait::none;
                // With a timeout, conninfo_ carries plan_cache_mode already (see the constructor).
                const char* keys[] = {"options", "dbname", nullptr};
                const char* values[] = {"-c plan_cache_mode=force_generic_plan", conninfo_.c_str(), nullptr};
                conn_ = timeout_.count() > 0 ? PQconnectStartParams(keys + 1, values + 1, 1) : PQconnectStartParams(keys, values, 1);
                if (timeout_.count() > 0) phase_deadline_ = now + timeout_;
                ++connections_;
                if (!conn_ || PQstatus(conn_) == CONNECTION_BAD) {
                    fail_all(pq_error(conn_, "connecting to PostgreSQL"));
                    continue;
                }
                state_ = state::connecting;
                connect_wait_ = wait::write;
                return connect_wait_;
            }
            case state::connecting: {
                switch (PQconnectPoll(conn_)) {
                    case PGRES_POLLING_READING: return wait::read;
                    case PGRES_POLLING_WRITING: return wait::write;
                    case PGRES_POLLING_FAILED:
                        fail_all(pq_error(conn_, "connecting to PostgreSQL"));
                        continue;
                    default: break;  // OK
                }
                if (PQsetnonblocking(conn_, 1) != 0 || !PQsendPrepare(conn_, statement, sent_lookup_sql, 3, nullptr)) {
                    fail_all(pq_error(conn_, "preparing the sent log lookup"));
                    continue;
                }
                state_ = state::preparing;
                if (PQflush(conn_) == 1) return wait::write;
                return wait::read;
            }
            case state::preparing:
            case state::querying: {
                const int flushed = PQflush(conn_);
                if (flushed < 0) {
                    fail_all(pq_error(conn_, "talking to PostgreSQL"));
                    continue;
                }
                if (flushed == 1) return wait::write;
                const wait w = collect();
                if (state_ == state::idle) continue;  // failed
                if (w != wait::none) return w;
                if (!result_error_.empty()) {
                    query_failed(std::exchange(result_error_, {}), result_failure_);
                    continue;
                }
                if (state_ == state::preparing) {
                    rows_.clear();
                    state_ = state::ready;
                    continue;
                }
                // A query is complete: its rows go to the requests that were in it.
                std::vector<sent_lookup_request> batch;
                for (const auto& f : in_flight_) batch.push_back(f.r);
                auto shares = share_matches(batch, rows_);
                auto done = std::move(in_flight_);
                in_flight_.clear();
                rows_.clear();
                state_ = state::ready;
                proven_ = true;
                for (std::size_t i = 0; i < done.size(); ++i)
                    if (done[i].done) done[i].done(true, std::move(shares[i]), "");
                continue;
            }
            case state::ready: {
                if (queued_.empty()) return wait::none;
                if (!send_batch()) {
                    fail_all(pq_error(conn_, "looking up the sent log"));
                    continue;
                }
                if (state_ == state::ready) continue;  // answered without asking
                if (PQflush(conn_) == 1) return wait::write;
                return wait::read;
            }
        }
    }
}

}  // namespace ndrguard::quarantine
