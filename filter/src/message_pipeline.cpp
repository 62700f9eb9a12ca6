#include "ndrguard/filter/pipeline.hpp"

#include <iomanip>
#include <random>
#include <set>
#include <sstream>

#include <boost/asio/post.hpp>

#include "ndrguard/filter/decision.hpp"
#include "ndrguard/smtp/message_edit.hpp"
#include "ndrguard/smtp/replies.hpp"
#include "serve_common.hpp"

namespace ndrguard::filter {

namespace {

// Deciding one message, in steps that each run on the io thread. The waits (sent log,
// quarantine, next hop) are asynchronous: the group-commit threads and the next-hop sockets
// call back, so a busy filter hands no message from thread to thread.
struct message_job : std::enable_shared_from_this<message_job> {
    using done_fn = std::function<void(std::string)>;

    message_job(pipeline_context& owner, const transaction& txn, std::string message, const std::string& client_peer, bool outbound_listener,
                done_fn finished)
        : m(owner), t(txn), content(std::move(message)), peer(client_peer), outbound_only(outbound_listener),
          done(std::move(finished)) {}

    pipeline_context& m;
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

    // Bounces: per recipient mailbox, what the storm tracker said; then the decision core's plan.
    struct mailbox_state {
        std::string mailbox;
        bool malformed = false;  // not UTF-8: never a mailbox key, delivered unfiltered
        std::int64_t storm_id = 0;
    };
    verification v = verification::unverifiable;
    gathered_evidence gathered;            // everything but the sent log's answer
    std::vector<std::string_view> evidence;  // the verdict's evidence tags
    q::ndr_tally seen;
    std::vector<mailbox_state> mailboxes;
    bounce_plan plan;
    std::vector<q::ndr_tally> outcomes;
    std::vector<std::string> held_ids;
    std::size_t dropped = 0, holds_waiting = 0;
    std::string hold_error;
    // Its labels in filter_metrics (indexes; see metrics.hpp).
    std::size_t metric_direction = 0, metric_class = 8, metric_verification = filter_metrics::no_verification, metric_action = 0;

    // Continues on the io thread (callbacks of other threads come through here).
    template <class F>
    void on_io(F&& f) {
        asio::post(m.io, std::forward<F>(f));
    }

