#include "ndrguard/filter/policy.hpp"

#include <algorithm>

#include "ndrguard/smtp/replies.hpp"

namespace ndrguard::filter {

namespace det = ndrguard::detector;

std::string_view to_string(verification v) {
    switch (v) {
        case verification::verified: return "verified";
        case verification::forged: return "forged";
        case verification::unverifiable: return "unverifiable";
        case verification::suspect: return "suspect";
    }
    return "unverifiable";
}

std::string_view to_string(action a) {
    switch (a) {
        case action::deliver: return "deliver";
        case action::reject: return "reject";
        case action::quarantine: return "quarantine";
    }
    return "deliver";
}

std::optional<action> parse_action(std::string_view name) {
    for (auto a : {action::deliver, action::reject, action::quarantine})
        if (to_string(a) == name) return a;
    return std::nullopt;
}

verification verify(const std::vector<std::string>& named, const std::vector<std::string>& found) {
    if (named.empty()) return verification::unverifiable;
    for (const auto& id : named)
        if (std::find(found.begin(), found.end(), id) != found.end()) return verification::verified;
    return verification::forged;
}

policy::policy() {
    // DESIGN.md, "Verdict and policy".  verified         forged              unverifiable     suspect
    table_[bounce_row] = {action::deliver, action::reject, action::deliver, action::quarantine};
    table_[reply_row] = {action::deliver, action::quarantine, action::deliver, action::quarantine};
    table_[report_row] = {action::deliver, action::deliver, action::deliver, action::deliver};
}

std::optional<policy::row> policy::row_of(det::message_class c) {
    switch (c) {
        case det::message_class::dsn:
        case det::message_class::ndr: return bounce_row;
        case det::message_class::autoreply:
        case det::message_class::challenge:
        case det::message_class::virus_notice: return reply_row;
        case det::message_class::mdn:
        case det::message_class::feedback: return report_row;
        case det::message_class::not_bounce: return std::nullopt;
    }
    return std::nullopt;
}

void policy::set(det::message_class c, verification v, action a) {
    if (auto r = row_of(c)) table_[*r][std::size_t(v)] = a;
}

action policy::cell(det::message_class c, verification v) const {
    auto r = row_of(c);
    return r ? table_[*r][std::size_t(v)] : action::deliver;
}

bool policy::set_from_text(std::string_view key, std::string_view value) {
    std::size_t dot = key.find('.');
    if (dot == std::string_view::npos) return false;
    auto c = det::parse_message_class(key.substr(0, dot));
    std::string_view v = key.substr(dot + 1);
    auto a = parse_action(value);
    if (!c || !row_of(*c) || !a) return false;
    for (auto ver : all_verifications)
        if (to_string(ver) == v) {
            if (ver == verification::suspect && *a == action::reject) return false;
            set(*c, ver, *a);
            return true;
        }
    return false;
}

decision policy::decide(det::message_class c, verification v, const policy_context& ctx) const {
    decision d;
    d.policy_act = d.act = cell(c, v);
    if (ctx.storm && (v == verification::unverifiable || v == verification::suspect) && d.act == action::deliver && row_of(c) &&
        *row_of(c) != report_row) {
        d.act = action::quarantine;  // in a storm, what cannot be verified waits in quarantine
        d.notes.push_back("storm");
    }
    if (d.act == action::reject && ctx.weak) {
        d.act = action::quarantine;  // found by its wording: it may not be a bounce of ours at all
        d.notes.push_back("weak_detection");
    }
    if (d.act == action::reject && v == verification::suspect) {
        d.act = action::quarantine;  // the gap verdict: probably genuine (policy::set allows the cell)
        d.notes.push_back("suspect");
    }
    if (d.act == action::reject && ctx.warm_up) {
        d.act = action::quarantine;  // "forged" may only mean "sent before the log began"
        d.notes.push_back("warm_up");
    }
    if (d.act == action::reject && ctx.mode == filter_mode::after_queue && !ctx.null_sender) {
        d.act = action::quarantine;  // Postfix would bounce it: that is backscatter
        d.notes.push_back("non_null_sender_after_queue");
    }
    d.intended = d.act;
    if (ctx.shadow && d.act != action::deliver) {
        d.act = action::deliver;
        d.notes.push_back("shadow");
    }
    return d;
}

std::string verdict_header_value(verification v, const std::vector<std::string>& ids, const std::vector<std::string_view>& evidence,
                                 const std::vector<std::string_view>& reasons, const decision& d) {
    std::string out(to_string(v));
    if (!ids.empty()) out += " msgid=<" + ids.front() + ">";
    if (d.intended != d.act) out += " would=" + std::string(to_string(d.intended));
    if (!evidence.empty()) {
        out += " evidence=";
        for (std::size_t i = 0; i < evidence.size(); ++i) out += (i ? "," : "") + std::string(evidence[i]);
    }
    if (!reasons.empty()) {
        out += " reasons=";
        for (std::size_t i = 0; i < reasons.size(); ++i) out += (i ? "," : "") + std::string(reasons[i]);
    }
    // Header values must stay on a sane line; ids are hostile input.
    for (char& ch : out)
        if (ch == '\r' || ch == '\n' || (static_cast<unsigned char>(ch) < 0x20 && ch != '\t')) ch = ' ';
    if (out.size() > 900) out.resize(900);
    return out;
}

std::string answer_for_next_hop_failure(int code, std::string_view summary, filter_mode mode, bool null_sender) {
    // One line, bounded: it is passed on as the SMTP reply.
    std::string line(summary.substr(0, 300));
    for (char& c : line)
        if (c == '\r' || c == '\n') c = ' ';
    if (code >= 400 && code < 500) return line;
    if (code >= 500 && code < 600) {
        if (mode == filter_mode::before_queue || null_sender) return line;
        // "550 5.1.1 text" -> "451 4.1.1 Error: next hop answered 550 5.1.1 text; ..."
        std::string status;
        const std::string_view rest = std::string_view(line).substr(std::min<std::size_t>(4, line.size()));
        if (rest.size() >= 5 && rest[0] == '5' && rest[1] == '.') {
            std::size_t end = rest.find(' ');
            std::string_view enhanced = rest.substr(0, end);
            if (enhanced.size() <= 9 && enhanced.find_first_not_of("0123456789.") == std::string_view::npos)
                status = "4" + std::string(enhanced.substr(1));
        }
        return smtp::render(smtp::reply_id::next_hop_refusal_kept, {}, line, status);
    }
    if (code == 0) return smtp::render(smtp::reply_id::next_hop_unreachable, {}, line);
    return smtp::render(smtp::reply_id::next_hop_failed, {}, line);
}

}  // namespace ndrguard::filter
