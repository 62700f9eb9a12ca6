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
#include "ndrguard/smtp/message_edit.hpp"
#include "ndrguard/smtp/client.hpp"
#include "ndrguard/smtp/next_hop_connection.hpp"
#include "ndrguard/smtp/server.hpp"
#include "ndrguard/quarantine/async_lookup.hpp"
#include "ndrguard/quarantine/database.hpp"
#include "ndrguard/quarantine/sent_log_writer.hpp"
#include "ndrguard/quarantine/held_items.hpp"
#include "ndrguard/quarantine/retention.hpp"
#include "ndrguard/quarantine/sent_log.hpp"
#include "ndrguard/quarantine/storms.hpp"

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
using smtp::next_hop_connection;

namespace {

std::string xforward_value(const transaction& t, std::string_view name) {
    for (const auto& [k, v] : t.xforward)
        if (k == name) return v;
    return {};
}

// Log values are hostile input: one line, no spaces that would split key=value pairs.
std::string log_safe(std::string_view v, std::size_t max = 200) {
    std::string out;
    for (char c : v.substr(0, max)) out.push_back((static_cast<unsigned char>(c) <= ' ' || c == '"') ? '_' : c);
    return out.empty() ? "-" : out;
}

// Idle next-hop connections (io thread only): Postfix opens a new SMTP session for most
// messages, and a fresh connection to the next hop per message cost ~20 ms here. Each idle one
// holds a process of the next hop's smtpd: after a burst at most next_hop_max_idle are kept
// (below its process limit, so that releases and digests find a free one), each for about
// next_hop_idle_seconds (before the next hop's own timeout closes it under us).
class next_hop_pool {
public:
    next_hop_pool(asio::io_context& io, const serve_config& cfg) : io_(io), cfg_(cfg) {}

    // Reinjects `t` (alive until `done` runs); on the io thread.
    void send(const transaction& t, std::function<void(smtp_reply)> done) {
        if (endpoints_.empty()) {
            try {
                auto hp = split_host_port(cfg_.next_hop);
                tcp::resolver resolver(io_);
                endpoints_.push_back(*resolver.resolve(hp->first, std::to_string(hp->second)).begin());
            } catch (const std::exception&) {
                return done({0, "cannot resolve " + cfg_.next_hop});
            }
        }
        attempt(t, std::move(done), true);
    }

private:
    void attempt(const transaction& t, std::function<void(smtp_reply)> done, bool may_reuse) {
        std::shared_ptr<next_hop_connection> c;
        while (may_reuse && !idle_.empty() && !c) {
            c = std::move(idle_.back().connection);
            idle_.pop_back();
            if (!c->reusable()) c.reset();
        }
        const bool reused = c != nullptr;
        if (!c) c = std::make_shared<next_hop_connection>(io_, cfg_.hostname, std::chrono::seconds(cfg_.reinject_timeout_seconds));
        c->send(endpoints_, t, [this, c, reused, &t, done = std::move(done)](smtp_reply r) mutable {
            park(c);
            // A pooled connection the next hop closed meanwhile (perhaps after a 421) fails
            // before the content went out: the message cannot be queued there, so it goes again
            // on a new connection (the other pooled ones may be as stale).
            if (r.code == 0 && reused && !c->content_sent()) return attempt(t, std::move(done), false);
            if (r.code == 0) r.text = cfg_.next_hop;  // "cannot reach the next hop: HOST:PORT"
            done(std::move(r));
        });
    }

    // Back into the pool, or closed when it cannot carry another message.
    void park(const std::shared_ptr<next_hop_connection>& c) {
        if (!c->reusable()) return c->close();
        if (idle_.size() >= 64) return c->quit();
        idle_.push_back({c, std::chrono::steady_clock::now()});
        sweep_by(idle_.size() > static_cast<std::size_t>(cfg_.next_hop_max_idle) ? burst_grace : idle_period());
    }

    // Under load every connection is idle for a moment between two messages: a pool cut to
    // next_hop_max_idle at once would close and open connections all the time (~20 ms each).
    // So the ones beyond it are closed once idle for burst_grace, the rest after
    // next_hop_idle_seconds, by one timer (none armed and cancelled per message).
    static constexpr std::chrono::seconds burst_grace{1};
    std::chrono::milliseconds idle_period() const { return std::chrono::milliseconds(500 * cfg_.next_hop_idle_seconds); }

    void sweep_by(std::chrono::steady_clock::duration within) {
        const auto at = std::chrono::steady_clock::now() + within;
        if (sweep_armed_ && sweep_at_ <= at) return;
        sweep_armed_ = true;
        sweep_at_ = at;
        sweep_.expires_at(at);  // cancels the wait armed before, whose handler then does nothing
        sweep_.async_wait([this](boost::system::error_code ec) {
            if (ec) return;
            sweep_armed_ = false;
            sweep();
        });
    }

    // idle_ is in the order the connections were parked (taken from the back): the longest
    // idle first.
    void sweep() {
        const auto now = std::chrono::steady_clock::now();
        const auto max_idle = static_cast<std::size_t>(cfg_.next_hop_max_idle);
        std::size_t close = 0;
        while (close < idle_.size() &&
               (idle_[close].since <= now - std::chrono::seconds(cfg_.next_hop_idle_seconds) ||
                (idle_.size() - close > max_idle && idle_[close].since <= now - burst_grace)))
            idle_[close++].connection->quit();
        idle_.erase(idle_.begin(), idle_.begin() + static_cast<std::ptrdiff_t>(close));
        if (!idle_.empty()) sweep_by(idle_.size() > max_idle ? burst_grace : idle_period());
    }

