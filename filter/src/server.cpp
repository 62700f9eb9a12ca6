#include "ndrguard/filter/server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>
#include <sys/time.h>

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
#include "ndrguard/filter/message_edit.hpp"
#include "ndrguard/filter/smtp_client.hpp"
#include "ndrguard/filter/smtp_server.hpp"
#include "ndrguard/quarantine/database.hpp"
#include "ndrguard/quarantine/sent_log_writer.hpp"
#include "ndrguard/quarantine/store.hpp"

namespace ndrguard::filter {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
namespace det = ndrguard::detector;
namespace q = ndrguard::quarantine;

namespace {

// Timeouts for blocking I/O, and no Nagle: SMTP is a dialogue of small writes, and waiting for
// the peer's delayed ACK before each one cost ~25 ms a message.
void set_timeouts(int fd, int seconds) {
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    timeval tv{};
    tv.tv_sec = seconds;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

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

// The connection to the next hop, reused across transactions of one session.
class reinjector {
public:
    reinjector(const serve_config& cfg) : cfg_(cfg) {}

    smtp_reply send(const transaction& t) {
        bool reused = socket_ && client_ && client_->reusable();
        smtp_reply r = attempt(t);
        // An idle connection the next hop closed meanwhile: one fresh try.
        if (reused && r.code == 0) r = attempt(t);
        if (r.code == 0) r = {451, "4.3.0 Error: cannot reach the next hop " + cfg_.next_hop};
        return r;
    }

private:
    smtp_reply attempt(const transaction& t) {
        try {
            if (!socket_ || !client_ || !client_->reusable()) connect();
            std::string out = client_->start(t);
            char buf[16384];
            while (true) {
                if (!out.empty()) asio::write(*socket_, asio::buffer(out));
                auto st = client_->state();
                if (st == smtp_client_session::status::delivered || st == smtp_client_session::status::refused)
                    return client_->outcome();
                if (st == smtp_client_session::status::broken) {
                    smtp_reply r = client_->outcome();
                    reset();
                    if (r.code >= 500) r = {451, "4.3.0 Error: next hop refused the connection: " + r.text};
                    return r;
                }
                std::size_t n = socket_->read_some(asio::buffer(buf));
                out = client_->feed(std::string_view(buf, n));
            }
        } catch (const std::exception&) {
            reset();
            return {};
        }
    }
    void connect() {
        reset();
        auto hp = split_host_port(cfg_.next_hop);
        asio::ip::tcp::resolver resolver(io_);
        auto endpoints = resolver.resolve(hp->first, std::to_string(hp->second));
        socket_ = std::make_unique<tcp::socket>(io_);
        asio::connect(*socket_, endpoints);
        set_timeouts(socket_->native_handle(), cfg_.reinject_timeout_seconds);
        client_ = std::make_unique<smtp_client_session>(cfg_.hostname);
    }
    void reset() {
        if (socket_) {
            boost::system::error_code ec;
            socket_->close(ec);
        }
        socket_.reset();
        client_.reset();
    }

    const serve_config& cfg_;
    asio::io_context io_;
    std::unique_ptr<tcp::socket> socket_;
    std::unique_ptr<smtp_client_session> client_;
};

// Idle database connections and next-hop connections, shared by all sessions: Postfix opens a
// new SMTP session for most messages, and a fresh PostgreSQL or SMTP connection per message
// cost ~20 ms here. A session takes one for a message and gives it back when done with it.
template <class T>
class idle_pool {
public:
    std::unique_ptr<T> take() {
        std::lock_guard lock(mu_);
        if (items_.empty()) return nullptr;
        auto item = std::move(items_.back());
        items_.pop_back();
        return item;
    }
    void give_back(std::unique_ptr<T> item) {
        if (!item) return;
        std::lock_guard lock(mu_);
        if (items_.size() < max_idle) items_.push_back(std::move(item));
    }
    static constexpr std::size_t max_idle = 32;

private:
    std::mutex mu_;
    std::vector<std::unique_ptr<T>> items_;
};

// Held messages of all sessions in one transaction per batch.
struct quarantine_session {
    using item = q::held_message;
    using result = q::hold_result;
    using settings = q::quarantine_caps;
    quarantine_session(q::database& d, const q::quarantine_caps& c) : db(d), caps(c) {}
    std::vector<q::hold_result> process(const std::vector<q::held_message>& batch) { return q::hold_messages(db, caps, batch); }
    q::database& db;
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

// Only bounces count towards a storm; read receipts and abuse reports are not NDRs.
bool counts_for_storms(det::message_class c) {
    return c != det::message_class::not_bounce && c != det::message_class::mdn && c != det::message_class::feedback;
}

}  // namespace

struct filter_server::impl {
    impl(serve_config c, std::ostream& l)
        : cfg(std::move(c)), log(l), writer(cfg.database), lookups(cfg.database),
          holder(cfg.database, caps_of(cfg)), storms(storm_settings_of(cfg)) {}

    serve_config cfg;
    std::ostream& log;
    q::sent_log_writer writer;
    q::sent_log_lookups lookups;  // concurrent sessions' lookups in one query
    q::group_commit<quarantine_session> holder;
    std::mutex storms_mu;
    q::storm_tracker storms;  // under storms_mu
    asio::io_context io;
    std::unique_ptr<tcp::acceptor> acceptor;
    std::unique_ptr<tcp::acceptor> outbound_acceptor;  // outbound_listen: all mail there is ours
    std::atomic<bool> stopping{false};
    std::atomic<bool> storm_sync_stop{false};
    std::mutex mu;
    std::condition_variable sessions_done;
    std::size_t sessions = 0;
    std::set<int> session_fds;  // to end idle sessions on stop()
    idle_pool<q::database> databases;
    // The sent log's first day changes once a day at most: asked again after a minute.
    std::mutex first_day_mu;
    std::optional<q::day> first_day;
    std::chrono::steady_clock::time_point first_day_checked{};
    idle_pool<reinjector> next_hops;
    std::mutex log_mu;

    void write_log(std::string line) {
        line.push_back('\n');
        std::lock_guard lock(log_mu);
        log.write(line.data(), static_cast<std::streamsize>(line.size()));  // one write(2) per line
        log.flush();
    }

    // Client I/O is event-driven (one thread running `io`: with many sessions it rarely
    // sleeps, so the SMTP dialogue costs no thread wake-ups); deciding a message blocks on the
    // database and the next hop, so that runs on a pool of deciders.
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
    std::string handle(const transaction& t, const std::string& peer, bool outbound_only);
    std::string handle_bounce(const transaction& t, const det::result& r, verification v, bool warm_up,
                              const std::string& client, std::ostringstream& line,
                              const std::function<std::string(const transaction&)>& reinject);
};

std::string filter_server::impl::handle(const transaction& t, const std::string& peer, bool outbound_only) {
    const auto t0 = std::chrono::steady_clock::now();
    std::unique_ptr<q::database> db = databases.take();
    std::unique_ptr<reinjector> rj = next_hops.take();
    if (!rj) rj = std::make_unique<reinjector>(cfg);
    const auto now = std::chrono::system_clock::now();
    std::string client = xforward_value(t, "ADDR");
    if (client.empty() || client == "[UNAVAILABLE]") client = peer;
    bool outbound = outbound_only;  // outbound_listen, or a client in our networks:
    for (const auto& n : cfg.our_networks)
        if (n.contains(client)) outbound = true;

    std::ostringstream line;
    line << "ndrguard: queue_id=" << log_safe(xforward_value(t, "IDENT")) << " client=" << log_safe(client)
         << " from=<" << log_safe(t.mail_from, 100) << "> rcpts=" << t.recipients.size()
         << " size=" << t.message.size() << " direction=" << (outbound ? "outbound" : "inbound");
    std::string answer;
    transaction out = t;

    std::function<std::string(const transaction&)> reinject = [&](const transaction& tx) {
        smtp_reply r = rj->send(tx);
        std::string first_line = r.text.substr(0, r.text.find('\n'));
        if (r.code == 250) {
            std::string qid = queue_id_of(r);
            line << " next_hop_queue_id=" << log_safe(qid);
            return "250 2.0.0 Ok: queued as " + (qid.empty() ? std::string("(unknown)") : qid);
        }
        // A refusal of the next hop is passed on as it is; anything else keeps the message.
        if (r.code >= 400 && r.code < 600) return std::to_string(r.code) + " " + first_line;
        return std::string("451 4.3.0 Error: next hop failed");
    };

    if (outbound) {
        if (!has_header(t.message, "Message-ID")) {
            static thread_local std::mt19937_64 rng(std::random_device{}());
            out.message = with_header_on_top(t.message, "Message-ID", make_message_id(now, rng(), cfg.hostname));
            line << " message_id_added=yes";
        }
        std::string id = header_value(out.message, "Message-ID");
        std::vector<std::string> rcpts;
        for (const auto& r : t.recipients) rcpts.push_back(r.address);
        std::string error;
        std::string normalized = det::normalize_message_id(id);
        line << " msgid=<" << log_safe(normalized) << ">";
        if (!normalized.empty() && !writer.record({id, t.mail_from, rcpts, now}, error)) {
            line << " action=tempfail error=" << log_safe(error, 300);
            answer = "451 4.3.0 Error: sent log unavailable, try again later";
        } else {
            line << " action=deliver";
            answer = reinject(out);
        }
    } else {
        det::envelope env;
        env.mail_from = t.mail_from;
        det::result r = det::classify(t.message, env);
        line << " class=" << det::to_string(r.klass);
        if (r.klass == det::message_class::not_bounce) {
            line << " action=deliver";
            answer = reinject(out);
        } else {
            std::vector<std::string> found;
            bool db_ok = true;
            bool warm_up = false;
            try {
                std::vector<q::sent_match> matches;
                std::string error;
                if (!r.message_ids.empty() &&
                    !lookups.lookup({r.message_ids, now - std::chrono::days(cfg.bounce_window_days)}, matches, error))
                    throw q::database_error(error);
                for (const auto& m : matches) found.push_back(m.message_id);
                if (cfg.warm_up_auto) {
                    std::optional<q::day> first;
                    {
                        std::lock_guard lock(first_day_mu);
                        if (std::chrono::steady_clock::now() - first_day_checked < std::chrono::minutes(1)) first = first_day;
                    }
                    if (!first) {
                        if (!db) db = std::make_unique<q::database>(cfg.database);
                        auto days = q::sent_log(*db).days();
                        if (!days.empty()) first = days.front();
                        std::lock_guard lock(first_day_mu);
                        first_day = first;
                        first_day_checked = std::chrono::steady_clock::now();
                    }
                    warm_up = !first || *first > q::utc_day(now) - std::chrono::days(cfg.bounce_window_days);
                }
            } catch (const std::exception& e) {
                db.reset();
                db_ok = false;
                line << " error=" << log_safe(e.what(), 300);
            }
            if (!db_ok) {
                line << " action=tempfail";
                answer = "451 4.3.0 Error: sent log unavailable, try again later";
            } else {
                answer = handle_bounce(t, r, verify(r.message_ids, found), warm_up, client, line, reinject);
            }
        }
    }
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    line << " reply=\"" << answer.substr(0, 80) << "\" ms=" << std::fixed << std::setprecision(1) << ms;
    write_log(line.str());
    databases.give_back(std::move(db));  // null after a failure: the next message reconnects
    next_hops.give_back(std::move(rj));
    return answer;
}

// An inbound bounce, its verification known: counted for storms and decided per recipient
// mailbox (a storm is one mailbox's); quarantined copies are committed before anything else,
// the recipients to deliver go to the next hop in one transaction.
std::string filter_server::impl::handle_bounce(const transaction& t, const det::result& r, verification v, bool warm_up,
                                               const std::string& client, std::ostringstream& line,
                                               const std::function<std::string(const transaction&)>& reinject) {
    const auto now = std::chrono::system_clock::now();
    const bool counted = counts_for_storms(r.klass);
    q::ndr_tally seen;
    (v == verification::verified ? seen.verified : v == verification::forged ? seen.forged : seen.unverifiable) = 1;

    struct plan {
        std::size_t rcpt = 0;
        std::string mailbox;
        bool storm = false;
        std::int64_t storm_id = 0;
        decision d;
    };
    std::vector<plan> plans;
    {
        std::lock_guard lock(storms_mu);
        for (std::size_t i = 0; i < t.recipients.size(); ++i) {
            plan p;
            p.rcpt = i;
            p.mailbox = q::mailbox_key(t.recipients[i].address);
            if (counted) p.storm = storms.observe(p.mailbox, seen, r.reporting_mta, r.original_subject, now);
            p.storm_id = storms.storm_id(p.mailbox);
            plans.push_back(std::move(p));
        }
    }
    policy_context ctx;
    ctx.mode = cfg.mode;
    ctx.null_sender = t.mail_from.empty();
    ctx.shadow = cfg.shadow;
    ctx.warm_up = warm_up;
    std::size_t rejects = 0, storms_seen = 0;
    for (auto& p : plans) {
        policy_context c = ctx;
        c.storm = p.storm;
        p.d = cfg.verdicts.decide(r.klass, v, c);
        rejects += p.d.act == action::reject;
        storms_seen += p.storm;
    }
    // One reply per transaction: a 5xx can only refuse every recipient. Where only some were to
    // be refused, they are held instead (nothing is dropped silently).
    if (rejects > 0 && rejects < plans.size())
        for (auto& p : plans)
            if (p.d.act == action::reject) {
                p.d.act = p.d.intended = action::quarantine;
                p.d.notes.push_back("mixed_recipients");
            }

    const decision& first = plans.front().d;
    line << " verification=" << to_string(v) << " policy=" << to_string(first.policy_act);
    std::set<std::string_view> notes;
    for (const auto& p : plans) notes.insert(p.d.notes.begin(), p.d.notes.end());
    for (auto n : notes) line << " note=" << n;
    if (storms_seen) line << " storm_mailboxes=" << storms_seen;
    line << " ids=" << r.message_ids.size();
    if (!r.message_ids.empty()) line << " msgid=<" << log_safe(r.message_ids.front()) << ">";
    line << " reasons=";
    for (std::size_t i = 0; i < r.reasons.size(); ++i) line << (i ? "," : "") << r.reasons[i];

    // Counts by outcome go to the storm; a 451 takes back what was counted, since Postfix will
    // offer the message again.
    auto settle = [&](bool retried_later, const std::vector<q::ndr_tally>& outcomes) {
        if (!counted) return;
        std::lock_guard lock(storms_mu);
        for (std::size_t i = 0; i < plans.size(); ++i) {
            q::ndr_tally t2 = outcomes[i];
            if (retried_later) {
                t2 = {};
                t2.verified = -seen.verified;
                t2.forged = -seen.forged;
                t2.unverifiable = -seen.unverifiable;
            }
            storms.observe(plans[i].mailbox, t2, "", "", now);
        }
    };
    std::vector<q::ndr_tally> outcomes(plans.size());

    if (rejects == plans.size()) {
        for (auto& o : outcomes) o.rejected = 1;
        settle(false, outcomes);
        line << " action=reject";
        return "550 5.7.1 Error: bounce of a message not sent from here (backscatter)";
    }

    // Held first: once the copies are committed, delivering the rest may fail and be retried
    // (Postfix's queue id makes the retry find them held already).
    std::vector<std::string> held_ids;
    std::size_t dropped = 0;
    for (std::size_t i = 0; i < plans.size(); ++i) {
        const plan& p = plans[i];
        if (p.d.act != action::quarantine) continue;
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
        h.storm_id = p.storm_id;
        h.forged = v == verification::forged;
        h.message = t.message;
        h.held_at = now;
        q::hold_result result;
        std::string error;
        if (!holder.submit(std::move(h), result, error)) {
            settle(true, outcomes);
            line << " action=tempfail error=" << log_safe(error, 300);
            return "451 4.3.0 Error: quarantine unavailable, try again later";
        }
        if (result.what == q::hold_result::outcome::dropped_over_cap) {
            ++dropped;
            outcomes[i].dropped = 1;
        } else {
            held_ids.push_back(std::to_string(result.id));
            outcomes[i].quarantined = 1;
        }
    }

    transaction deliver = t;
    deliver.recipients.clear();
    const decision* header_decision = nullptr;
    for (std::size_t i = 0; i < plans.size(); ++i)
        if (plans[i].d.act == action::deliver) {
            deliver.recipients.push_back(t.recipients[plans[i].rcpt]);
            if (!header_decision) header_decision = &plans[i].d;
            outcomes[i].delivered = 1;
        }
    const std::size_t held = held_ids.size();
    line << " action=" << (deliver.recipients.empty() ? (held ? "quarantine" : "drop")
                                                        : (held || dropped) ? "mixed" : "deliver");
    if (held) {
        line << " quarantine_ids=";
        for (std::size_t i = 0; i < held_ids.size(); ++i) line << (i ? "," : "") << held_ids[i];
    }
    if (dropped) line << " dropped_over_cap=" << dropped;
    if (deliver.recipients.empty()) {
        settle(false, outcomes);
        if (held) return "250 2.0.0 Ok: held in quarantine as " + held_ids.front();
        return "250 2.0.0 Ok: dropped (forged bounce, mailbox quarantine full)";
    }
    deliver.message = with_header_on_top(t.message, cfg.verdict_header,
                                         verdict_header_value(v, r.message_ids, r.reasons, *header_decision));
    std::string answer = reinject(deliver);
    settle(answer[0] == '4', outcomes);
    return answer;
}


// One client connection, driven by completion handlers on the io thread.
struct filter_server::impl::session_state : std::enable_shared_from_this<session_state> {
    session_state(impl& owner, tcp::socket sock, std::string client, bool outbound)
        : m(owner), socket(std::move(sock)), timer(socket.get_executor()), smtp(owner.cfg.hostname, owner.cfg.limits),
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
    std::array<char, 65536> input{};
    std::string output, pending;

    void start() {
        boost::system::error_code ignore;
        socket.set_option(tcp::no_delay(true), ignore);
        send(smtp.greeting());
    }

    void send(std::string bytes) {
        output = std::move(bytes);
        asio::async_write(socket, asio::buffer(output), [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
            if (ec || self->smtp.closed()) return self->finish();
            self->read();
        });
    }

    void read() {
        if (std::chrono::steady_clock::now() > deadline) {
            output = "421 4.4.2 " + m.cfg.hostname + " Error: session too long\r\n";
            asio::async_write(socket, asio::buffer(output),
                              [self = shared_from_this()](boost::system::error_code, std::size_t) { self->finish(); });
            return;
        }
        timer.expires_after(std::chrono::seconds(m.cfg.idle_timeout_seconds));
        timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
            if (!ec) {
                boost::system::error_code ignore;
                self->socket.cancel(ignore);  // idle too long: the read ends, nothing was accepted
            }
        });
        socket.async_read_some(asio::buffer(input), [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
            self->timer.cancel();
            if (ec) return self->finish();  // gone, idle too long, or stopping: nothing is lost
            self->pending += self->smtp.feed(std::string_view(self->input.data(), n));
            self->after_input();
        });
    }

