// The verdict policy: DESIGN.md's table as defaults, and the safety rules on top of it.
#include <doctest/doctest.h>

#include "ndrguard/filter/policy.hpp"

using namespace ndrguard::filter;
using mc = ndrguard::detector::message_class;

TEST_CASE("verification from the ids named and the ids found") {
    CHECK(verify({}, {}) == verification::unverifiable);
    CHECK(verify({"a@x", "b@x"}, {"b@x"}) == verification::verified);
    CHECK(verify({"a@x"}, {}) == verification::forged);
}

TEST_CASE("the defaults are DESIGN.md's table") {
    policy p;
    CHECK(p.cell(mc::dsn, verification::verified) == action::deliver);
    CHECK(p.cell(mc::ndr, verification::forged) == action::reject);
    CHECK(p.cell(mc::dsn, verification::unverifiable) == action::deliver);
    CHECK(p.cell(mc::autoreply, verification::forged) == action::quarantine);
    CHECK(p.cell(mc::virus_notice, verification::forged) == action::quarantine);
    CHECK(p.cell(mc::feedback, verification::forged) == action::deliver);
    CHECK(p.cell(mc::not_bounce, verification::forged) == action::deliver);
}

TEST_CASE("reject only null senders after queue; warm-up, storm and shadow") {
    policy p;
    policy_context aq;
    aq.null_sender = true;
    CHECK(p.decide(mc::dsn, verification::forged, aq).act == action::reject);

    policy_context non_null;  // after queue, MAIL FROM not <>
    auto d = p.decide(mc::ndr, verification::forged, non_null);
    CHECK(d.act == action::quarantine);
    CHECK(d.policy_act == action::reject);
    REQUIRE(d.notes.size() == 1);
    CHECK(d.notes[0] == "non_null_sender_after_queue");

    policy_context bq;
    bq.mode = filter_mode::before_queue;  // the 5xx reaches the client: no bounce is made
    CHECK(p.decide(mc::ndr, verification::forged, bq).act == action::reject);

    policy_context warm = aq;
    warm.warm_up = true;
    CHECK(p.decide(mc::dsn, verification::forged, warm).act == action::quarantine);

    policy_context storm;
    storm.storm = true;
    CHECK(p.decide(mc::dsn, verification::unverifiable, storm).act == action::quarantine);
    CHECK(p.decide(mc::autoreply, verification::unverifiable, storm).act == action::quarantine);
    CHECK(p.decide(mc::feedback, verification::unverifiable, storm).act == action::deliver);
    CHECK(p.decide(mc::dsn, verification::verified, storm).act == action::deliver);

    policy_context shadow = aq;
    shadow.shadow = true;
    auto s = p.decide(mc::dsn, verification::forged, shadow);
    CHECK(s.act == action::deliver);
    CHECK(s.policy_act == action::reject);
    CHECK(s.intended == action::reject);

    policy_context shadow_non_null;  // after queue, not <>: the safety rule first, then shadow
    shadow_non_null.shadow = true;
    auto sn = p.decide(mc::ndr, verification::forged, shadow_non_null);
    CHECK(sn.intended == action::quarantine);
    CHECK(sn.act == action::deliver);
}

TEST_CASE("cells are configurable from text") {
    policy p;
    CHECK(p.set_from_text("dsn.forged", "quarantine"));
    CHECK(p.cell(mc::ndr, verification::forged) == action::quarantine);  // dsn and ndr share a row
    CHECK(p.set_from_text("autoreply.unverifiable", "quarantine"));
    CHECK(p.cell(mc::challenge, verification::unverifiable) == action::quarantine);
    CHECK_FALSE(p.set_from_text("dsn.forged", "explode"));
    CHECK_FALSE(p.set_from_text("not_bounce.forged", "reject"));
    CHECK_FALSE(p.set_from_text("dsn", "reject"));
    CHECK_FALSE(p.set_from_text("bounce.forged", "reject"));
}

TEST_CASE("the verdict header is one clean line") {
    policy p;
    policy_context shadow;
    shadow.shadow = true;
    shadow.null_sender = true;
    auto d = p.decide(mc::dsn, verification::forged, shadow);
    std::string h = verdict_header_value(verification::forged, {"a\r\nBcc: x@y"}, {"sent_log.missing"},
                                         {"dsn.rfc3464", "ref.msgid.rfc822"}, d);
    CHECK(h == "forged msgid=<a  Bcc: x@y> would=reject evidence=sent_log.missing reasons=dsn.rfc3464,ref.msgid.rfc822");
    CHECK(h.find('\n') == std::string::npos);
}

TEST_CASE("the next hop's refusal: after queue only a null sender gets a 5xx (no backscatter)") {
    const auto aq = filter_mode::after_queue, bq = filter_mode::before_queue;
    const std::string rcpt_550 = "550 5.1.1 <b@x.example>: Recipient address rejected";
    struct {
        int code;
        std::string summary;
        filter_mode mode;
        bool null_sender;
        std::string want;
    } cases[] = {
        {550, rcpt_550, aq, false,
         "451 4.1.1 Error: next hop answered " + rcpt_550 + " (not bounced after queue: the message stays queued)"},
        {550, rcpt_550, aq, true, rcpt_550},
        {550, rcpt_550, bq, false, rcpt_550},
        {550, rcpt_550, bq, true, rcpt_550},
        {554, "554 Transaction failed", aq, false,
         "451 4.3.0 Error: next hop answered 554 Transaction failed (not bounced after queue: the message stays queued)"},
        {552, "552 5.3.4 Message size exceeds fixed limit", aq, false,
         "451 4.3.4 Error: next hop answered 552 5.3.4 Message size exceeds fixed limit (not bounced after queue: the message stays queued)"},
        {554, "554 5.7.1", aq, false,
         "451 4.7.1 Error: next hop answered 554 5.7.1 (not bounced after queue: the message stays queued)"},
        {450, "450 4.2.0 try later", aq, false, "450 4.2.0 try later"},
        {421, "421 4.3.2 shutting down", bq, true, "421 4.3.2 shutting down"},
        {0, "connection refused", aq, false, "451 4.3.0 Error: cannot reach the next hop: connection refused"},
        {0, "no reply", bq, true, "451 4.3.0 Error: cannot reach the next hop: no reply"},
        {354, "354 go ahead", aq, false, "451 4.3.0 Error: next hop failed: 354 go ahead"},
        {550, "550 line\r\nbreak", bq, false, "550 line  break"},  // one line, whatever came
    };
    for (const auto& c : cases) {
        CAPTURE(c.summary);
        CAPTURE(c.null_sender);
        CHECK(answer_for_next_hop_failure(c.code, c.summary, c.mode, c.null_sender) == c.want);
    }
    // Never a 5xx for a non-null sender after queue, whatever the next hop said.
    for (int code = 0; code < 700; ++code)
        CHECK(answer_for_next_hop_failure(code, std::to_string(code) + " 5.0.0 x", aq, false)[0] != '5');
}