    struct idle {
        std::shared_ptr<next_hop_connection> connection;
        std::chrono::steady_clock::time_point since;
    };
    asio::io_context& io_;
    const serve_config& cfg_;
    std::vector<tcp::endpoint> endpoints_;  // the first address of next_hop
    std::vector<idle> idle_;  // the most recently used last: taken first
    asio::steady_timer sweep_{io_};
    bool sweep_armed_ = false;
    std::chrono::steady_clock::time_point sweep_at_{};
};

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

q::storm_settings storm_settings_of(const serve_config& c) {
    q::storm_settings s;
    s.threshold = c.storm_threshold;
    s.exit_threshold = c.storm_exit_threshold;
    s.window = std::chrono::seconds(c.storm_window_seconds);
    s.cool_down = std::chrono::seconds(c.storm_cool_down_seconds);
    return s;
}

q::quarantine_caps caps_of(const serve_config& c) {
    return {c.quarantine_max_items, c.quarantine_max_mb * 1024 * 1024};
}

q::retention_policy retention_policy_of(const serve_config& c) {
    return {c.sent_log_retention_days, c.quarantine_retention_days, std::chrono::seconds(c.storm_window_seconds)};
}

// Only bounces count towards a storm; read receipts and abuse reports are not NDRs.
bool counts_for_storms(det::message_class c) {
    return c != det::message_class::not_bounce && c != det::message_class::mdn && c != det::message_class::feedback;
}

}  // namespace

struct filter_server::impl {
    impl(serve_config c, std::ostream& l)
        : cfg(std::move(c)), log(l), writer(cfg.database, 1000, database_timeout()), lookups(cfg.database, database_timeout()),
          holder(cfg.database, caps_of(cfg), 1000, database_timeout()), storms(storm_settings_of(cfg)) {
        // Message buffers (1 MiB and more) get pages of their own, given back when freed:
        // glibc's adaptive threshold would otherwise move up to 32 MiB and keep them in the heap.
        ::mallopt(M_MMAP_THRESHOLD, 1 << 20);
    }
    // Every wait of a session on PostgreSQL ends within it (451 then).
    std::chrono::milliseconds database_timeout() const { return std::chrono::milliseconds(cfg.database_timeout_ms); }

    serve_config cfg;
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
    next_hop_pool next_hops{io, cfg};  // io thread only
    // The lookups' PostgreSQL socket, watched by the io thread.
    std::unique_ptr<asio::posix::stream_descriptor> lookup_socket;
    std::uint64_t lookup_connection = 0;
    bool lookup_wait_armed = false;
    asio::steady_timer lookup_deadline{io};
    std::chrono::steady_clock::time_point lookup_due = std::chrono::steady_clock::time_point::max();
    // Lookups asked while the io thread works through one batch of ready sockets go out as one
    // query: the pump is posted, so it runs after the handlers already queued. When busy (the
    // last query left less than 1 ms ago, and other sessions are open that may ask too), a
    // lookup also waits lookup_gather_microseconds for more to come: each query costs
    // PostgreSQL about as much as the lookups in it together.
    bool lookups_pump_due = false;
    asio::steady_timer lookup_gather{io};
    std::chrono::steady_clock::time_point last_lookup_pump{};
    void pump_lookups_soon() {
        if (lookups_pump_due) return;
        lookups_pump_due = true;
        auto pump = [this] {
            lookups_pump_due = false;
            last_lookup_pump = std::chrono::steady_clock::now();
            pump_lookups();
        };
        const bool busy = std::chrono::steady_clock::now() - last_lookup_pump < std::chrono::milliseconds(1) &&
                          metrics.sessions_active.load(std::memory_order_relaxed) > 1;
        if (busy && cfg.lookup_gather_microseconds > 0) {
            lookup_gather.expires_after(std::chrono::microseconds(cfg.lookup_gather_microseconds));
            lookup_gather.async_wait([pump](boost::system::error_code) { pump(); });
        } else {
            asio::post(io, pump);
        }
    }
    void pump_lookups() {
        const auto w = lookups.advance();
        metrics.lookup_queries.store(lookups.queries(), std::memory_order_relaxed);
        // libpq may have closed its socket (a failure) or opened another (a reconnect). Asio lets
        // go of the old number at once, in this same handler: were an accepted client given that
        // number first, Asio's deregistration would take the client's socket out of epoll.
        const int fd = lookups.socket();
        if (lookup_socket && (lookups.connection() != lookup_connection || lookup_socket->native_handle() != fd)) {
            lookup_socket->release();  // libpq owns (and has closed) the old one
            lookup_socket.reset();
            lookup_wait_armed = false;
        }
        if (!lookup_socket && fd >= 0) {
            lookup_connection = lookups.connection();
            lookup_socket = std::make_unique<asio::posix::stream_descriptor>(io, fd);
        }
        // The next deadline of a connect, query or request: advance() then fails what is late
        // (and drops the connection, let go of above in that same call of the pump).
        const auto due = lookups.deadline();
        if (due != lookup_due) {
            lookup_due = due;
            lookup_deadline.cancel();
            if (due != std::chrono::steady_clock::time_point::max()) {
                lookup_deadline.expires_at(due);
                lookup_deadline.async_wait([this](boost::system::error_code ec) {
                    if (ec) return;  // re-armed or stopping
                    lookup_due = std::chrono::steady_clock::time_point::max();
                    pump_lookups();
                });
            }
        }
        if (w == q::async_sent_lookups::wait::none || !lookup_socket || lookup_wait_armed) return;
        lookup_wait_armed = true;
        lookup_socket->async_wait(w == q::async_sent_lookups::wait::read ? asio::posix::stream_descriptor::wait_read
                                                                         : asio::posix::stream_descriptor::wait_write,
                                  [this, generation = lookup_connection](boost::system::error_code) {
                                      if (generation != lookup_connection) return;  // an old connection's
                                      lookup_wait_armed = false;
                                      pump_lookups();
                                  });
    }
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

