// The parts of `ndrguard serve` (filter_server) share this state; each role lives in a file of
// its own: client_session.cpp (the SMTP server side of each connection), message_pipeline.cpp
// (carries out the decision core's plan for one message), next_hop_pool.cpp (reinjection),
// lookup_pump.cpp (sent-log lookups on the io thread), housekeeping.cpp (retention, storm
// sync), server.cpp (wires them: bind, run, stop, deciders). Deadlines: deadlines.hpp.
#pragma once

#include "ndrguard/filter/server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <malloc.h>
#include <unistd.h>
#include <sys/time.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <iomanip>
#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <ostream>
#include <random>
#include <sstream>
#include <thread>

#include "ndrguard/detector/detector.hpp"
#include "ndrguard/filter/deadlines.hpp"
#include "ndrguard/filter/decision.hpp"
#include "ndrguard/smtp/message_edit.hpp"
#include "ndrguard/smtp/client.hpp"
#include "ndrguard/smtp/replies.hpp"
#include "ndrguard/smtp/server.hpp"
#include "ndrguard/quarantine/async_lookup.hpp"
#include "ndrguard/quarantine/database.hpp"
#include "ndrguard/quarantine/sent_log_writer.hpp"
#include "ndrguard/quarantine/held_items.hpp"
#include "ndrguard/quarantine/retention.hpp"
#include "ndrguard/quarantine/sent_log.hpp"
#include "ndrguard/quarantine/storms.hpp"
#include "ndrguard/filter/pipeline.hpp"
#include "lookup_pump.hpp"
#include "next_hop_pool.hpp"
#include "policy_listener.hpp"
#include "serve_common.hpp"

namespace ndrguard::filter {

// Held messages of all sessions in one transaction per batch. A hold answered 451 by the
// timeout may still be committed: Postfix's retry then finds it held by its queue id.
struct quarantine_session {
    using item = q::held_message;
    using result = q::hold_result;
    using settings = q::quarantine_caps;
    quarantine_session(const std::string& conninfo, const q::quarantine_caps& c) : db(conninfo), caps(c) {}
    std::vector<q::hold_result> process(const std::vector<q::held_message>& batch) { return q::hold_messages(db, caps, batch); }
    q::database db;
    q::quarantine_caps caps;
};

inline q::storm_settings storm_settings_of(const serve_config& c) {
    q::storm_settings s;
    s.threshold = c.storm_threshold;
    s.exit_threshold = c.storm_exit_threshold;
    s.window = std::chrono::seconds(c.storm_window_seconds);
    s.cool_down = std::chrono::seconds(c.storm_cool_down_seconds);
    return s;
}

inline q::retention_policy retention_policy_of(const serve_config& c) {
    return {c.sent_log_retention_days, c.quarantine_retention_days, std::chrono::seconds(c.storm_window_seconds)};
}

inline q::quarantine_caps caps_of(const serve_config& c) {
    return {c.quarantine_max_items, c.quarantine_max_mb * 1024 * 1024};
}

// The message pipeline's interfaces (pipeline.hpp) over PostgreSQL and the next-hop pool.
struct pg_sent_lookups final : sent_log_lookup {
    pg_sent_lookups(q::async_sent_lookups& l, sent_lookup_pump& p) : lookups(l), pump(p) {}
    void find(std::vector<std::string> ids, std::chrono::system_clock::time_point since, done_fn done) override {
        lookups.submit({std::move(ids), since}, [done = std::move(done)](bool ok, std::vector<q::sent_match>&& matches, const std::string& error) {
            std::vector<std::string> found;
            for (const auto& x : matches) found.push_back(x.message_id);
            done(ok, std::move(found), error);
        });
        pump.soon();
    }
    q::async_sent_lookups& lookups;  // io thread only
    sent_lookup_pump& pump;
};

struct pg_sent_records final : sent_log_record {
    explicit pg_sent_records(q::sent_log_writer& w) : writer(w) {}
    void record(q::sent_message m, done_fn done) override { writer.record_async(std::move(m), std::move(done)); }
    q::sent_log_writer& writer;
};

struct pg_holds final : quarantine_hold {
    explicit pg_holds(q::group_commit<quarantine_session>& h) : holder(h) {}
    void hold(q::held_message h, done_fn done) override {
        holder.submit_async(std::move(h), [done = std::move(done)](bool ok, q::hold_result&& r, const std::string& error) {
            done(ok, r, error);
        });
    }
    q::group_commit<quarantine_session>& holder;
};

struct pooled_next_hop final : next_hop_delivery {
    explicit pooled_next_hop(next_hop_pool& p) : pool(p) {}
    void send(const transaction& t, done_fn done) override { pool.send(t, std::move(done)); }
    next_hop_pool& pool;  // io thread only
};

struct filter_server::impl {
    impl(serve_config c, std::ostream& l)
        : cfg(std::move(c)), limits(deadlines_of(cfg)), log(l), writer(cfg.database, 1000, database_timeout()), lookups(cfg.database, database_timeout()),
          holder(cfg.database, caps_of(cfg), 1000, database_timeout()), storms(storm_settings_of(cfg)) {
        // Message buffers (1 MiB and more) get pages of their own, given back when freed:
        // glibc's adaptive threshold would otherwise move up to 32 MiB and keep them in the heap.
        ::mallopt(M_MMAP_THRESHOLD, 1 << 20);
    }
    // Every wait of a session on PostgreSQL ends within it (451 then).
    std::chrono::milliseconds database_timeout() const { return limits.database; }

