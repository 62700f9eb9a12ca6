// The message pipeline of `ndrguard serve`: one complete message in, exactly one answer out. It
// gathers what the decision core (decision.hpp) needs, asks it, and carries out its plan. Its
// waits go through small interfaces, answered later by a callback on any thread (the pipeline
// continues on its io thread): the sent log (look up, record), the quarantine (hold) and the
// next hop (deliver). serve gives it PostgreSQL's group-commit writers, the lookup pump and the
// next-hop pool (filter/src/server_impl.hpp); unit tests give it the in-memory versions below,
// and drive it in-process on an io_context of their own.
#pragma once

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "ndrguard/detector/detector.hpp"
#include "ndrguard/filter/config.hpp"
#include "ndrguard/filter/evidence_gatherer.hpp"
#include "ndrguard/filter/metrics.hpp"
#include "ndrguard/quarantine/database.hpp"
#include "ndrguard/quarantine/held_items.hpp"
#include "ndrguard/quarantine/sent_log.hpp"
#include "ndrguard/quarantine/storm.hpp"
#include "ndrguard/smtp/client.hpp"
#include "ndrguard/smtp/server.hpp"

namespace ndrguard::filter {

// Which of `message_ids` (normalised) the sent log has, sent since `since`.
class sent_log_lookup {
public:
    using done_fn = std::function<void(bool ok, std::vector<std::string> found, const std::string& error)>;
    virtual ~sent_log_lookup() = default;
    virtual void find(std::vector<std::string> message_ids, std::chrono::system_clock::time_point since, done_fn done) = 0;
};

// Commits an outbound message's id to the sent log.
class sent_log_record {
public:
    using done_fn = std::function<void(bool ok, const std::string& error)>;
    virtual ~sent_log_record() = default;
    virtual void record(quarantine::sent_message m, done_fn done) = 0;
};

// Commits a held copy (or drops it over the mailbox's caps).
class quarantine_hold {
public:
    using done_fn = std::function<void(bool ok, quarantine::hold_result result, const std::string& error)>;
    virtual ~quarantine_hold() = default;
    virtual void hold(quarantine::held_message h, done_fn done) = 0;
};

// Hands the message over to the next hop; `t` stays alive until `done` runs.
class next_hop_delivery {
public:
    using done_fn = std::function<void(smtp::smtp_reply)>;  // code 0: no answer
    virtual ~next_hop_delivery() = default;
    virtual void send(const smtp::transaction& t, done_fn done) = 0;
};

// What the pipeline works with; every reference outlives the messages in flight.
struct pipeline_context {
    const serve_config& cfg;
    filter_metrics& metrics;
    boost::asio::io_context& io;  // the pipeline's steps run here
    std::mutex& storms_mu;
    quarantine::storm_tracker& storms;  // under storms_mu
    sent_log_lookup& lookups;
    sent_log_record& records;
    quarantine_hold& holds;
    next_hop_delivery& next_hop;
    const evidence_gatherer& evidence;  // DKIM, BATV, the returned trace (may wait on DNS: see may_block)
    std::function<bool(std::chrono::system_clock::time_point)> in_warm_up;
    std::function<void(std::string)> write_log;        // one line, without its newline
    std::function<void(std::function<void()>)> decide;  // runs a job off the io thread (big messages)
};

// Decides `txn` (the session's, untouched until `done`; its content moved into `content`) and
// calls `done` with the one reply line for it, on ctx.io's thread.
void run_message(pipeline_context& ctx, const smtp::transaction& txn, std::string content, const std::string& peer,
                 bool outbound_listener, std::function<void(std::string)> done);

// In-memory versions, for unit tests: each answers at once, on the caller's thread.
class memory_sent_log : public sent_log_lookup, public sent_log_record {
public:
    std::vector<quarantine::sent_message> sent;
    bool failing = false;  // every call fails, as PostgreSQL away would
    void find(std::vector<std::string> ids, std::chrono::system_clock::time_point since, sent_log_lookup::done_fn done) override {
        if (failing) return done(false, {}, "sent log is failing");
        std::vector<std::string> found;
        for (const auto& id : ids)
            for (const auto& m : sent)
                if (detector::normalize_message_id(m.message_id) == id && m.sent_at >= since) {
                    found.push_back(id);
                    break;
                }
        done(true, std::move(found), {});
    }
    void record(quarantine::sent_message m, sent_log_record::done_fn done) override {
        if (failing) return done(false, "sent log is failing");
        sent.push_back(std::move(m));
        done(true, {});
    }
};

class memory_quarantine : public quarantine_hold {
public:
    std::vector<quarantine::held_message> held;  // held()[i] has id i + 1
    std::size_t max_items_per_mailbox = 1000;     // forged ones beyond it are dropped
    bool failing = false;
    void hold(quarantine::held_message h, done_fn done) override {
        if (failing) return done(false, {}, "quarantine is failing");
        quarantine::hold_result r;
        const auto same_mailbox = std::count_if(held.begin(), held.end(), [&](const auto& x) { return x.mailbox == h.mailbox; });
        if (h.forged && static_cast<std::size_t>(same_mailbox) >= max_items_per_mailbox) {
            r.what = quarantine::hold_result::outcome::dropped_over_cap;
        } else {
            held.push_back(std::move(h));
            r.id = static_cast<std::int64_t>(held.size());
        }
        done(true, r, {});
    }
};

class memory_next_hop : public next_hop_delivery {
public:
    std::vector<smtp::transaction> received;
    smtp::smtp_reply answer{250, "2.0.0 Ok: queued as MEM1"};
    void send(const smtp::transaction& t, done_fn done) override {
        if (answer.code == 250) received.push_back(t);
        done(answer);
    }
};

}  // namespace ndrguard::filter
