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
#include "ndrguard/quarantine/store.hpp"
#include "lookup_pump.hpp"
#include "next_hop_pool.hpp"

namespace ndrguard::filter {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
namespace det = ndrguard::detector;
namespace q = ndrguard::quarantine;
using smtp::transaction;
using smtp::smtp_reply;
using smtp::smtp_client_session;
using smtp::server_limits;
using smtp::smtp_server_session;
using smtp::remove_fields;
using smtp::with_header_on_top;
using smtp::queue_id_of;
using smtp::split_host_port;
using smtp::header_value;
using smtp::make_message_id;
using smtp::has_header;
using smtp::well_formed_address;
using smtp::recipient;

inline std::string xforward_value(const transaction& t, std::string_view name) {
    for (const auto& [k, v] : t.xforward)
        if (k == name) return v;
    return {};
}

// Log values are hostile input: one line, no spaces that would split key=value pairs.
inline std::string log_safe(std::string_view v, std::size_t max = 200) {
    std::string out;
    for (char c : v.substr(0, max)) out.push_back((static_cast<unsigned char>(c) <= ' ' || c == '"') ? '_' : c);
    return out.empty() ? "-" : out;
}

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

inline q::quarantine_caps caps_of(const serve_config& c) {
    return {c.quarantine_max_items, c.quarantine_max_mb * 1024 * 1024};
}

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
    std::ostream& log;
    filter_metrics metrics;
    q::sent_log_writer writer;
    q::async_sent_lookups lookups;  // io thread only: concurrent sessions' lookups in one query
    q::group_commit<quarantine_session> holder;
    std::mutex storms_mu;
    q::storm_tracker storms;  // under storms_mu
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
        const auto covered_from = q::utc_day(now) - std::chrono::days(cfg.bounce_window_days);
        return first < 0 || q::day(std::chrono::days(first)) > covered_from;
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
    struct message_job;
    // message_pipeline.cpp: decides `txn` (the session's, untouched until `done`) and answers
    // through `done` on the io thread.
    void start_message(const transaction& txn, std::string content, const std::string& peer, bool outbound_only,
                       std::function<void(std::string)> done);
};

}  // namespace ndrguard::filter
