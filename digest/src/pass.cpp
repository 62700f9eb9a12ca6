#include "ndrguard/digest/pass.hpp"

#include <openssl/rand.h>

#include "ndrguard/digest/compose.hpp"
#include "ndrguard/quarantine/digest_ledger.hpp"
#include "ndrguard/smtp/exactly_once.hpp"
#include "ndrguard/web/release_token.hpp"

namespace ndrguard::digest {

namespace q = ndrguard::quarantine;
using outcome = mailbox_report::outcome;

std::string_view to_string(outcome o) {
    switch (o) {
        case outcome::sent: return "sent";
        case outcome::dry_run: return "dry_run";
        case outcome::nothing: return "nothing";
        case outcome::refused: return "refused";
        case outcome::taken_over: return "taken_over";
        case outcome::uncertain: return "uncertain";
        case outcome::failed: return "failed";
    }
    return "unknown";
}

namespace {

std::string random_hex(std::size_t bytes) {
    unsigned char buf[16] = {};
    if (bytes > sizeof buf) bytes = sizeof buf;
    if (RAND_bytes(buf, static_cast<int>(bytes)) != 1)
        for (std::size_t i = 0; i < bytes; ++i) buf[i] = static_cast<unsigned char>(std::rand());
    static const char hex[] = "0123456789abcdef";
    std::string out;
    for (std::size_t i = 0; i < bytes; ++i) {
        out += hex[buf[i] >> 4];
        out += hex[buf[i] & 15];
    }
    return out;
}

digest_input input_of(const q::digest_claim& claim, const std::string& mailbox, const pass_options& o,
                      const std::string& from, clock_time now) {
    digest_input in;
    in.mailbox = mailbox;
    in.from = from;
    in.now = now;
    in.digest_id = claim.digest_id;
    in.message_id = "digest." + std::to_string(claim.digest_id) + "." + random_hex(8) + "@" + o.hop.hostname;
    in.max_listed = o.max_listed;
    for (const auto& s : claim.items)
        in.items.push_back({s.id, s.held_at, s.klass, s.verification, s.sender, s.reporting_mta, s.subject, s.original_subject,
                            s.original_recipient, s.notes, s.storm_id, s.evidence});
    for (const auto& s : claim.storms)
        in.storms.push_back({s.id, s.started_at, s.ended_at, s.tally.bounces(),
                             s.tally.rejected, s.top_reporters, s.sample_subjects});
    const auto links = web::mailbox_links::valid_for_days(
        o.web_base_url, mailbox, o.secret, o.link_ttl_days,
        std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count());
    in.links.release = [links](std::int64_t id) { return links.release(id); };
    in.links.release_storm = [links](std::int64_t id) { return links.release_storm(id); };
    in.links.full_list = links.list();
    in.links.valid_until = clock_time(std::chrono::seconds(links.expires_at()));
    return in;
}

// The digest's row (digests): 'building' from the claim, 'sending' just before the dot, then
// 'sent' or 'failed' (which gives its items back to the next pass).
class digest_ledger final : public smtp::handover_ledger {
public:
    digest_ledger(q::database& db, std::int64_t digest_id) : db_(db), digest_id_(digest_id) {}
    bool sending_starts() override { return q::mark_digest_sending(db_, digest_id_); }
    void finish(bool sent, const std::string& reply) override { q::finish_digest(db_, digest_id_, sent, reply); }

private:
    q::database& db_;
    std::int64_t digest_id_;
};

mailbox_report one_mailbox(q::database& db, const std::string& mailbox, const pass_options& o, const std::string& sender,
                           const std::string& from) {
    mailbox_report r;
    r.mailbox = mailbox;
    q::digest_claim claim;
    try {
        claim = q::claim_digest(db, mailbox, o.lease, o.dry_run);
    } catch (const std::exception& e) {
        r.what = outcome::failed;
        r.detail = e.what();
        return r;
    }
    r.digest_id = claim.digest_id;
    r.items = static_cast<std::int64_t>(claim.items.size());
    if (claim.items.empty()) return r;  // nothing (a dry run claims nothing either)
    const digest_mail mail = compose_digest(input_of(claim, q::mailbox_key(mailbox), o, from, std::chrono::system_clock::now()));
    if (o.dry_run) {
        r.what = outcome::dry_run;
        r.message = mail.message;
        return r;
    }
    if (claim.taken_over) r.detail = std::to_string(claim.taken_over) + " taken over from a pass that stopped; ";

    smtp::transaction t;
    t.esmtp = true;
    t.mail_from = sender;
    t.recipients.push_back({q::mailbox_key(mailbox), {}});
    if (!smtp::envelope_is_ascii(t)) t.mail_params = "SMTPUTF8";  // a UTF-8 mailbox (RFC 6531)
    t.message = mail.message;
    digest_ledger ledger(db, claim.digest_id);
    const smtp::handover_outcome h = smtp::deliver_exactly_once(t, o.hop, ledger);
    const std::string reply = h.reply.summary();
    using kind = smtp::handover_outcome::kind;
    switch (h.what) {
        case kind::taken_over:
            r.what = outcome::taken_over;
            r.detail += "the claim passed digest_lease_seconds and another pass took the items; nothing sent";
            break;
        case kind::uncertain:
            r.what = outcome::uncertain;
            r.detail += "handed to " + o.hop.next_hop + " but no answer came (" + reply +
                        "); it may have been delivered, so these items are not reported again";
            break;
        case kind::ledger_failure:
            if (!h.recorded) {
                r.what = h.accepted ? outcome::sent : outcome::failed;
                r.detail += reply + "; not recorded: " + h.ledger_error;
            } else {
                r.what = outcome::failed;
                r.detail += h.ledger_error;
            }
            break;
        case kind::delivered:
        case kind::refused:
        case kind::unreachable:
            r.what = h.what == kind::delivered ? outcome::sent : outcome::refused;
            r.detail += reply.empty() ? "no answer from " + o.hop.next_hop : reply;
            break;
    }
    return r;
}

}  // namespace

std::vector<mailbox_report> run_pass(q::database& db, const pass_options& o, const std::function<void(const mailbox_report&)>& report) {
    const std::string sender = o.envelope_sender.empty() ? "postmaster@" + o.hop.hostname : o.envelope_sender;
    const std::string from = o.from.empty() ? "Mail quarantine <" + sender + ">" : o.from;
    std::vector<std::string> mailboxes;
    if (!o.only_mailbox.empty()) {
        mailboxes.push_back(q::mailbox_key(o.only_mailbox));
    } else {
        try {
            mailboxes = q::mailboxes_to_report(db, o.lease);
        } catch (const std::exception& e) {
            mailbox_report r;
            r.what = outcome::failed;
            r.detail = e.what();
            if (report) report(r);
            return {r};
        }
    }
    std::vector<mailbox_report> out;
    for (const std::string& m : mailboxes) {
        out.push_back(one_mailbox(db, m, o, sender, from));
        if (report) report(out.back());
    }
    return out;
}

}  // namespace ndrguard::digest
