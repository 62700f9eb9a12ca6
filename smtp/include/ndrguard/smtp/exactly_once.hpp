// Handing one message to the next hop exactly once (releases, digests), around a ledger that
// records the hand-over: whoever claimed the message has recorded that sending starts; this
// records, just before the final dot, that the message may now be queued, and afterwards what
// the next hop answered. A crash before the dot leaves nothing queued and the claim can run
// again after its lease; a crash after it may have left the message queued, so the caller's
// next claim refuses to send it again ("uncertain").
#pragma once

#include <string>

#include "ndrguard/smtp/client.hpp"
#include "ndrguard/smtp/handover.hpp"

namespace ndrguard::smtp {

// The record of one claimed hand-over (a release attempt, a digest). Either call may throw: a
// ledger failure, never retried here.
class handover_ledger {
public:
    virtual ~handover_ledger() = default;
    // Just before the final dot. False: the claim was taken over meanwhile (its lease passed
    // and another run claimed the message): the dot is not sent, nothing is queued.
    virtual bool sending_starts() = 0;
    // The end, with the next hop's reply (or what failed): not called after an uncertain
    // hand-over (the record stays "sending") nor when taken over (the claim is no longer ours).
    virtual void finish(bool delivered, const std::string& reply) = 0;
};

struct handover_outcome {
    enum class kind {
        delivered,       // the next hop answered 250 after the dot, and it is recorded
        refused,         // the next hop answered 4xx/5xx (before or after the dot): nothing queued
        unreachable,     // no connection or no answer before the dot: nothing queued
        uncertain,       // the dot went out, then no answer: it may be queued; not recorded as finished
        taken_over,      // sending_starts() said no: nothing queued, nothing recorded
        ledger_failure,  // sending_starts() or finish() threw (ledger_error says what)
    } what = kind::unreachable;
    smtp_reply reply;          // the next hop's (code 0: none; the text says why)
    std::string queue_id;      // the next hop's, when it answered 250
    std::string ledger_error;  // ledger_failure only
    bool accepted = false;     // the next hop answered 250 after the dot (even if not recorded)
    bool recorded = true;      // ledger_failure: false when finish() failed (the outcome is not on record)
};

handover_outcome deliver_exactly_once(const transaction& t, const handover_options& o, handover_ledger& ledger);

}  // namespace ndrguard::smtp