    void start() {
        client = xforward_value(t, "ADDR");
        if (client.empty() || client == "[UNAVAILABLE]") client = peer;
        const bool outbound = route_of(client, outbound_only, m.cfg.our_networks) == message_route::outbound;
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
        m.records.record({id, t.mail_from, rcpts, now}, [self = shared_from_this(), asked = std::chrono::steady_clock::now()](
                                                                 bool ok, const std::string& error) {
            self->on_io([self, ok, error, db_ms = ms_since(asked)] {
                self->line << " db_ms=" << db_ms;
                if (ok) self->m.metrics.records.fetch_add(1, std::memory_order_relaxed);
                if (!ok) {
                    self->m.metrics.count_database_error(1);  // record
                    self->line << " action=tempfail error=" << log_safe(error, 300);
                    return self->finish(smtp::render(smtp::reply_id::sent_log_unavailable));
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
        // A key's DNS lookup waits: off the io thread then (found keys are cached).
        if (m.evidence.may_block(r))
            return m.decide([self = shared_from_this()] {
                self->gather();
                self->on_io([self] { self->look_up(); });
            });
        gather();
        look_up();
    }

    void gather() {
        std::vector<std::string> rcpts;
        for (const auto& rc : t.recipients) rcpts.push_back(rc.address);
        gathered = m.evidence.gather(r, rcpts, now);
    }

    void look_up() {
        if (r.message_ids.empty()) return looked_up({});
        m.lookups.find(r.message_ids, now - std::chrono::days(m.cfg.bounce_window_days),
                       [self = shared_from_this(), asked = std::chrono::steady_clock::now()](
                           bool ok, std::vector<std::string> found, const std::string& error) {
                           self->on_io([self, ok, found = std::move(found), error, db_ms = ms_since(asked), asked] {
                               self->line << " db_ms=" << db_ms;
                               auto& mx = self->m.metrics;
                               mx.lookup_seconds.observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - asked).count());
                               (ok ? (found.empty() ? mx.lookups_not_found : mx.lookups_found) : mx.lookups_failed)
                                   .fetch_add(1, std::memory_order_relaxed);
                               if (!ok) {
                                   mx.count_database_error(0);  // lookup
                                   self->line << " error=" << log_safe(error, 300) << " action=tempfail";
                                   return self->finish(smtp::render(smtp::reply_id::sent_log_unavailable));
                               }
                               self->looked_up(found);
                           });
                       });
    }

    // A bounce, its verification known: counted for storms and decided per recipient mailbox
    // (a storm is one mailbox's); quarantined copies are committed before anything else, the
    // recipients to deliver go to the next hop in one transaction.
    void looked_up(const std::vector<std::string>& found) {
        origin_evidence e = gathered.findings;
        e.in_sent_log = !found.empty();
        weighed_verdict w = weigh(e);
        v = w.v;
        evidence = std::move(w.evidence);
        metric_verification = static_cast<std::size_t>(v);
        for (auto tag : evidence)
            if (std::size_t i = evidence_tag_index(tag); i < m.metrics.evidence.size())
                m.metrics.evidence[i].fetch_add(1, std::memory_order_relaxed);
        const bool counted = counts_for_storms(r.klass);
        // A storm's figures have three kinds; a suspect one is neither verified nor shown forged.
        (v == verification::verified ? seen.verified : v == verification::forged ? seen.forged : seen.unverifiable) = 1;
        bounce_facts facts;
        facts.klass = r.klass;
        facts.verdict = v;
        facts.mode = m.cfg.mode;
        facts.null_sender = t.mail_from.empty();
        facts.shadow = m.cfg.shadow;
        facts.warm_up = m.in_warm_up(now);
        facts.weak = e.strength == ndrguard::evidence::detector_strength::weak;
        {
            std::lock_guard lock(m.storms_mu);
            for (const auto& rc : t.recipients) {
                mailbox_state mb;
                bounce_facts::recipient fr;
                mb.malformed = fr.malformed = !well_formed_address(rc.address);
                if (!mb.malformed) {
                    // A BATV-tagged address is its user's mailbox (the tag changes every day).
                    mb.mailbox = q::mailbox_key(evidence_gatherer::untagged(rc.address));
                    if (counted) fr.storm = m.storms.observe(mb.mailbox, seen, r.reporting_mta, r.original_subject, now);
                    mb.storm_id = m.storms.storm_id(mb.mailbox);
                }
                mailboxes.push_back(std::move(mb));
                facts.recipients.push_back(fr);
            }
        }
        plan = plan_bounce(m.cfg.verdicts, facts);

        line << " verification=" << to_string(v) << " evidence=";
        for (std::size_t i = 0; i < evidence.size(); ++i) line << (i ? "," : "") << evidence[i];
        if (evidence.empty()) line << "none";
        if (!gathered.dkim_reason.empty())
            line << " dkim_fail=" << gathered.dkim_reason << " dkim_domain=" << log_safe(gathered.dkim_domain, 100);
        line << " policy=" << to_string(plan.recipients.front().policy_act);
        for (auto n : plan.notes) line << " note=" << n;
        if (facts.warm_up && std::find(plan.notes.begin(), plan.notes.end(), "warm_up") == plan.notes.end()) line << " warm_up=yes";
        if (plan.storm_mailboxes) line << " storm_mailboxes=" << plan.storm_mailboxes;
        line << " ids=" << r.message_ids.size();
        if (!r.message_ids.empty()) line << " msgid=<" << log_safe(r.message_ids.front()) << ">";
        line << " reasons=";
        for (std::size_t i = 0; i < r.reasons.size(); ++i) line << (i ? "," : "") << r.reasons[i];

        outcomes.assign(plan.recipients.size(), {});
        if (auto reply = plan.reply()) {  // every recipient rejects
            for (auto& o : outcomes) o.rejected = 1;
            settle(false);
            line << " action=reject";
            metric_action = static_cast<std::size_t>(counted_action::reject);
            return finish(smtp::render(*reply));
        }
        hold();
    }

    // Held first: once the copies are committed, delivering the rest may fail and be retried
    // (Postfix's queue id makes the retry find them held already).
    void hold() {
        const std::vector<std::size_t> to_hold = plan.to_hold();
        if (to_hold.empty()) return deliver();
        holds_waiting = to_hold.size();
        held_ids.assign(plan.recipients.size(), "");
        const bool delivers = plan.delivers_any();
        for (std::size_t i : to_hold) {
            const decision& d = plan.recipients[i];
            q::held_message h;
            h.mailbox = mailboxes[i].mailbox;
            h.sender = t.mail_from;
            h.client = client;
            h.queue_id = xforward_value(t, "IDENT");
            if (h.queue_id == "[UNAVAILABLE]" || h.queue_id == "NOQUEUE") h.queue_id.clear();
            h.klass = std::string(det::to_string(r.klass));
            h.verification = std::string(to_string(v));
            for (auto reason : r.reasons) h.reasons.emplace_back(reason);
            for (auto n : d.notes) h.notes.emplace_back(n);
            for (auto tag : evidence) h.evidence.emplace_back(tag);
            h.message_ids = r.message_ids;
            h.reporting_mta = r.reporting_mta;
            h.subject = r.subject;
            h.original_subject = r.original_subject;
            if (!r.recipients.empty()) h.original_recipient = r.recipients.front().address;
            h.storm_id = mailboxes[i].storm_id;
            h.forged = v == verification::forged;
            // A copy per mailbox but the last, which takes the content when nothing is delivered.
            h.message = (!delivers && i == to_hold.back()) ? std::move(content) : content;
            h.held_at = now;
            m.holds.hold(std::move(h), [self = shared_from_this(), i](bool ok, q::hold_result res, const std::string& error) {
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
            return finish(smtp::render(smtp::reply_id::quarantine_unavailable));
        }
        held_ids.erase(std::remove(held_ids.begin(), held_ids.end(), std::string()), held_ids.end());
        deliver();
    }

    void deliver() {
        const delivery_plan dp = plan_delivery(plan, held_ids.size(), dropped);
        transaction to_deliver = std::move(out);  // t with the forged headers removed
        to_deliver.recipients.clear();
        for (std::size_t i : dp.to_deliver) {
            to_deliver.recipients.push_back(t.recipients[i]);
            outcomes[i].delivered = 1;
        }
        line << " action=" << dp.log_action;
        metric_action = static_cast<std::size_t>(dp.counted);
        if (!held_ids.empty()) {
            line << " quarantine_ids=";
            for (std::size_t i = 0; i < held_ids.size(); ++i) line << (i ? "," : "") << held_ids[i];
        }
        if (dropped) line << " dropped_over_cap=" << dropped;
        if (dp.reply) {  // nothing to deliver
            settle(false);
            return finish(smtp::render(*dp.reply, {}, held_ids.empty() ? std::string() : held_ids.front()));
        }
        to_deliver.message = with_header_on_top(content, m.cfg.verdict_header,
                                                verdict_header_value(v, r.message_ids, evidence, r.reasons, plan.recipients[dp.header_from]));
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
        if (!plan.counted) return;
        std::lock_guard lock(m.storms_mu);
        for (std::size_t i = 0; i < mailboxes.size(); ++i) {
            if (mailboxes[i].malformed) continue;  // never counted
            q::ndr_tally t2 = outcomes[i];
            if (retried_later) {
                t2 = {};
                t2.verified = -seen.verified;
                t2.forged = -seen.forged;
                t2.unverifiable = -seen.unverifiable;
            }
            m.storms.observe(mailboxes[i].mailbox, t2, "", "", now);
        }
    }

    // Milliseconds since `from`, for the log: where a message's time went.
    static std::string ms_since(std::chrono::steady_clock::time_point from) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.1f", std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - from).count());
        return buf;
    }

    void reinject(const transaction& tx, std::function<void(std::string)> then) {
        m.next_hop.send(tx, [self = shared_from_this(), &tx, then = std::move(then), sent = std::chrono::steady_clock::now()](smtp_reply reply) {
            self->line << " next_hop_ms=" << ms_since(sent);
            if (reply.code == 250) {
                std::string qid = queue_id_of(reply);
                self->line << " next_hop_queue_id=" << log_safe(qid);
                return then(smtp::render(smtp::reply_id::queued, {}, qid.empty() ? std::string("(unknown)") : qid));
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
        metric_action = static_cast<std::size_t>(counted_for_answer(answer, counted_action(metric_action)));
        m.metrics.count_message(metric_direction, metric_class, metric_verification, metric_action);
        m.metrics.message_seconds.observe(ms / 1000.0);
        line << " reply=\"" << answer.substr(0, 80) << "\" ms=" << std::fixed << std::setprecision(1) << ms;
        m.write_log(line.str());
        done(std::move(answer));
    }
};

}  // namespace

void run_message(pipeline_context& ctx, const transaction& txn, std::string content, const std::string& peer, bool outbound_listener,
                 std::function<void(std::string)> done) {
    std::make_shared<message_job>(ctx, txn, std::move(content), peer, outbound_listener, std::move(done))->start();
}

}  // namespace ndrguard::filter
