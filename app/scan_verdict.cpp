#include "scan_verdict.hpp"

#include <algorithm>

#include "ndrguard/filter/decision.hpp"
#include "ndrguard/filter/verdict.hpp"
#include "ndrguard/quarantine/sent_log.hpp"
#include "ndrguard/quarantine/storm.hpp"
#include "ndrguard/quarantine/storms.hpp"
#include "ndrguard/smtp/message_edit.hpp"
#include "ndrguard/smtp/server.hpp"

namespace ndrguard::app {

namespace det = ndrguard::detector;
namespace q = ndrguard::quarantine;

namespace {

// The address in a header value: inside <...>, else the value trimmed; bounded.
std::string address_in(std::string value) {
    if (std::size_t lt = value.find('<'); lt != std::string::npos) {
        std::size_t gt = value.find('>', lt);
        value = value.substr(lt + 1, gt == std::string::npos ? std::string::npos : gt - lt - 1);
    }
    if (std::size_t comma = value.find(','); comma != std::string::npos) value.resize(comma);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.erase(0, 1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t' || value.back() == '\r')) value.pop_back();
    if (value.size() > 320) value.resize(320);
    return value;
}

template <class T>
std::vector<std::string> strings(const std::vector<T>& v) {
    return std::vector<std::string>(v.begin(), v.end());
}

}  // namespace

verdict_judge::verdict_judge(const filter::serve_config& cfg, verdict_envelope envelope)
    : cfg_(cfg), envelope_(std::move(envelope)), evidence_(cfg) {
    db_ = std::make_unique<q::database>(cfg.database, cfg_.database_timeout_ms > 0
                                                          ? std::chrono::milliseconds(cfg_.database_timeout_ms)
                                                          : std::chrono::milliseconds(10000));
}

verdict_judge::~verdict_judge() = default;

verdict_answer verdict_judge::judge(std::string_view message, const det::result& r) {
    verdict_answer a;
    a.recipient = envelope_.recipient;
    if (a.recipient.empty()) a.recipient = address_in(smtp::header_value(message, "Delivered-To"));
    if (a.recipient.empty()) a.recipient = address_in(smtp::header_value(message, "To"));
    const bool malformed = !smtp::well_formed_address(a.recipient);
    if (!malformed) a.mailbox = q::mailbox_key(filter::evidence_gatherer::untagged(a.recipient));
    a.bounce = r.klass != det::message_class::not_bounce;
    if (!a.bounce) {
        a.action = "deliver";
        return a;
    }
    const auto now = std::chrono::system_clock::now();
    filter::gathered_evidence g = evidence_.gather(r, {a.recipient}, now);
    a.dkim_reason = std::string(g.dkim_reason);
    a.dkim_domain = g.dkim_domain;
    a.asked = r.message_ids;
    try {
        q::sent_log log(*db_);
        if (!r.message_ids.empty())
            for (const auto& m : log.lookup(r.message_ids, now - std::chrono::days(cfg_.bounce_window_days)))
                a.found.push_back(m.message_id);
        // Warm-up as serve sees it: the sent log's first day must cover the bounce window.
        if (cfg_.warm_up_auto) {
            const auto days = log.days();
            a.warm_up = q::in_warm_up(days.empty() ? std::nullopt : std::optional(days.front()), now, cfg_.bounce_window_days);
        }
        if (!a.mailbox.empty())
            for (const auto& s : q::storms(*db_, a.mailbox, now - std::chrono::days(1)))
                a.storm = a.storm || !s.ended_at;
    } catch (const std::exception& e) {
        a.error = e.what();
        a.action = "tempfail";  // serve answers 451 then: Postfix keeps the message
        return a;
    }
    filter::origin_evidence e = g.findings;
    e.in_sent_log = !a.found.empty();
    filter::weighed_verdict w = filter::weigh(e);
    a.v = w.v;
    a.evidence = std::move(w.evidence);

    filter::bounce_facts facts;
    facts.klass = r.klass;
    facts.verdict = a.v;
    facts.mode = cfg_.mode;
    facts.null_sender = envelope_.sender.empty();
    facts.shadow = cfg_.shadow;
    facts.warm_up = a.warm_up;
    facts.weak = e.strength == evidence::detector_strength::weak;
    facts.recipients.push_back({malformed, a.storm});
    const filter::bounce_plan plan = filter::plan_bounce(cfg_.verdicts, facts);
    a.policy_act = std::string(filter::to_string(plan.recipients.front().policy_act));
    a.action = std::string(filter::to_string(plan.recipients.front().act));
    a.notes = plan.notes;
    return a;
}

void verdict_judge::add_json(const verdict_answer& a, nlohmann::json& j) {
    j["recipient"] = a.recipient;
    j["mailbox"] = a.mailbox;
    j["verification"] = a.bounce && a.error.empty() ? std::string(filter::to_string(a.v)) : std::string("none");
    j["action"] = a.action;
    j["evidence"] = strings(a.evidence);
    j["sent_log"] = {{"asked", a.asked}, {"found", a.found}};
    if (!a.dkim_domain.empty()) j["dkim"] = {{"domain", a.dkim_domain}, {"reason", a.dkim_reason}};
    j["policy"] = a.policy_act;
    j["notes"] = strings(a.notes);
    j["warm_up"] = a.warm_up;
    j["storm"] = a.storm;
    if (!a.error.empty()) j["error"] = a.error;
}

std::string verdict_judge::row(const verdict_answer& a) {
    std::string out = "  verification=";
    out += a.bounce && a.error.empty() ? std::string(filter::to_string(a.v)) : "none";
    out += " action=" + a.action;
    if (!a.error.empty()) return out + " error=" + a.error;
    if (!a.bounce) return out;
    out += " evidence=";
    for (std::size_t i = 0; i < a.evidence.size(); ++i) out += (i ? "," : "") + std::string(a.evidence[i]);
    if (a.evidence.empty()) out += "none";
    out += " found=" + std::to_string(a.found.size()) + "/" + std::to_string(a.asked.size());
    if (!a.dkim_reason.empty()) out += " dkim_fail=" + a.dkim_reason + " dkim_domain=" + a.dkim_domain;
    out += " policy=" + a.policy_act;
    for (auto n : a.notes) out += " note=" + std::string(n);
    out += " rcpt=<" + a.recipient + ">";
    return out;
}

}  // namespace ndrguard::app
