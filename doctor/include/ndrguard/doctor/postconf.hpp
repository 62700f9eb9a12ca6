// What `postconf` prints, read back (ndrguard_doctor, pure: text in, tables out; app/ runs
// postconf). Formats, as Postfix 3.7's postconf(1) prints them:
//   postconf -n / -x NAME...  "name = value" one a line (a long value may be folded onto
//                             lines that start with white space, as in main.cf itself)
//   postconf -M               one master.cf entry a line: "service type private unpriv
//                             chroot wakeup maxproc command args..." (master(5)); with -f or in
//                             master.cf itself the arguments may continue on indented lines;
//                             "-o name=value" and "-o {name=value with spaces}" arguments
//   postconf -P               "service/type/name = value", one -o override a line
// The text is a program's output, but the configuration behind it is whatever an
// administrator (or an intruder) wrote: every size is bounded, nothing throws, odd lines are
// counted and skipped.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace ndrguard::doctor {

struct limits {
    std::size_t max_input_bytes = 4u << 20;   // each text; beyond it, the rest is not read
    std::size_t max_line_bytes = 256u << 10;  // one logical line, continuation lines included
    std::size_t max_parameters = 5000;        // main.cf parameters kept
    std::size_t max_services = 1000;          // master.cf entries kept
    std::size_t max_arguments = 1000;         // arguments of one entry
    std::size_t max_overrides = 1000;         // -o overrides of one entry
    std::size_t max_list_items = 1000;        // items of one restriction or table list
};

using table = std::map<std::string, std::string, std::less<>>;

struct parameters {
    table values;             // name -> value as printed (whitespace around it trimmed)
    std::size_t bad_lines = 0;
    bool truncated = false;   // a bound was reached: some lines were not read
};

// postconf -n, postconf -x NAME..., or main.cf itself (comments and blank lines skipped).
parameters parse_parameters(std::string_view text, const limits& lim = {});

struct service {
    std::string name, type;  // "submission", "inet"; together master.cf's key: "submission/inet"
    std::string private_, unprivileged, chroot, wakeup, maxproc;
    std::string command;     // "smtpd", "smtp", "pipe", ...
    std::vector<std::string> arguments;  // after the command, -o overrides left out
    table overrides;                     // -o name=value
    std::string key() const { return name + "/" + type; }
};

struct master {
    std::vector<service> services;
    std::size_t bad_lines = 0;
    bool truncated = false;
};

// postconf -M (or master.cf itself); then the -P text, if given, sets each override it names
// (postconf's own reading of -o, braces and all, wins over ours).
master parse_master(std::string_view m_text, std::string_view p_text = {}, const limits& lim = {});

// A Postfix list ("a, b c,d"): items split at commas and white space. A "{...}" item (a
// restriction with a space-holding argument, Postfix 3.0+) is kept whole; an item that takes
// an argument (check_policy_service inet:..., reject_rbl_client zen...) is two items, in order.
std::vector<std::string> split_list(std::string_view value, const limits& lim = {});

}  // namespace ndrguard::doctor
