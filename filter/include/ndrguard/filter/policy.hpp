// The verdict policy of DESIGN.md: what to do with an inbound message, from its class, what the
// sent log says of the ids it names, and the filter's mode. Pure; every cell configurable.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ndrguard/detector/detector.hpp"

namespace ndrguard::filter {

// suspect (issue 15): it names messages the sent log does not have, but shows evidence of our
// origin (verdict.hpp): the sent log has a gap. Never rejected.
enum class verification { verified, forged, unverifiable, suspect };
inline constexpr verification all_verifications[] = {verification::verified, verification::forged, verification::unverifiable,
                                                     verification::suspect};
enum class action { deliver, reject, quarantine };

std::string_view to_string(verification v);
std::string_view to_string(action a);
std::optional<action> parse_action(std::string_view name);

// The sent log's answer alone: verified, some id it names is in the sent log; forged, it names
// ids, none of them ours; unverifiable, it names none. (serve weighs more: verdict.hpp.)
verification verify(const std::vector<std::string>& named_ids, const std::vector<std::string>& found_in_sent_log);

enum class filter_mode { after_queue, before_queue };

struct policy_context {
    filter_mode mode = filter_mode::after_queue;
    bool null_sender = false;  // MAIL FROM:<>
    bool shadow = false;       // decide and record, deliver everything
    bool warm_up = false;      // the sent log does not yet cover the bounce window
    bool storm = false;        // the recipient mailbox is in storm mode
    bool weak = false;         // the detector's result is weak (a heuristic NDR, an auto-reply:
                               // evidence/strength.hpp): never rejected, held instead
};

struct decision {
    action act = action::deliver;          // what happens
    action policy_act = action::deliver;   // what the table said, before the safety rules
    action intended = action::deliver;     // after the safety rules, before shadow mode (and
                                           // before any fallback of the caller's)
    std::vector<std::string_view> notes;   // why they differ: "storm", "weak_detection", "suspect",
                                           // "warm_up", "non_null_sender_after_queue", "shadow"
};

class policy {
public:
    policy();  // the defaults of DESIGN.md

    // Cell for a class (dsn and ndr share a row, as do autoreply, challenge and virus_notice;
    // mdn and feedback; not_bounce is always delivered).
    void set(detector::message_class c, verification v, action a);
    action cell(detector::message_class c, verification v) const;

    // "dsn.forged=reject" style settings, as in the configuration file; false if malformed, or
    // if it would reject a suspect bounce (the gap verdict is never rejected).
    bool set_from_text(std::string_view key, std::string_view value);

    decision decide(detector::message_class c, verification v, const policy_context& ctx) const;

private:
    enum row { bounce_row, reply_row, report_row, rows };
    static std::optional<row> row_of(detector::message_class c);
    std::array<std::array<action, std::size(all_verifications)>, rows> table_{};
};

// What Postfix is told when the next hop did not take a message: `code` and `summary` are the
// next hop's reply ("550 5.1.1 <b@x>: Recipient address rejected"; code 0: no answer, any
// other code but 250). ndrguard must never make backscatter: after queue a 5xx makes Postfix
// bounce the message to its sender, so there only a null sender (whose bounce Postfix drops)
// gets the 5xx; anyone else gets 451 and the message stays in Postfix's queue, as with
// soft_bounce (5.x.y becomes 4.x.y). Before queue the remote client gets the 5xx: nothing is
// bounced by us. A 4xx is passed on; no answer is 451.
std::string answer_for_next_hop_failure(int code, std::string_view summary, filter_mode mode, bool null_sender);

// The header on delivered bounces, for users' Sieve rules:
// "verified msgid=<id> evidence=sent_log.found reasons=a,b", with "would=ACTION" when the message
// is delivered although the verdict was another action.
std::string verdict_header_value(verification v, const std::vector<std::string>& ids, const std::vector<std::string_view>& evidence,
                                 const std::vector<std::string_view>& reasons, const decision& d);

}  // namespace ndrguard::filter