    // Everything runs on one thread (`io`): client sessions, deciding, reinjection. Waits on the
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
    void retention_loop();
    void storm_sync_loop();
    struct message_job;
};

// Deciding one message, in steps that each run on the io thread. The waits (sent log,
// quarantine, next hop) are asynchronous: the group-commit threads and the next-hop sockets
// call back, so a busy filter hands no message from thread to thread.
struct filter_server::impl::message_job : std::enable_shared_from_this<message_job> {
    using done_fn = std::function<void(std::string)>;

    message_job(impl& owner, const transaction& txn, std::string message, const std::string& client_peer, bool outbound_listener,
                done_fn finished)
        : m(owner), t(txn), content(std::move(message)), peer(client_peer), outbound_only(outbound_listener),
          done(std::move(finished)) {}

    impl& m;
    const transaction& t;  // the session's, untouched until `done`; its content is moved to:
    std::string content;   // the message, the one copy of it (moved on where it is used last)
    std::string peer;
    bool outbound_only;
    done_fn done;
    const std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
    const std::chrono::system_clock::time_point now = std::chrono::system_clock::now();
    std::ostringstream line;
    std::string client;
    transaction out;  // what is reinjected
    det::result r;

    // Bounces: per recipient mailbox.
    struct plan {
        std::size_t rcpt = 0;
        std::string mailbox;
        bool malformed = false;  // not UTF-8: never a mailbox key, delivered unfiltered
        bool storm = false;
        std::int64_t storm_id = 0;
        decision d;
    };
    verification v = verification::unverifiable;
    bool counted = false;
    q::ndr_tally seen;
    std::vector<plan> plans;
    std::vector<q::ndr_tally> outcomes;
    std::vector<std::string> held_ids;
    std::size_t dropped = 0, holds_waiting = 0;
    std::string hold_error;
    // Its labels in filter_metrics (indexes; see metrics.hpp).
    std::size_t metric_direction = 0, metric_class = 8, metric_verification = 3, metric_action = 0;
    enum : std::size_t { act_deliver = 0, act_reject = 1, act_quarantine = 2, act_tempfail = 3, act_dropped = 4 };

    // Continues on the io thread (callbacks of other threads come through here).
    template <class F>
    void on_io(F&& f) {
        asio::post(m.io, std::forward<F>(f));
    }

    void start() {
        client = xforward_value(t, "ADDR");
        if (client.empty() || client == "[UNAVAILABLE]") client = peer;
        bool outbound = outbound_only;  // outbound_listen, or a client in our networks:
        for (const auto& n : m.cfg.our_networks)
            if (n.contains(client)) outbound = true;
        line << "ndrguard: queue_id=" << log_safe(xforward_value(t, "IDENT")) << " client=" << log_safe(client)
             << " from=<" << log_safe(t.mail_from, 100) << "> rcpts=" << t.recipients.size() << " size=" << content.size()
             << " direction=" << (outbound ? "outbound" : "inbound");
        metric_direction = outbound ? 1 : 0;
        out = t;  // the envelope (the content is not in t any more)
        // Headers of ours that came with the message are forged (or stale): only the filter's
        // own verdict may reach the mailbox, whatever the message's way.
        if (std::size_t n = remove_fields(content, {m.cfg.verdict_header, "X-NDRGuard-Released"}))
            line << " forged_headers_removed=" << n;
        if (outbound) return outbound_message();
        // Big messages are classified off the io thread, so that they do not stall the others.
        if (content.size() > 1024 * 1024)
            return m.decide([self = shared_from_this()] {
                self->classify();
                self->on_io([self] { self->classified(); });
            });
        classify();
        classified();
    }

    void outbound_message() {
        out.message = std::move(content);
        if (!has_header(out.message, "Message-ID")) {
            static thread_local std::mt19937_64 rng(std::random_device{}());
            out.message = with_header_on_top(out.message, "Message-ID", make_message_id(now, rng(), m.cfg.hostname));
            line << " message_id_added=yes";
        }
        std::string id = header_value(out.message, "Message-ID");
        std::string normalized = det::normalize_message_id(id);
        line << " msgid=<" << log_safe(normalized) << ">";
        if (normalized.empty()) {
            line << " action=deliver";
            return reinject(out, [self = shared_from_this()](std::string answer) { self->finish(std::move(answer)); });
        }
        std::vector<std::string> rcpts;
        for (const auto& rc : t.recipients) rcpts.push_back(rc.address);
        m.writer.record_async({id, t.mail_from, rcpts, now}, [self = shared_from_this(), asked = std::chrono::steady_clock::now()](
                                                                 bool ok, const std::string& error) {
            self->on_io([self, ok, error, db_ms = ms_since(asked)] {
                self->line << " db_ms=" << db_ms;
                if (ok) self->m.metrics.records.fetch_add(1, std::memory_order_relaxed);
                if (!ok) {
                    self->m.metrics.count_database_error(1);  // record
                    self->line << " action=tempfail error=" << log_safe(error, 300);
                    return self->finish("451 4.3.0 Error: sent log unavailable, try again later");
                }
                self->line << " action=deliver";
                self->reinject(self->out, [self](std::string answer) { self->finish(std::move(answer)); });
            });
        });
    }

    void classify() {
        det::envelope env;
        env.mail_from = t.mail_from;
        r = det::classify(content, env);
    }