    // A complete message is decided by a decider thread; its answer comes back here.
    void after_input() {
        if (smtp.has_message()) {
            m.decide([self = shared_from_this()] {
                std::string answer = self->m.handle(self->smtp.message(), self->peer, self->outbound_only);
                asio::post(self->socket.get_executor(), [self, answer = std::move(answer)] {
                    self->pending += self->smtp.complete(answer);
                    self->after_input();
                });
            });
            return;
        }
        if (!pending.empty()) return send(std::exchange(pending, {}));
        if (smtp.closed()) return finish();
        read();
    }

    void finish() {
        boost::system::error_code ignore;
        timer.cancel();
        socket.shutdown(tcp::socket::shutdown_both, ignore);
        socket.close(ignore);
        m.session_ended(fd);
    }
};

void filter_server::impl::session_ended(int fd) {
    {
        std::lock_guard lock(mu);
        session_fds.erase(fd);
        --sessions;
    }
    sessions_done.notify_all();
}

void filter_server::impl::accept_next(tcp::acceptor& listener, bool outbound_only) {
    listener.async_accept([this, &listener, outbound_only](boost::system::error_code ec, tcp::socket socket) {
        if (stopping) return;
        if (ec) {
            // EMFILE and the like: try again shortly.
            auto retry = std::make_shared<asio::steady_timer>(io, std::chrono::milliseconds(50));
            retry->async_wait([this, &listener, outbound_only, retry](boost::system::error_code) { accept_next(listener, outbound_only); });
            return;
        }
        accept_next(listener, outbound_only);
        boost::system::error_code peer_ec;
        auto endpoint = socket.remote_endpoint(peer_ec);
        std::string peer = peer_ec ? std::string("unknown") : endpoint.address().to_string();
        bool over = false;
        {
            std::lock_guard lock(mu);
            over = sessions >= cfg.max_sessions;
            if (!over) {
                ++sessions;
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

// Drops sent-log days older than the retention, now and every hour, until stop().
void filter_server::impl::retention_loop() {
    while (!stopping) {
        try {
            q::database db(cfg.database);
            q::sent_log sent(db);
            auto first_kept = q::utc_day(std::chrono::system_clock::now()) - std::chrono::days(cfg.sent_log_retention_days);
            std::size_t dropped = sent.drop_days_before(first_kept);
            if (dropped > 0)
                write_log("ndrguard: retention dropped_days=" + std::to_string(dropped) + " first_kept=" + q::iso_date(first_kept));
            auto first_held = q::utc_day(std::chrono::system_clock::now()) - std::chrono::days(cfg.quarantine_retention_days);
            auto expired = q::expire_quarantine(db, first_held);
            if (expired.days_dropped > 0)
                write_log("ndrguard: quarantine expiry dropped_days=" + std::to_string(expired.days_dropped) +
                          " still_held_items=" + std::to_string(expired.items_dropped) + " first_kept=" + q::iso_date(first_held));
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
    auto last_expiry = std::chrono::steady_clock::time_point{};
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
            auto states = q::storm_sync(*db, storms.settings(), deltas, watched, now);
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
            if (std::chrono::steady_clock::now() - last_expiry > std::chrono::minutes(10)) {
                q::expire_counters(*db, now - storms.settings().window - std::chrono::hours(1));
                last_expiry = std::chrono::steady_clock::now();
            }
            if (failing) write_log("ndrguard: storm counters written again");
            failing = false;
        } catch (const std::exception& e) {
            {
                std::lock_guard lock(storms_mu);
                storms.restore(std::move(deltas));  // written with the next sync
            }
            db.reset();
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
    std::unique_lock lock(m.mu);
    m.decide_stop = true;
    m.decide_ready.notify_all();
    m.sessions_done.wait_for(lock, std::chrono::seconds(5), [&] { return m.deciders == 0; });
}

}  // namespace ndrguard::filter
