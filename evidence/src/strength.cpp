#include "ndrguard/evidence/strength.hpp"

#include <algorithm>

namespace ndrguard::evidence {

namespace {

bool has(std::span<const std::string_view> reasons, std::string_view tag) {
    return std::find(reasons.begin(), reasons.end(), tag) != reasons.end();
}

}  // namespace

std::string_view to_string(detector_strength s) { return s == detector_strength::strong ? "strong" : "weak"; }

detector_strength strength_of(const strength_input& in) {
    // dsn.rfc3464 is the detector's tag for a multipart/report it parsed as delivery-status.
    if (in.klass == detector::message_class::dsn && in.original_returned && has(in.reasons, "dsn.rfc3464"))
        return detector_strength::strong;
    return detector_strength::weak;
}

bool original_returned(const detector::result& r) {
    // The tags the detector gives an id read from a returned message/rfc822 (or message/global)
    // part or a text/rfc822-headers part; an NDR's attached or inline copy is not a report's part.
    return has(r.reasons, "ref.msgid.rfc822") || has(r.reasons, "ref.msgid.rfc822_headers");
}

detector_strength strength_of(const detector::result& r) {
    return strength_of(strength_input{r.klass, r.reasons, original_returned(r)});
}

}  // namespace ndrguard::evidence