    void classified() {
        line << " class=" << det::to_string(r.klass);
        metric_class = static_cast<std::size_t>(r.klass);
        if (r.klass == det::message_class::not_bounce) {
            line << " action=deliver";
            out.message = std::move(content);
            return reinject(out, [self = shared_from_this()](std::string answer) { self->finish(std::move(answer)); });
        }
        if (r.message_ids.empty()) return looked_up({});
        m.lookups.submit({r.message_ids, now - std::chrono::days(m.cfg.bounce_window_days)},
                               [self = shared_from_this(), asked = std::chrono::steady_clock::now()](
                                   bool ok, std::vector<q::sent_match>&& matches, const std::string& error) {
                                   self->on_io([self, ok, matches = std::move(matches), error, db_ms = ms_since(asked), asked] {
                                       self->line << " db_ms=" << db_ms;
                                       auto& mx = self->m.metrics;
                                       mx.lookup_seconds.observe(
                                           std::chrono::duration<double>(std::chrono::steady_clock::now() - asked).count());
                                       (ok ? (matches.empty() ? mx.lookups_not_found : mx.lookups_found) : mx.lookups_failed)
                                           .fetch_add(1, std::memory_order_relaxed);
                                       if (!ok) {
                                           mx.count_database_error(0);  // lookup
                                           self->line << " error=" << log_safe(error, 300) << " action=tempfail";
                                           return self->finish("451 4.3.0 Error: sent log unavailable, try again later");
                                       }
                                       std::vector<std::string> found;
                                       for (const auto& x : matches) found.push_back(x.message_id);
                                       self->looked_up(found);
                                   });
                               });
        m.pump_lookups_soon();
    }

    // A bounce, its verification known: counted for storms and decided per recipient mailbox
    // (a storm is one mailbox's); quarantined copies are committed before anything else, the
    // recipients to deliver go to the next hop in one transaction.
    void looked_up(const std::vector<std::string>& found) {
        v = verify(r.message_ids, found);
        metric_verification = static_cast<std::size_t>(v);
        counted = counts_for_storms(r.klass);
        (v == verification::verified ? seen.verified : v == verification::forged ? seen.forged : seen.unverifiable) = 1;
        {
            std::lock_guard lock(m.storms_mu);
            for (std::size_t i = 0; i < t.recipients.size(); ++i) {
                plan p;
                p.rcpt = i;
                p.malformed = !well_formed_address(t.recipients[i].address);
                if (p.malformed) {
                    plans.push_back(std::move(p));
                    continue;
                }
                p.mailbox = q::mailbox_key(t.recipients[i].address);
                if (counted) p.storm = m.storms.observe(p.mailbox, seen, r.reporting_mta, r.original_subject, now);
                p.storm_id = m.storms.storm_id(p.mailbox);
                plans.push_back(std::move(p));
            }
        }
        policy_context ctx;
        ctx.mode = m.cfg.mode;
        ctx.null_sender = t.mail_from.empty();
        ctx.shadow = m.cfg.shadow;
        ctx.warm_up = m.in_warm_up(now);
        std::size_t rejects = 0, storms_seen = 0;
        for (auto& p : plans) {
            policy_context c = ctx;
            c.storm = p.storm;
            p.d = m.cfg.verdicts.decide(r.klass, v, c);
            if (p.malformed) {  // after queue only: neither held nor counted under a mangled key
                p.d.act = p.d.intended = action::deliver;
                p.d.notes.push_back("malformed_recipient");
            }
            rejects += p.d.act == action::reject;
            storms_seen += p.storm;
        }
        // One reply per transaction: a 5xx can only refuse every recipient. Where only some were
        // to be refused, they are held instead (nothing is dropped silently).
        if (rejects > 0 && rejects < plans.size())
            for (auto& p : plans)
                if (p.d.act == action::reject) {
                    p.d.act = p.d.intended = action::quarantine;
                    p.d.notes.push_back("mixed_recipients");
                }

        line << " verification=" << to_string(v) << " policy=" << to_string(plans.front().d.policy_act);
        std::set<std::string_view> notes;
        for (const auto& p : plans) notes.insert(p.d.notes.begin(), p.d.notes.end());
        for (auto n : notes) line << " note=" << n;
        if (ctx.warm_up && !notes.count("warm_up")) line << " warm_up=yes";
        if (storms_seen) line << " storm_mailboxes=" << storms_seen;
        line << " ids=" << r.message_ids.size();
        if (!r.message_ids.empty()) line << " msgid=<" << log_safe(r.message_ids.front()) << ">";
        line << " reasons=";
        for (std::size_t i = 0; i < r.reasons.size(); ++i) line << (i ? "," : "") << r.reasons[i];

        outcomes.assign(plans.size(), {});
        if (rejects == plans.size()) {
            for (auto& o : outcomes) o.rejected = 1;
            settle(false);
            line << " action=reject";
            metric_action = act_reject;
            return finish("550 5.7.1 Error: bounce of a message not sent from here (backscatter)");
        }
        hold();
    }

