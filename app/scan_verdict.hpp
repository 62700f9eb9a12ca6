// `ndrguard scan --verdict`: the verdict and action serve would give a message, with the sent
// log's answer and the evidence, against the configured database and keys; nothing is sent,
// held or counted. The same gatherer (filter/evidence_gatherer.hpp), the same weighing
// (filter/verdict.hpp) and the same decision core (filter/decision.hpp) as serve.
#pragma once

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "ndrguard/detector/detector.hpp"
#include "ndrguard/filter/config.hpp"
#include "ndrguard/filter/evidence_gatherer.hpp"
#include "ndrguard/quarantine/database.hpp"

namespace ndrguard::app {

struct verdict_envelope {
    std::string sender;      // MAIL FROM ("" = <>, the default: bounces come so)
    std::string recipient;   // RCPT TO; "" = the message's Delivered-To, else its first To
};

struct verdict_answer {
    std::string recipient;            // as judged (the envelope's, or from the headers)
    std::string mailbox;              // its mailbox key (a BATV tag taken off)
    bool bounce = false;
    filter::verification v = filter::verification::unverifiable;
    std::vector<std::string_view> evidence;
    std::vector<std::string> asked, found;  // the ids looked up, and those the sent log has
    std::string dkim_reason, dkim_domain;
    bool warm_up = false, storm = false;
    std::string policy_act, action;   // the table's cell, and what serve would do (metrics' words)
    std::vector<std::string_view> notes;
    std::string error;                // the database failed: action tempfail
};

class verdict_judge {
public:
    // Reads the key files and connects to the database; throws with a message to print.
    verdict_judge(const filter::serve_config& cfg, verdict_envelope envelope);
    ~verdict_judge();

    const verdict_envelope& envelope() const { return envelope_; }
    verdict_answer judge(std::string_view message, const detector::result& r);

    static void add_json(const verdict_answer& a, nlohmann::json& j);
    static std::string row(const verdict_answer& a);  // "  verification=... action=... evidence=..."

private:
    const filter::serve_config& cfg_;
    verdict_envelope envelope_;
    filter::evidence_gatherer evidence_;
    std::unique_ptr<quarantine::database> db_;
};

}  // namespace ndrguard::app
