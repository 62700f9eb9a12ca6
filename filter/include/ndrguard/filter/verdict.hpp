// The verdict of a bounce, weighed from every piece of evidence about where the message it
// returns came from (issue 15). Pure: the findings in, the verification and its evidence tags
// out. The filter (filter/src/evidence_gatherer.cpp) and `ndrguard scan --verdict` gather the
// findings; policy.hpp turns the verification into an action.
//
// The rules, in order (the first that applies decides):
//   1. verified      the sent log has an id it names, or a DKIM signature of one of our domains
//                    verifies over the returned headers, or its envelope recipient carries a
//                    valid BATV tag of our key: proof that we sent the message it answers;
//   2. forged        a BATV tag that is not ours or has expired (our relay tags every sender, so
//                    a bounce of our mail comes back to a valid tag);
//   3. unverifiable  it names no message;
//   4. forged        it names messages the sent log does not have, and the receiving MTA's own
//                    trace says the original was not ours (SPF or DMARC fail for our domain,
//                    or a trace that starts at hosts none of ours);
//   5. suspect       it names messages the sent log does not have, but shows evidence of our
//                    origin: our relay in the returned trace, or a signature of our domain that
//                    no longer verifies (relays refold headers: not proof, not forgery either).
//                    The sent log has a gap: quarantined, never rejected, and counted;
//   6. forged        it names only messages we never sent, and nothing says otherwise.
// A sent-log hit wins over a bad BATV tag (rule 1 before 2): the record of what we sent is
// ours, the tag could have been mangled by a forwarder; and a genuine bounce must get through.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "ndrguard/evidence/batv.hpp"
#include "ndrguard/evidence/strength.hpp"
#include "ndrguard/filter/policy.hpp"

namespace ndrguard::filter {

enum class dkim_finding : std::uint8_t { none, verified, failed };

struct origin_evidence {
    bool names_ids = false;    // the detector found ids of the original
    bool in_sent_log = false;  // one of them is in the sent log (within the bounce window)
    dkim_finding dkim = dkim_finding::none;  // signatures of our domains on the returned headers
    evidence::batv_status batv = evidence::batv_status::not_tagged;
    std::string_view batv_reason;  // verify_batv's tag (batv.bad_hash, ...)
    bool our_relay = false, spf_fail = false, dmarc_fail = false, foreign_origin = false;  // the returned trace
    evidence::detector_strength strength = evidence::detector_strength::strong;
};

struct weighed_verdict {
    verification v = verification::unverifiable;
    std::vector<std::string_view> evidence;  // tags of evidence_tags(), in that order
};

weighed_verdict weigh(const origin_evidence& e);

// Every evidence tag, in a fixed order (log lines, the verdict header, the quarantine, the
// metrics' `tag` label): sent_log.found, sent_log.missing, dkim.verified, dkim.fail, batv.valid,
// batv.bad_hash, batv.unknown_key, batv.expired, trace.our_relay, trace.spf_fail,
// trace.dmarc_fail, trace.foreign_origin, detector.weak.
const std::vector<std::string_view>& evidence_tags();
// Its index in evidence_tags(), or evidence_tags().size().
std::size_t evidence_tag_index(std::string_view tag);

}  // namespace ndrguard::filter