    // Held first: once the copies are committed, delivering the rest may fail and be retried
    // (Postfix's queue id makes the retry find them held already).
    void hold() {
        std::vector<std::size_t> to_hold;
        for (std::size_t i = 0; i < plans.size(); ++i)
            if (plans[i].d.act == action::quarantine) to_hold.push_back(i);
        if (to_hold.empty()) return deliver();
        holds_waiting = to_hold.size();
        held_ids.assign(plans.size(), "");
        const bool delivers = std::any_of(plans.begin(), plans.end(), [](const plan& p) { return p.d.act == action::deliver; });
        for (std::size_t i : to_hold) {
            const plan& p = plans[i];
            q::held_message h;
            h.mailbox = p.mailbox;
            h.sender = t.mail_from;
            h.client = client;
            h.queue_id = xforward_value(t, "IDENT");
            if (h.queue_id == "[UNAVAILABLE]" || h.queue_id == "NOQUEUE") h.queue_id.clear();
            h.klass = std::string(det::to_string(r.klass));
            h.verification = std::string(to_string(v));
            for (auto reason : r.reasons) h.reasons.emplace_back(reason);
            for (auto n : p.d.notes) h.notes.emplace_back(n);
            h.message_ids = r.message_ids;
            h.reporting_mta = r.reporting_mta;
            h.subject = r.subject;
            h.original_subject = r.original_subject;
            if (!r.recipients.empty()) h.original_recipient = r.recipients.front().address;
            h.storm_id = p.storm_id;
            h.forged = v == verification::forged;
            // A copy per mailbox but the last, which takes the content when nothing is delivered.
            h.message = (!delivers && i == to_hold.back()) ? std::move(content) : content;
            h.held_at = now;
            m.holder.submit_async(std::move(h), [self = shared_from_this(), i](bool ok, q::hold_result&& res, const std::string& error) {
                self->on_io([self, i, ok, res, error] {
                    if (!ok) {
                        self->hold_error = error;
                        self->m.metrics.count_database_error(2);  // hold
                    } else if (res.what == q::hold_result::outcome::dropped_over_cap) {
                        ++self->dropped;
                        self->outcomes[i].dropped = 1;
                    } else {
                        self->held_ids[i] = std::to_string(res.id);
                        self->outcomes[i].quarantined = 1;
                    }
                    if (--self->holds_waiting == 0) self->held();
                });
            });
        }
    }

    void held() {
        if (!hold_error.empty()) {
            settle(true);
            line << " action=tempfail error=" << log_safe(hold_error, 300);
            return finish("451 4.3.0 Error: quarantine unavailable, try again later");
        }
        held_ids.erase(std::remove(held_ids.begin(), held_ids.end(), std::string()), held_ids.end());
        deliver();
    }

    void deliver() {
        transaction to_deliver = std::move(out);  // t with the forged headers removed
        to_deliver.recipients.clear();
        const decision* header_decision = nullptr;
        for (std::size_t i = 0; i < plans.size(); ++i)
            if (plans[i].d.act == action::deliver) {
                to_deliver.recipients.push_back(t.recipients[plans[i].rcpt]);
                if (!header_decision) header_decision = &plans[i].d;
                outcomes[i].delivered = 1;
            }
        const std::size_t held = held_ids.size();
        line << " action=" << (to_deliver.recipients.empty() ? (held ? "quarantine" : "drop")
                                                               : (held || dropped) ? "mixed" : "deliver");
        metric_action = held ? act_quarantine : to_deliver.recipients.empty() ? act_dropped : act_deliver;
        if (held) {
            line << " quarantine_ids=";
            for (std::size_t i = 0; i < held_ids.size(); ++i) line << (i ? "," : "") << held_ids[i];
        }
        if (dropped) line << " dropped_over_cap=" << dropped;
        if (to_deliver.recipients.empty()) {
            settle(false);
            if (held) return finish("250 2.0.0 Ok: held in quarantine as " + held_ids.front());
            return finish("250 2.0.0 Ok: dropped (forged bounce, mailbox quarantine full)");
        }
        to_deliver.message = with_header_on_top(content, m.cfg.verdict_header,
                                                verdict_header_value(v, r.message_ids, r.reasons, *header_decision));
        content.clear();
        content.shrink_to_fit();  // only the copy with the header is needed now
        out = std::move(to_deliver);
        reinject(out, [self = shared_from_this()](std::string answer) {
            self->settle(answer[0] == '4');
            self->finish(std::move(answer));
        });
    }

    // Counts by outcome go to the storm; a 451 takes back what was counted, since Postfix will
    // offer the message again.
    void settle(bool retried_later) {
        if (!counted) return;
        std::lock_guard lock(m.storms_mu);
        for (std::size_t i = 0; i < plans.size(); ++i) {
            if (plans[i].malformed) continue;  // never counted
            q::ndr_tally t2 = outcomes[i];
            if (retried_later) {
                t2 = {};
                t2.verified = -seen.verified;
                t2.forged = -seen.forged;
                t2.unverifiable = -seen.unverifiable;
            }
            m.storms.observe(plans[i].mailbox, t2, "", "", now);
        }
    }

    // Milliseconds since `from`, for the log: where a message's time went.
    static std::string ms_since(std::chrono::steady_clock::time_point from) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.1f", std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - from).count());
        return buf;
    }

    void reinject(const transaction& tx, std::function<void(std::string)> then) {
        m.next_hops.send(tx, [self = shared_from_this(), &tx, then = std::move(then), sent = std::chrono::steady_clock::now()](smtp_reply reply) {
            self->line << " next_hop_ms=" << ms_since(sent);
            if (reply.code == 250) {
                std::string qid = queue_id_of(reply);
                self->line << " next_hop_queue_id=" << log_safe(qid);
                return then("250 2.0.0 Ok: queued as " + (qid.empty() ? std::string("(unknown)") : qid));
            }
            self->line << " next_hop_reply=" << reply.code;  // not delivered after all
            self->m.metrics.next_hop_failures.fetch_add(1, std::memory_order_relaxed);
            std::string answer = answer_for_next_hop_failure(reply.code, reply.summary(), self->m.cfg.mode, tx.mail_from.empty());
            if (reply.code >= 500 && answer[0] == '4') self->line << " note=next_hop_refusal_kept";  // no backscatter of ours
            then(std::move(answer));
        });
    }

    void finish(std::string answer) {
        double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        // What Postfix was told decides: a 4xx is a tempfail whatever was planned, a 5xx from
        // the next hop a refusal.
        if (answer[0] == '4') metric_action = act_tempfail;
        else if (answer[0] == '5') metric_action = act_reject;
        m.metrics.count_message(metric_direction, metric_class, metric_verification, metric_action);
        m.metrics.message_seconds.observe(ms / 1000.0);
        line << " reply=\"" << answer.substr(0, 80) << "\" ms=" << std::fixed << std::setprecision(1) << ms;
        m.write_log(line.str());
        done(std::move(answer));
    }
};

