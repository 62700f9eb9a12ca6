#include "ndrguard/policy/decision.hpp"

#include <algorithm>

#include "ndrguard/quarantine/storm.hpp"
#include "ndrguard/smtp/server.hpp"

namespace ndrguard::policy {

service_settings settings_of(const filter::serve_config& c) {
    service_settings s;
    s.on_storm = c.policy_defer_to_data ? storm_action::defer_to_data : storm_action::reject;
    s.null_sender_limit = c.policy_null_sender_limit;
    for (const auto& m : c.policy_exempt_mailboxes) s.exempt_mailboxes.push_back(quarantine::mailbox_key(m));
    s.exempt_networks = c.policy_exempt_networks;
    s.shadow = c.shadow;
    s.storm_text = c.policy_storm_text;
    s.rate_text = c.policy_rate_text;
    return s;
}

std::string_view to_string(result r) {
    switch (r) {
        case result::dunno: return "dunno";
        case result::reject: return "reject";
        case result::would_reject: return "would_reject";
        case result::fail_open: return "fail_open";
        case result::deferred: return "deferred";
    }
    return "dunno";
}

namespace {

// Why a request is not a candidate ("" when it is one).
std::string_view not_candidate(const policy_request& r, const service_settings& s) {
    if (r.protocol_state != "RCPT") return "not_rcpt";
    if (!r.has_sender || !r.sender.empty()) return "sender_not_null";
    if (!r.has_recipient || r.recipient.empty()) return "no_recipient";
    if (!smtp::well_formed_address(r.recipient)) return "malformed_recipient";  // never a mailbox key
    for (const auto& n : s.exempt_networks)
        if (n.contains(r.client_address)) return "exempt_network";
    const std::string key = quarantine::mailbox_key(r.recipient);
    if (std::find(s.exempt_mailboxes.begin(), s.exempt_mailboxes.end(), key) != s.exempt_mailboxes.end()) return "exempt_mailbox";
    return {};
}

answer dunno(result outcome, std::string_view reason) { return {outcome, reason, "DUNNO", false}; }

}  // namespace

std::optional<std::string> candidate_mailbox(const policy_request& r, const service_settings& s) {
    if (!not_candidate(r, s).empty()) return std::nullopt;
    return quarantine::mailbox_key(r.recipient);
}

answer decide(const policy_request& r, const mailbox_facts& f, const service_settings& s) {
    if (std::string_view why = not_candidate(r, s); !why.empty()) return dunno(result::dunno, why);
    const bool storm = f.in_storm && f.state_fresh;
    const bool over_rate = s.null_sender_limit > 0 && f.null_senders > s.null_sender_limit;
    std::string_view reason;
    const std::string* text = nullptr;
    if (storm && s.on_storm == storm_action::reject) reason = "storm", text = &s.storm_text;
    else if (over_rate) reason = "rate", text = &s.rate_text;  // in defer_to_data mode too: it bounds DATA's load
    else if (storm) return dunno(result::deferred, "defer_to_data");
    else if (f.in_storm) return dunno(result::fail_open, "state_stale");  // never refuse on what may be over
    else return dunno(result::dunno, "quiet");
    if (s.shadow) return dunno(result::would_reject, reason);
    return {result::reject, reason, "550 5.7.1 " + *text, true};
}

std::string wire_answer(const answer& a) { return "action=" + a.action + "\n\n"; }

null_sender_rate::null_sender_rate(std::chrono::seconds window, std::size_t max_mailboxes)
    : slot_ms_(std::max<std::int64_t>(1, std::chrono::duration_cast<std::chrono::milliseconds>(window).count() / slots)),
      max_(std::max<std::size_t>(1, max_mailboxes)) {}

std::int64_t null_sender_rate::slot_number(clock_time t) const {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
    return ms / slot_ms_;
}

std::int64_t null_sender_rate::hit(const std::string& mailbox, clock_time now) {
    const std::int64_t slot = slot_number(now);
    auto it = counts_.find(mailbox);
    if (it == counts_.end()) {
        if (counts_.size() >= max_) {
            if (slot < no_sweep_before_) return 1;  // full of busy mailboxes: not counted
            for (auto k = counts_.begin(); k != counts_.end();)
                k = k->second.last <= slot - slots ? counts_.erase(k) : std::next(k);
            if (counts_.size() >= max_) {
                no_sweep_before_ = slot + 1;
                return 1;
            }
        }
        it = counts_.emplace(mailbox, entry{}).first;
    }
    entry& e = it->second;
    const int cell = static_cast<int>(((slot % slots) + slots) % slots);
    if (e.slot_of[cell] != slot) {
        e.slot_of[cell] = slot;
        e.count[cell] = 0;
    }
    ++e.count[cell];
    e.last = std::max(e.last, slot);
    std::int64_t total = 0;
    for (int i = 0; i < slots; ++i)
        if (e.slot_of[i] > slot - slots && e.slot_of[i] <= slot) total += e.count[i];
    return total;
}

}  // namespace ndrguard::policy
