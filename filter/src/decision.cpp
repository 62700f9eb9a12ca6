#include "ndrguard/filter/decision.hpp"

#include <algorithm>

#include "ndrguard/filter/config.hpp"

namespace ndrguard::filter {

namespace det = ndrguard::detector;

message_route route_of(std::string_view client, bool outbound_listener, const std::vector<network>& our_networks) {
    if (outbound_listener) return message_route::outbound;
    for (const auto& n : our_networks)
        if (n.contains(client)) return message_route::outbound;
    return message_route::inbound;
}

bool counts_for_storms(det::message_class c) {
    return c != det::message_class::not_bounce && c != det::message_class::mdn && c != det::message_class::feedback;
}

counted_action counted_for_answer(std::string_view answer, counted_action planned) {
    if (!answer.empty() && answer[0] == '4') return counted_action::tempfail;
    if (!answer.empty() && answer[0] == '5') return counted_action::reject;
    return planned;
}

bounce_plan plan_bounce(const policy& verdicts, const bounce_facts& f) {
    bounce_plan plan;
    plan.counted = counts_for_storms(f.klass);
    policy_context ctx;
    ctx.mode = f.mode;
    ctx.null_sender = f.null_sender;
    ctx.shadow = f.shadow;
    ctx.warm_up = f.warm_up;
    ctx.weak = f.weak;
    std::size_t rejects = 0;
    for (const auto& r : f.recipients) {
        policy_context c = ctx;
        c.storm = r.storm;
        decision d = verdicts.decide(f.klass, f.verdict, c);
        if (r.malformed) {  // after queue only: neither held nor counted under a mangled key
            d.act = d.intended = action::deliver;
            d.notes.push_back("malformed_recipient");
        }
        rejects += d.act == action::reject;
        plan.storm_mailboxes += r.storm;
        plan.recipients.push_back(std::move(d));
    }
    // One reply per transaction: a 5xx can only refuse every recipient. Where only some were
    // to be refused, they are held instead (nothing is dropped silently).
    if (rejects > 0 && rejects < plan.recipients.size())
        for (auto& d : plan.recipients)
            if (d.act == action::reject) {
                d.act = d.intended = action::quarantine;
                d.notes.push_back("mixed_recipients");
            }
    plan.reject_all = rejects > 0 && rejects == plan.recipients.size();
    for (const auto& d : plan.recipients) plan.notes.insert(plan.notes.end(), d.notes.begin(), d.notes.end());
    std::sort(plan.notes.begin(), plan.notes.end());
    plan.notes.erase(std::unique(plan.notes.begin(), plan.notes.end()), plan.notes.end());
    return plan;
}

std::optional<smtp::reply_id> bounce_plan::reply() const {
    if (reject_all) return smtp::reply_id::backscatter_rejected;
    return std::nullopt;
}

std::vector<std::size_t> bounce_plan::to_hold() const {
    std::vector<std::size_t> out;
    if (reject_all) return out;
    for (std::size_t i = 0; i < recipients.size(); ++i)
        if (recipients[i].act == action::quarantine) out.push_back(i);
    return out;
}

bool bounce_plan::delivers_any() const {
    return !reject_all && std::any_of(recipients.begin(), recipients.end(), [](const decision& d) { return d.act == action::deliver; });
}

delivery_plan plan_delivery(const bounce_plan& plan, std::size_t held, std::size_t dropped) {
    delivery_plan out;
    for (std::size_t i = 0; i < plan.recipients.size(); ++i)
        if (plan.recipients[i].act == action::deliver) out.to_deliver.push_back(i);
    if (!out.to_deliver.empty()) out.header_from = out.to_deliver.front();
    const bool none = out.to_deliver.empty();
    out.log_action = none ? (held ? "quarantine" : "drop") : (held || dropped) ? "mixed" : "deliver";
    out.counted = held ? counted_action::quarantine : none ? counted_action::dropped : counted_action::deliver;
    if (none) out.reply = held ? smtp::reply_id::held_in_quarantine : smtp::reply_id::dropped_quarantine_full;
    return out;
}

}  // namespace ndrguard::filter
