#include "ndrguard/filter/verdict.hpp"

#include <algorithm>

namespace ndrguard::filter {

const std::vector<std::string_view>& evidence_tags() {
    static const std::vector<std::string_view> tags = {
        "sent_log.found",  "sent_log.missing", "dkim.verified",    "dkim.fail",      "batv.valid",
        "batv.bad_hash",   "batv.unknown_key", "batv.expired",     "trace.our_relay", "trace.spf_fail",
        "trace.dmarc_fail", "trace.foreign_origin", "detector.weak"};
    return tags;
}

std::size_t evidence_tag_index(std::string_view tag) {
    const auto& tags = evidence_tags();
    return static_cast<std::size_t>(std::find(tags.begin(), tags.end(), tag) - tags.begin());
}

weighed_verdict weigh(const origin_evidence& e) {
    using evidence::batv_status;
    weighed_verdict w;
    // The tags first, in evidence_tags()'s order, each from the one finding it names.
    std::vector<std::string_view> found;
    if (e.names_ids) found.push_back(e.in_sent_log ? "sent_log.found" : "sent_log.missing");
    if (e.dkim == dkim_finding::verified) found.push_back("dkim.verified");
    if (e.dkim == dkim_finding::failed) found.push_back("dkim.fail");
    if (e.batv != batv_status::not_tagged && evidence_tag_index(e.batv_reason) < evidence_tags().size())
        found.push_back(e.batv_reason);
    if (e.our_relay) found.push_back("trace.our_relay");
    if (e.spf_fail) found.push_back("trace.spf_fail");
    if (e.dmarc_fail) found.push_back("trace.dmarc_fail");
    if (e.foreign_origin) found.push_back("trace.foreign_origin");
    if (e.strength == evidence::detector_strength::weak) found.push_back("detector.weak");
    for (auto tag : evidence_tags())
        if (std::find(found.begin(), found.end(), tag) != found.end()) w.evidence.push_back(tag);

    const bool bad_tag = e.batv == batv_status::invalid || e.batv == batv_status::expired;
    const bool forgery_shown = e.spf_fail || e.dmarc_fail || e.foreign_origin;
    const bool origin_shown = e.our_relay || e.dkim == dkim_finding::failed;
    if (e.in_sent_log || e.dkim == dkim_finding::verified || e.batv == batv_status::valid) w.v = verification::verified;
    else if (bad_tag) w.v = verification::forged;
    else if (!e.names_ids) w.v = verification::unverifiable;
    else if (forgery_shown) w.v = verification::forged;
    else if (origin_shown) w.v = verification::suspect;
    else w.v = verification::forged;
    return w;
}

}  // namespace ndrguard::filter
