#include "ndrguard/release/release.hpp"

#include "ndrguard/quarantine/release_ledger.hpp"
#include "ndrguard/smtp/client.hpp"
#include "ndrguard/smtp/exactly_once.hpp"
#include "ndrguard/smtp/message_edit.hpp"

namespace ndrguard::release {

namespace q = ndrguard::quarantine;
using smtp::transaction;
using smtp::handover_outcome;
using smtp::remove_fields;
using smtp::with_header_on_top;
using smtp::envelope_is_ascii;
using outcome = release_report::outcome;

std::string_view to_string(outcome o) {
    switch (o) {
        case outcome::released: return "released";
        case outcome::refused: return "refused";
        case outcome::unreachable: return "unreachable";
        case outcome::uncertain: return "uncertain";
        case outcome::unknown_item: return "unknown_item";
        case outcome::already_released: return "already_released";
        case outcome::deleted: return "deleted";
        case outcome::in_progress: return "in_progress";
        case outcome::database_failure: return "database_failure";
    }
    return "unknown";
}

namespace {

// The release attempt's rows (quarantine_releases): 'started' by begin_release, 'sent' just
// before the dot, then 'done' or 'failed'.
class release_ledger final : public smtp::handover_ledger {
public:
    release_ledger(q::database& db, std::int64_t attempt_id) : db_(db), attempt_id_(attempt_id) {}
    bool sending_starts() override { return q::mark_release_sent(db_, attempt_id_); }
    void finish(bool delivered, const std::string& reply) override { q::finish_release(db_, attempt_id_, delivered, reply); }

private:
    q::database& db_;
    std::int64_t attempt_id_;
};

}  // namespace

release_report release_item(q::database& db, std::int64_t item_id, const release_options& o) {
    q::release_claim claim;
    try {
        claim = q::begin_release(db, item_id, o.who, o.via, o.lease, o.force);
    } catch (const std::exception& e) {
        return {outcome::database_failure, e.what(), {}};
    }
    switch (claim.what) {
        case q::release_claim::outcome::claimed: break;
        case q::release_claim::outcome::unknown_item: return {outcome::unknown_item, "no quarantined message has this id", {}};
        case q::release_claim::outcome::already_released: return {outcome::already_released, claim.detail, {}};
        case q::release_claim::outcome::deleted: return {outcome::deleted, "it was deleted", {}};
        case q::release_claim::outcome::in_progress: return {outcome::in_progress, claim.detail, {}};
        case q::release_claim::outcome::uncertain: return {outcome::uncertain, claim.detail, {}};
    }

    transaction t;
    t.esmtp = true;
    t.mail_from = claim.sender;
    t.recipients.push_back({claim.mailbox, {}});
    if (!envelope_is_ascii(t)) t.mail_params = "SMTPUTF8";  // a UTF-8 mailbox, as it was received
    // A header of ours that came with the message is a forgery: only the real one is added.
    std::string message = claim.message;
    remove_fields(message, {o.verdict_header, "X-NDRGuard", "X-NDRGuard-Released"});
    t.message = with_header_on_top(message, "X-NDRGuard-Released",
                                   "id=" + std::to_string(item_id) + " attempt=" + std::to_string(claim.attempt_id));
    release_ledger ledger(db, claim.attempt_id);
    const handover_outcome h = smtp::deliver_exactly_once(t, {o.next_hop, o.hostname, o.timeout_seconds}, ledger);
    const std::string reply_text = h.reply.summary();
    switch (h.what) {
        case handover_outcome::kind::delivered: return {outcome::released, reply_text, h.queue_id};
        case handover_outcome::kind::uncertain:
            // The message may be in the next hop's queue: never send it again on our own.
            return {outcome::uncertain,
                    "the message was handed to " + o.next_hop + " but no answer came (" + reply_text +
                        "); it may have been queued, so it is not sent again (release --force would)",
                    {}};
        case handover_outcome::kind::ledger_failure:
            if (h.accepted && !h.recorded)
                return {outcome::uncertain, "delivered (" + reply_text + ") but not recorded: " + h.ledger_error, h.queue_id};
            return {outcome::database_failure, h.ledger_error, {}};
        case handover_outcome::kind::taken_over:  // another request superseded this attempt: nothing sent
        case handover_outcome::kind::unreachable:
            return {outcome::unreachable, "next hop " + o.next_hop + ": " + (reply_text.empty() ? "no answer" : reply_text), {}};
        case handover_outcome::kind::refused: break;
    }
    return {outcome::refused, "next hop " + o.next_hop + " answered " + reply_text, {}};
}

}  // namespace ndrguard::release
