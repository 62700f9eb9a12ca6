// `ndrguard doctor`'s audit (ndrguard_doctor, pure): a Postfix configuration, as postconf
// prints it, in; findings out. Two questions are asked of it (issue 16):
//   1. can this server send backscatter itself? (mail accepted, then bounced to a sender
//      that is often forged: BACKSCATTER_README, LOCAL_RECIPIENT_README, postconf(5));
//   2. does every message pass through ndrguard the way deploy/postfix wires it, so that the
//      sent log has no gaps and no mail loops? (FILTER_README, SMTPD_PROXY_README,
//      XFORWARD_README, master(5))
// Each rule says in audit.cpp where it comes from. Nothing here reads a file or runs a
// program: app/doctor_command.cpp runs postconf (bounded) and prints the findings.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "ndrguard/doctor/postconf.hpp"

namespace ndrguard::doctor {

enum class severity { error, warning, info };
std::string_view to_string(severity s);

struct finding {
    std::string id;     // stable, e.g. "local_recipient_maps_empty" (README lists them all)
    severity level = severity::warning;
    std::string where;  // "main.cf" or "master.cf submission/inet" (what holds the setting)
    std::string why;    // what goes wrong, in one or two sentences
    std::vector<std::string> fix;  // exact commands: postconf -e / -X / -M / -P lines
    std::string source;            // the Postfix document (or deploy/ file) the rule follows
};

// How ndrguard itself is set up (ndrguard.conf: listen, next_hop, outbound_listen, mode), and
// the policy service of issue 17 as deploy/postfix will document it.
struct ndrguard_wiring {
    std::string listen = "127.0.0.1:10025";
    std::string next_hop = "127.0.0.1:10026";
    std::string outbound_listen;  // empty: off
    bool before_queue = false;    // mode = before_queue
    std::string policy_service = "inet:127.0.0.1:10040";
};

// What the audit reads. `main` holds effective values (postconf -x NAME... for
// parameters_used()); a parameter not in it takes Postfix 3.7's default (default_value()).
// forward_targets: the right-hand sides of the alias tables (virtual_alias_maps, alias_maps)
// as `postmap -s` / `postalias -s` print them, when they could be read (tables_read).
struct input {
    parameters main;
    master services;
    ndrguard_wiring ndrguard;
    std::vector<std::string> forward_targets;
    bool tables_read = false;
};

// The parameters the audit consults (the command asks postconf for exactly these).
const std::vector<std::string_view>& parameters_used();
// Postfix 3.7's default (compatibility_level 3.6, as `postconf -d` prints it; $name references
// are expanded by the audit), or "" for a parameter the audit does not know.
std::string_view default_value(std::string_view name);

// The findings, errors first, then warnings, then notes; in each, in rule order.
std::vector<finding> audit(const input& in, const limits& lim = {});

}  // namespace ndrguard::doctor
