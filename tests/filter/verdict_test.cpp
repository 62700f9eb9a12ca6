// The verdict weighed from its evidence (filter/verdict.hpp), as a table: each rule, the order
// between them, and the tags each finding leaves.
#include <doctest/doctest.h>

#include <string>

#include "ndrguard/filter/metrics.hpp"
#include "ndrguard/filter/verdict.hpp"

using namespace ndrguard::filter;
using ndrguard::evidence::batv_status;
using ndrguard::evidence::detector_strength;

namespace {

std::string tags(const weighed_verdict& w) {
    std::string out;
    for (auto t : w.evidence) out += (out.empty() ? "" : ",") + std::string(t);
    return out;
}

}  // namespace

TEST_CASE("the verdict from its evidence, rule by rule") {
    constexpr auto V = verification::verified, F = verification::forged, U = verification::unverifiable,
                   S = verification::suspect;
    constexpr auto none = dkim_finding::none, pass = dkim_finding::verified, fail = dkim_finding::failed;
    struct row {
        const char* what;
        bool names, in_log;
        dkim_finding dkim;
        batv_status batv;
        const char* batv_reason;
        bool relay, spf, dmarc, foreign, weak;
        verification v;
        const char* tags;
    };
    const auto nt = batv_status::not_tagged, bv = batv_status::valid, bi = batv_status::invalid, be = batv_status::expired;
    const row rows[] = {
        {"the sent log alone", true, true, none, nt, "", false, false, false, false, false, V, "sent_log.found"},
        {"missing, nothing else", true, false, none, nt, "", false, false, false, false, false, F, "sent_log.missing"},
        {"names nothing", false, false, none, nt, "", false, false, false, false, false, U, ""},
        {"our signature verifies, log empty", true, false, pass, nt, "", false, false, false, false, false, V,
         "sent_log.missing,dkim.verified"},
        {"our signature verifies, no id", false, false, pass, nt, "", false, false, false, false, false, V, "dkim.verified"},
        {"our signature verifies against an SPF fail", true, false, pass, nt, "", false, true, false, false, false, V,
         "sent_log.missing,dkim.verified,trace.spf_fail"},
        {"valid BATV tag, log empty", true, false, none, bv, "batv.valid", false, false, false, false, false, V,
         "sent_log.missing,batv.valid"},
        {"valid BATV tag, no id", false, false, none, bv, "batv.valid", false, false, false, false, true, V,
         "batv.valid,detector.weak"},
        {"bad BATV hash", true, false, none, bi, "batv.bad_hash", false, false, false, false, false, F,
         "sent_log.missing,batv.bad_hash"},
        {"BATV key we do not have, no id", false, false, none, bi, "batv.unknown_key", false, false, false, false, false, F,
         "batv.unknown_key"},
        {"expired BATV tag, our relay in the trace", true, false, none, be, "batv.expired", true, false, false, false, false, F,
         "sent_log.missing,batv.expired,trace.our_relay"},
        {"the sent log wins over a bad tag", true, true, none, bi, "batv.bad_hash", false, false, false, false, false, V,
         "sent_log.found,batv.bad_hash"},
        {"missing, our relay in the trace: the gap", true, false, none, nt, "", true, false, false, false, false, S,
         "sent_log.missing,trace.our_relay"},
        {"missing, our signature no longer verifies", true, false, fail, nt, "", false, false, false, false, false, S,
         "sent_log.missing,dkim.fail"},
        {"missing, our relay, but SPF failed for us", true, false, none, nt, "", true, true, false, false, false, F,
         "sent_log.missing,trace.our_relay,trace.spf_fail"},
        {"missing, broken signature, DMARC failed", true, false, fail, nt, "", false, false, true, false, false, F,
         "sent_log.missing,dkim.fail,trace.dmarc_fail"},
        {"missing, the trace starts abroad", true, false, none, nt, "", false, false, false, true, false, F,
         "sent_log.missing,trace.foreign_origin"},
        {"no id, our relay: still unverifiable", false, false, none, nt, "", true, false, false, false, false, U,
         "trace.our_relay"},
        {"no id, SPF fail: still unverifiable", false, false, none, nt, "", false, true, false, false, true, U,
         "trace.spf_fail,detector.weak"},
        {"weak and forged: the verdict stays (the policy holds it)", true, false, none, nt, "", false, false, false, false,
         true, F, "sent_log.missing,detector.weak"},
        {"an unknown BATV reason is not a tag", true, false, none, bi, "batv.whatever", false, false, false, false, false, F,
         "sent_log.missing"},
    };
    for (const auto& r : rows) {
        CAPTURE(r.what);
        origin_evidence e;
        e.names_ids = r.names;
        e.in_sent_log = r.in_log;
        e.dkim = r.dkim;
        e.batv = r.batv;
        e.batv_reason = r.batv_reason;
        e.our_relay = r.relay;
        e.spf_fail = r.spf;
        e.dmarc_fail = r.dmarc;
        e.foreign_origin = r.foreign;
        e.strength = r.weak ? detector_strength::weak : detector_strength::strong;
        const auto w = weigh(e);
        CHECK(to_string(w.v) == to_string(r.v));
        CHECK(tags(w) == r.tags);
    }
}

TEST_CASE("evidence tags: a fixed set, one metrics slot each") {
    CHECK(evidence_tags().size() == filter_metrics::evidence_tag_count);
    for (std::size_t i = 0; i < evidence_tags().size(); ++i) CHECK(evidence_tag_index(evidence_tags()[i]) == i);
    CHECK(evidence_tag_index("nope") == evidence_tags().size());
    // Every BATV reason verify_batv gives but not_tagged is a tag here.
    for (auto reason : ndrguard::evidence::batv_reason_tags())
        if (reason != "batv.not_tagged") CHECK(evidence_tag_index(reason) < evidence_tags().size());
    // The verification label's values follow the enum.
    for (auto v : all_verifications) CHECK(filter_metrics::verifications[std::size_t(v)] == to_string(v));
    CHECK(filter_metrics::verifications[filter_metrics::no_verification] == "none");
}