// Before queue a recipient that cannot be a mailbox key is refused at RCPT (the sender hears
// it); after queue it is accepted and passed on unfiltered (see message_state::looked_up).
static server_limits session_limits(const serve_config& c) {
    server_limits l = c.limits;
    l.refuse_malformed_recipients = c.mode == filter_mode::before_queue;
    return l;
}

// One client connection, driven by completion handlers on the io thread.
struct filter_server::impl::session_state : std::enable_shared_from_this<session_state> {
    session_state(impl& owner, tcp::socket sock, std::string client, bool outbound)
        : m(owner), socket(std::move(sock)), timer(socket.get_executor()), smtp(owner.cfg.hostname, session_limits(owner.cfg)),
          peer(std::move(client)), outbound_only(outbound), fd(socket.native_handle()),
          deadline(std::chrono::steady_clock::now() + std::chrono::seconds(owner.cfg.session_timeout_seconds)) {}

    impl& m;
    tcp::socket socket;
    asio::steady_timer timer;  // idle timeout of each read
    smtp_server_session smtp;
    std::string peer;
    bool outbound_only;
    int fd;
    std::chrono::steady_clock::time_point deadline;
    std::array<char, 65536> input;  // not zeroed: 64 KB of memset per connection showed in profiles
    std::string output, pending;
    // The idle timeout: each read only moves idle_until; the one timer re-arms itself lazily
    // (arming and cancelling a timer around every read cost more than the reads' own work).
    bool reading = false, idle_expired = false, finished = false;
    std::chrono::steady_clock::time_point idle_until;
    std::size_t charged = 0;  // bytes of m.message_memory that this session's message holds

    // max_message_memory_mb: the message in progress is charged as it grows; one that would
    // take the total past the cap ends in 452 4.3.1 (Postfix retries), unless it is alone.
    void account_memory() {
        const std::size_t now = smtp.content_bytes();
        if (now < charged && !smtp.has_message()) return release_memory(charged - now);
        if (now <= charged) return;
        const std::size_t more = now - charged;
        const std::size_t cap = m.cfg.max_message_memory_mb << 20;
        if (m.message_memory != charged && m.message_memory + more > cap && !smtp.has_message()) {
            smtp.drop_message("452 4.3.1 Insufficient system storage");
            m.write_log("ndrguard: client=" + log_safe(peer) + " action=tempfail reason=max_message_memory_mb used_mb=" +
                        std::to_string(m.message_memory >> 20) + " max_message_memory_mb=" +
                        std::to_string(m.cfg.max_message_memory_mb));
            return release_memory(charged - std::min(charged, smtp.content_bytes()));
        }
        m.message_memory += more;
        charged = now;
    }
    void release_memory(std::size_t bytes) {
        m.message_memory -= bytes;
        charged -= bytes;
    }

    void start() {
        watch_idle(std::chrono::steady_clock::now() + std::chrono::seconds(m.cfg.idle_timeout_seconds));
        send(smtp.greeting());  // (TCP_NODELAY comes from the listening socket)
    }

    // While a message is being decided the idle timer only re-arms: every wait of a decision is
    // bounded on its own (database_timeout_ms, reinject_timeout_seconds), and then the answer
    // (or its failed write to a client that has gone) ends or resumes the session.
    void watch_idle(std::chrono::steady_clock::time_point at) {
        timer.expires_at(at);
        timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
            if (ec || self->finished) return;  // the session ended (perhaps just as this fired)
            const auto now = std::chrono::steady_clock::now();
            if (self->reading && now >= self->idle_until) {
                boost::system::error_code ignore;
                self->idle_expired = true;
                self->socket.cancel(ignore);  // idle too long: the read ends, nothing was accepted
                return;
            }
            self->watch_idle(self->reading ? self->idle_until : now + std::chrono::seconds(self->m.cfg.idle_timeout_seconds));
        });
    }

    void send(std::string bytes) {
        output = std::move(bytes);
        asio::async_write(socket, asio::buffer(output), [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
            if (ec || self->smtp.closed()) return self->finish();
            self->read();
        });
    }

    void read() {
        const auto now = std::chrono::steady_clock::now();
        if (now > deadline) return say_goodbye("421 4.4.2 " + m.cfg.hostname + " Error: session too long");
        reading = true;
        idle_until = now + std::chrono::seconds(m.cfg.idle_timeout_seconds);
        socket.async_read_some(asio::buffer(input), [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
            self->reading = false;
            if (ec && self->idle_expired) return self->say_goodbye("421 4.4.2 " + self->m.cfg.hostname + " Error: timeout exceeded");
            if (ec) return self->finish();  // gone or stopping: nothing is lost
            self->pending += self->smtp.feed(std::string_view(self->input.data(), n));
            self->after_input();
        });
    }

    // A complete message is decided by a decider thread; its answer comes back here.
    void after_input() {
        account_memory();
        if (smtp.has_message()) {
            std::string content = smtp.take_content();
            const bool big = content.size() > (8u << 20);
            auto job = std::make_shared<message_job>(m, smtp.message(), std::move(content), peer, outbound_only,
                                                     [self = shared_from_this(), big](std::string answer) {
                                                         self->release_memory(self->charged);
                                                         if (big) ::malloc_trim(0);  // the heap back to the system
                                                         self->pending += self->smtp.complete(answer);
                                                         self->after_input();
                                                     });
            return job->start();
        }
        if (!pending.empty()) return send(std::exchange(pending, {}));
        if (smtp.closed()) return finish();
        read();
    }

    // The last reply, then the end; nothing of an unfinished transaction was accepted.
    void say_goodbye(const std::string& reply) {
        output = reply + "\r\n";
        asio::async_write(socket, asio::buffer(output),
                          [self = shared_from_this()](boost::system::error_code, std::size_t) { self->finish(); });
    }

    void finish() {
        if (finished) return;
        finished = true;
        release_memory(charged);
        boost::system::error_code ignore;
        timer.cancel();
        socket.close(ignore);
        m.session_ended(fd);
    }
};

