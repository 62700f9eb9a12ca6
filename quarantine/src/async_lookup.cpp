#include "ndrguard/quarantine/async_lookup.hpp"

#include <libpq-fe.h>

#include <cstdlib>

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
    : conninfo_(std::move(conninfo)), max_batch_(max_batch) {}

async_sent_lookups::~async_sent_lookups() {
    if (conn_) PQfinish(conn_);
}

int async_sent_lookups::socket() const { return conn_ ? PQsocket(conn_) : -1; }

void async_sent_lookups::submit(sent_lookup_request r, done_fn done) {
    queued_.push_back({std::move(r), std::move(done)});
}

void async_sent_lookups::fail_all(const std::string& error) {
    const bool retry = state_ == state::querying && proven_;
    if (conn_) PQfinish(conn_);
    conn_ = nullptr;
    state_ = state::idle;
    proven_ = false;
    rows_.clear();
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
    for (auto& f : failed) f.done(false, {}, error);
}

bool async_sent_lookups::send_batch() {
    std::vector<std::string> ids;
    auto earliest = std::chrono::system_clock::time_point::max();
    while (!queued_.empty() && in_flight_.size() < max_batch_) {
        const auto& r = queued_.front().r;
        ids.insert(ids.end(), r.message_ids.begin(), r.message_ids.end());
        earliest = std::min(earliest, r.since);
        in_flight_.push_back(std::move(queued_.front()));
        queued_.pop_front();
    }
    const lookup_query q = lookup_query_for(ids, earliest);
    if (q.empty) {  // nothing to ask: every request has no match
        auto done = std::move(in_flight_);
        in_flight_.clear();
        for (auto& d : done) d.done(true, {}, "");
        return true;
    }
    const char* values[3] = {q.hashes.c_str(), q.ids.c_str(), q.since_day.c_str()};
    if (!PQsendQueryPrepared(conn_, statement, 3, values, nullptr, nullptr, 0)) return false;
    ++queries_;
    state_ = state::querying;
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
            std::string e = PQresultErrorMessage(res);
            PQclear(res);
            while (!e.empty() && e.back() == '\n') e.pop_back();
            fail_all("looking up the sent log: " + e);
            return wait::none;
        }
        for (int i = 0; i < PQntuples(res); ++i)
            rows_.push_back({from_db_text(std::string_view(PQgetvalue(res, i, 0), static_cast<std::size_t>(PQgetlength(res, i, 0)))),
                             pg::from_epoch(std::strtod(PQgetvalue(res, i, 1), nullptr))});
        PQclear(res);
    }
    return wait::read;
}

async_sent_lookups::wait async_sent_lookups::advance() {
    while (true) {
        switch (state_) {
            case state::idle: {
                if (queued_.empty()) return wait::none;
                // The lookup's one plan is reused for every query (planning over the day
                // partitions cost more than running them); the caller's own options come later
                // and win.
                const char* keys[] = {"options", "dbname", nullptr};
                const char* values[] = {"-c plan_cache_mode=force_generic_plan", conninfo_.c_str(), nullptr};
                conn_ = PQconnectStartParams(keys, values, 1);
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
                for (std::size_t i = 0; i < done.size(); ++i) done[i].done(true, std::move(shares[i]), "");
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
