// How much the detector's own result can be trusted to be a bounce of a message we sent.
//
// strong: an RFC 3464 delivery status notification (report-type=delivery-status, or RFC 6533's
//         global form) that returns the original, whole (message/rfc822, message/global) or its
//         headers (text/rfc822-headers): a machine-written report about one message.
// weak:   everything else the detector calls a bounce: a non-standard NDR found by its wording,
//         a DSN that only names a Message-ID, an auto-reply, a challenge, a virus notice, a
//         feedback report. (The rule: weak and forged is quarantined, never rejected.)
// serve's policy holds weak results instead of rejecting them (filter/policy.hpp).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "ndrguard/detector/detector.hpp"

namespace ndrguard::evidence {

enum class detector_strength : std::uint8_t { weak, strong };
std::string_view to_string(detector_strength s);

struct strength_input {
    detector::message_class klass = detector::message_class::not_bounce;
    std::span<const std::string_view> reasons;  // the detector's reason tags
    bool original_returned = false;             // the original, or its header section, is attached
};

detector_strength strength_of(const strength_input& in);

// Whether the detector found the original returned as a MIME part of the report
// (its reasons ref.msgid.rfc822 or ref.msgid.rfc822_headers).
bool original_returned(const detector::result& r);

detector_strength strength_of(const detector::result& r);

}  // namespace ndrguard::evidence