void filter_server::impl::session_ended(int fd) {
    std::lock_guard lock(mu);
    session_fds.erase(fd);
    --sessions;
    metrics.sessions_active.fetch_sub(1, std::memory_order_relaxed);
    // Only run() waits for sessions to end, and only once stopping: no wake-up per session
    // otherwise (three threads wait on this condition).
    if (stopping) sessions_done.notify_all();
}

void filter_server::impl::accept_next(tcp::acceptor& listener, bool outbound_only) {
    // The peer's address comes with accept() itself (no getpeername() per connection).
    auto from = std::make_shared<tcp::endpoint>();
    listener.async_accept(*from, [this, &listener, outbound_only, from](boost::system::error_code ec, tcp::socket socket) {
        if (stopping) return;
        if (ec) {
            // EMFILE and the like: try again shortly.
            auto retry = std::make_shared<asio::steady_timer>(io, std::chrono::milliseconds(50));
            retry->async_wait([this, &listener, outbound_only, retry](boost::system::error_code) { accept_next(listener, outbound_only); });
            return;
        }
        accept_next(listener, outbound_only);
        std::string peer = from->address().to_string();
        bool over = false;
        {
            std::lock_guard lock(mu);
            over = sessions >= cfg.max_sessions;
            if (!over) {
                ++sessions;
                metrics.sessions.fetch_add(1, std::memory_order_relaxed);
                metrics.sessions_active.fetch_add(1, std::memory_order_relaxed);
                session_fds.insert(socket.native_handle());
            }
        }
        if (over) {
            auto refused = std::make_shared<std::pair<tcp::socket, std::string>>(
                std::move(socket), std::string("421 4.3.2 ") + cfg.hostname + " Service busy, try again later\r\n");
            asio::async_write(refused->first, asio::buffer(refused->second),
                              [refused](boost::system::error_code, std::size_t) {
                                  boost::system::error_code ignore;
                                  refused->first.close(ignore);
                              });
            write_log("ndrguard: refused a connection: max_sessions=" + std::to_string(cfg.max_sessions) + " reached");
            return;
        }
        std::make_shared<session_state>(*this, std::move(socket), std::move(peer), outbound_only)->start();
    });
}

// Deciders: threads that run handle() (blocking on PostgreSQL and the next hop). One more is
// started whenever a job finds none idle; idle ones end after a minute.
void filter_server::impl::decide(std::function<void()> job) {
    std::lock_guard lock(mu);
    decide_jobs.push_back(std::move(job));
    if (idle_deciders == 0) {
        ++deciders;
        std::thread([this] { decider(); }).detach();
    } else {
        decide_ready.notify_one();
    }
}

void filter_server::impl::decider() {
    std::unique_lock lock(mu);
    while (true) {
        ++idle_deciders;
        bool got = decide_ready.wait_for(lock, std::chrono::seconds(60), [&] { return !decide_jobs.empty() || decide_stop; });
        --idle_deciders;
        if (!got || decide_jobs.empty()) break;
        auto job = std::move(decide_jobs.front());
        decide_jobs.pop_front();
        lock.unlock();
        job();
        lock.lock();
    }
    --deciders;
    sessions_done.notify_all();
}

filter_server::filter_server(serve_config cfg, std::ostream& log) : impl_(std::make_unique<impl>(std::move(cfg), log)) {}

const filter_metrics& filter_server::metrics() const { return impl_->metrics; }
filter_server::~filter_server() = default;

namespace {

std::unique_ptr<tcp::acceptor> listen_on(asio::io_context& io, const std::string& where) {
    auto hp = split_host_port(where);
    if (!hp) throw std::runtime_error("want host:port, got " + where);
    tcp::endpoint ep(asio::ip::make_address(hp->first), hp->second);
    auto a = std::make_unique<tcp::acceptor>(io);
    a->open(ep.protocol());
    a->set_option(tcp::acceptor::reuse_address(true));
    a->bind(ep);
    a->listen();
    // Accepted sockets inherit it on Linux: SMTP is a dialogue of small writes, and waiting for
    // the peer's delayed ACK before each one cost ~25 ms a message.
    a->set_option(tcp::no_delay(true));
    return a;
}

}  // namespace

void filter_server::bind() {
    impl_->acceptor = listen_on(impl_->io, impl_->cfg.listen);
    if (!impl_->cfg.outbound_listen.empty()) impl_->outbound_acceptor = listen_on(impl_->io, impl_->cfg.outbound_listen);
}

void filter_server::stop() {
    impl& m = *impl_;
    m.stopping = true;
    asio::post(m.io, [&m] {
        boost::system::error_code ignore;
        if (m.acceptor) m.acceptor->close(ignore);
        if (m.outbound_acceptor) m.outbound_acceptor->close(ignore);
    });
    // Sessions see the end of their input: one between messages ends now; one inside a message
    // finishes deciding and answering it first (only reading is shut), and one cut off mid-DATA
    // was answered nothing, so Postfix still has that message.
    std::lock_guard lock(m.mu);
    for (int fd : m.session_fds) ::shutdown(fd, SHUT_RD);
    m.sessions_done.notify_all();  // run() waits for this
}

