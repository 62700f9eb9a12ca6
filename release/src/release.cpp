#include "ndrguard/filter/release.hpp"

#include "ndrguard/smtp/handover.hpp"
#include "ndrguard/smtp/message_edit.hpp"
#include "ndrguard/smtp/client.hpp"
#include "ndrguard/filter/config.hpp"
#include "ndrguard/quarantine/store.hpp"

namespace ndrguard::filter {

namespace q = ndrguard::quarantine;
using smtp::transaction;
using smtp::send_once;
using smtp::handover;
using smtp::remove_fields;
using smtp::with_header_on_top;
using smtp::envelope_is_ascii;
using smtp::queue_id_of;
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


release_report release_item(q::database& db, std::int64_t item_id, const release_options& o) {
    release_report report;
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
    bool db_failed = false;
    std::string db_error;
    handover h = send_once(t, {o.next_hop, o.hostname, o.timeout_seconds}, [&] {
        try {
            return q::mark_release_sent(db, claim.attempt_id);  // false: taken over meanwhile
        } catch (const std::exception& e) {
            db_failed = true;
            db_error = e.what();
            return false;
        }
    });
    const std::string reply_text = h.reply.summary();
    if (h.reached == handover::stage::after_dot && h.reply.code == 0) {
        // The message may be in the next hop's queue: never send it again on our own.
        return {outcome::uncertain,
                "the message was handed to " + o.next_hop + " but no answer came (" + reply_text +
                    "); it may have been queued, so it is not sent again (release --force would)",
                {}};
    }
    const bool delivered = h.reached == handover::stage::after_dot && h.reply.code == 250;
    try {
        q::finish_release(db, claim.attempt_id, delivered, reply_text);
    } catch (const std::exception& e) {
        if (delivered)
            return {outcome::uncertain, "delivered (" + reply_text + ") but not recorded: " + std::string(e.what()), queue_id_of(h.reply)};
        return {outcome::database_failure, e.what(), {}};
    }
    if (delivered) return {outcome::released, reply_text, queue_id_of(h.reply)};
    if (db_failed) return {outcome::database_failure, db_error, {}};
    if (h.reached == handover::stage::before_dot && h.reply.code == 0)
        return {outcome::unreachable, "next hop " + o.next_hop + ": " + (reply_text.empty() ? "no answer" : reply_text), {}};
    return {outcome::refused, "next hop " + o.next_hop + " answered " + reply_text, {}};
}

}  // namespace ndrguard::filter