    serve_config cfg;
    const deadlines limits;  // every bound of a wait, from cfg
    const evidence_gatherer evidence{cfg};  // reads the key files: a bad one stops serve here
    std::ostream& log;
    filter_metrics metrics;
    q::sent_log_writer writer;
    q::async_sent_lookups lookups;  // io thread only: concurrent sessions' lookups in one query
    q::group_commit<quarantine_session> holder;
    std::mutex storms_mu;
    q::storm_tracker storms;  // under storms_mu
    // When the storm sync last read the state back (steady ms; 0 never): the policy service
    // (policy_listen) refuses nothing on a state older than policy_max_state_age_seconds.
    std::atomic<std::int64_t> storm_synced_at_ms{0};
    std::unique_ptr<policy_listener> policy;  // policy_listen (bind() makes it)
    asio::io_context io{1};  // run by one thread: Asio skips the cross-thread hand-offs
    std::unique_ptr<tcp::acceptor> acceptor;
    std::unique_ptr<tcp::acceptor> outbound_acceptor;  // outbound_listen: all mail there is ours
    std::atomic<bool> stopping{false};
    std::atomic<bool> storm_sync_stop{false};
    std::mutex mu;
    std::condition_variable sessions_done;
    std::size_t sessions = 0;
    std::set<int> session_fds;  // to end idle sessions on stop()
    std::size_t message_memory = 0;  // bytes the sessions' messages hold (io thread only)
    next_hop_pool next_hops{io, cfg, limits};  // io thread only
    sent_lookup_pump lookup_pump{io, lookups, metrics, limits.lookup_gather};  // io thread only
    // The sent log's first day (days since 1970; -1 not known yet, -2 empty), asked by the storm
    // sync thread every minute: it changes once a day at most.
    std::atomic<long long> first_sent_day{-1};
    bool in_warm_up(std::chrono::system_clock::time_point now) const {
        if (!cfg.warm_up_auto) return false;
        const long long first = first_sent_day.load();
        return q::in_warm_up(first < 0 ? std::nullopt : std::optional(q::day(std::chrono::days(first))), now, cfg.bounce_window_days);
    }
    std::mutex log_mu;

    // Log lines are gathered and written together (at 32 KB, or by the io thread's 100 ms
    // timer, and at stop): a write(2) per message was one more system call, and one more wake-up
    // of journald, per message.
    std::string log_buffer;  // under log_mu
    void write_log(std::string line) {
        line.push_back('\n');
        std::lock_guard lock(log_mu);
        log_buffer += line;
        if (log_buffer.size() >= 32 * 1024) flush_log_locked();
    }
    void flush_log() {
        std::lock_guard lock(log_mu);
        flush_log_locked();
    }
    void flush_log_locked() {
        if (log_buffer.empty()) return;
        log.write(log_buffer.data(), static_cast<std::streamsize>(log_buffer.size()));
        log.flush();
        log_buffer.clear();
    }
    std::unique_ptr<asio::steady_timer> log_timer;
    void flush_log_every(std::chrono::milliseconds period) {
        log_timer->expires_after(period);
        log_timer->async_wait([this, period](boost::system::error_code ec) {
            flush_log();
            if (!ec && !stopping) flush_log_every(period);
        });
    }

    // Everything runs on one thread (`io`): client sessions (client_session.cpp), deciding
    // (message_pipeline.cpp), reinjection (next_hop_pool.cpp). Waits on the
    // database go to the group-commit threads and come back as completions; only the
    // classification of big messages runs on a pool of deciders, so as not to stall the rest.
    struct session_state;
    void accept_next(tcp::acceptor& listener, bool outbound_only);
    void session_ended(int fd);
    void decide(std::function<void()> job);
    void decider();
    std::deque<std::function<void()>> decide_jobs;  // under mu
    bool decide_stop = false;                        // under mu
    std::size_t deciders = 0, idle_deciders = 0;     // under mu
    std::condition_variable decide_ready;
    // housekeeping.cpp: threads of their own.
    void retention_loop();
    void storm_sync_loop();

    // The message pipeline (message_pipeline.cpp) and what it works with.
    pg_sent_lookups sent_lookups{lookups, lookup_pump};
    pg_sent_records sent_records{writer};
    pg_holds holds{holder};
    pooled_next_hop next_hop{next_hops};
    pipeline_context pipeline{cfg, metrics, io, storms_mu, storms, sent_lookups, sent_records, holds, next_hop, evidence,
                              [this](std::chrono::system_clock::time_point now) { return in_warm_up(now); },
                              [this](std::string line) { write_log(std::move(line)); },
                              [this](std::function<void()> job) { decide(std::move(job)); }};
};

}  // namespace ndrguard::filter