// Applies the retention (quarantine/retention.hpp), now and every hour, until stop().
void filter_server::impl::retention_loop() {
    while (!stopping) {
        try {
            q::database db(cfg.database);
            const auto r = q::apply_retention(db, retention_policy_of(cfg), std::chrono::system_clock::now());
            if (r.sent_log_days_dropped > 0)
                write_log("ndrguard: retention dropped_days=" + std::to_string(r.sent_log_days_dropped) +
                          " first_kept=" + q::iso_date(r.sent_log_first_kept));
            if (r.quarantine.days_dropped > 0)
                write_log("ndrguard: quarantine expiry dropped_days=" + std::to_string(r.quarantine.days_dropped) +
                          " still_held_items=" + std::to_string(r.quarantine.items_dropped) +
                          " first_kept=" + q::iso_date(r.quarantine_first_kept));
        } catch (const std::exception& e) {
            write_log("ndrguard: retention error=" + log_safe(e.what(), 300));
        }
        std::unique_lock lock(mu);
        sessions_done.wait_for(lock, std::chrono::hours(1), [&] { return stopping.load(); });
    }
}

// Writes this instance's storm counts and reads back every instance's, every storm_sync_ms,
// until run() says stop (after the last session, so that every count is written).
void filter_server::impl::storm_sync_loop() {
    std::unique_ptr<q::database> db;
    std::set<std::int64_t> open_storms;  // to log starts and ends once
    auto last_first_day = std::chrono::steady_clock::time_point{};
    bool failing = false;
    while (true) {
        const bool last_round = storm_sync_stop.load();
        std::vector<q::storm_delta> deltas;
        std::vector<std::string> watched;
        {
            std::lock_guard lock(storms_mu);
            deltas = storms.take_pending();
            watched = storms.watched_mailboxes();
        }
        try {
            if (!db) db = std::make_unique<q::database>(cfg.database);
            const auto now = std::chrono::system_clock::now();
            q::storm_sync_events events;
            auto states = q::storm_sync(*db, storms.settings(), deltas, watched, now, &events);
            metrics.storms_started.fetch_add(static_cast<std::uint64_t>(events.started), std::memory_order_relaxed);
            metrics.storms_ended.fetch_add(static_cast<std::uint64_t>(events.ended), std::memory_order_relaxed);
            {
                std::lock_guard lock(storms_mu);
                storms.apply_sync(states);
            }
            std::set<std::int64_t> open_now;
            for (const auto& st : states)
                if (st.storm_id) {
                    open_now.insert(st.storm_id);
                    if (!open_storms.count(st.storm_id))
                        write_log("ndrguard: storm started storm_id=" + std::to_string(st.storm_id) + " mailbox=<" +
                                  log_safe(st.mailbox) + "> window_count=" + std::to_string(st.window_count));
                }
            for (auto id : open_storms)
                if (!open_now.count(id)) write_log("ndrguard: storm ended storm_id=" + std::to_string(id));
            open_storms = std::move(open_now);
            if (cfg.warm_up_auto && std::chrono::steady_clock::now() - last_first_day > std::chrono::minutes(1)) {
                auto days = q::sent_log(*db).days();
                first_sent_day = days.empty() ? -2 : static_cast<long long>(days.front().time_since_epoch().count());
                last_first_day = std::chrono::steady_clock::now();
            }
            if (failing) write_log("ndrguard: storm counters written again");
            failing = false;
        } catch (const std::exception& e) {
            {
                std::lock_guard lock(storms_mu);
                storms.restore(std::move(deltas));  // written with the next sync
            }
            db.reset();
            metrics.count_database_error(3);  // storm_sync
            if (!failing) write_log("ndrguard: storm counters not written, kept for the next try: error=" + log_safe(e.what(), 300));
            failing = true;
        }
        if (last_round) break;
        std::unique_lock lock(mu);
        sessions_done.wait_for(lock, std::chrono::milliseconds(cfg.storm_sync_ms), [&] { return storm_sync_stop.load(); });
    }
}

void filter_server::run() {
    impl& m = *impl_;
    std::thread retention([&m] { m.retention_loop(); });
    std::thread storm_sync([&m] { m.storm_sync_loop(); });
    auto keep_running = asio::make_work_guard(m.io);
    m.log_timer = std::make_unique<asio::steady_timer>(m.io);
    m.flush_log_every(std::chrono::milliseconds(100));
    m.accept_next(*m.acceptor, false);
    if (m.outbound_acceptor) m.accept_next(*m.outbound_acceptor, true);
    std::thread io_thread([&m] { m.io.run(); });
    {
        std::unique_lock lock(m.mu);
        m.sessions_done.wait(lock, [&] { return m.stopping.load(); });
        // Let running sessions finish their message (bounded: Postfix retries what is cut off).
        m.sessions_done.wait_for(lock, std::chrono::seconds(30), [&] { return m.sessions == 0; });
    }
    m.storm_sync_stop = true;
    m.sessions_done.notify_all();  // wakes the retention loop and the storm sync (for a last round)
    retention.join();
    storm_sync.join();
    keep_running.reset();
    m.io.stop();
    io_thread.join();
    m.flush_log();
    std::unique_lock lock(m.mu);
    m.decide_stop = true;
    m.decide_ready.notify_all();
    m.sessions_done.wait_for(lock, std::chrono::seconds(5), [&] { return m.deciders == 0; });
}

}  // namespace ndrguard::filter
