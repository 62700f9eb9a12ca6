// What the returned original's header section says about where it came from.
//
// A bounce that returns the original's headers carries its trace: the Received lines of every
// hop, newest first, and the receiving MTA's own authentication results. Three findings, each a
// reason tag from a fixed set:
//   trace.our_relay       it left through one of our relays: a Received line whose "by" host is
//                         one of our_relays, or whose "from" host (the name the receiver
//                         looked up, or the IP; not the HELO name, which the client chooses) is
//                         (SpamAssassin VBounce's welcomelist_bounce_relays signal)
//   trace.spf_fail        the receiving MTA's SPF check of our domain failed: an
//                         Authentication-Results spf=fail with smtp.mailfrom in our domains
//                         (RFC 8601), or Received-SPF: fail with envelope-from in our domains
//                         (RFC 7208 section 9.1)
//   trace.dmarc_fail      Authentication-Results dmarc=fail with header.from in our domains
//   trace.foreign_origin  From is in our domains, no line shows our relays, and the oldest
//                         Received line is by a host none of ours from a host none of ours
// and trace.truncated when a bound below was reached (the rest was not read).
//
// Results written by ourselves (an Authentication-Results whose authserv-id, or a Received-SPF
// whose receiver=, is one of our relays or in our domains) are not the receiving MTA's and are
// skipped. None of this is proof: every line below the receiver's own can be written by whoever
// sent the message. It is evidence, to be weighed with the sent log and DKIM.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace ndrguard::evidence {

struct trace_settings {
    // Host names of our outbound relays, lower or upper case, with * and ? as in VBounce's
    // globs ("relay*.example.org"), or IP addresses (matched against the [IP] of a "from").
    std::vector<std::string> our_relays;
    // The domains we send mail for; a subdomain is ours too.
    std::vector<std::string> our_domains;
};

// Bounds on the work for one header section.
struct trace_limits {
    std::size_t max_header_bytes = 256u << 10;  // read no more of the section
    std::size_t max_fields = 2000;              // header fields looked at
    std::size_t max_field_bytes = 16u << 10;    // of one unfolded field; the rest is cut
    std::size_t max_received = 100;             // Received lines kept
};

// One Received line, as far as it could be read. Lower case.
struct received_hop {
    std::string from_helo;  // the name after "from" (what the client said, or Exim's looked-up name)
    std::string from_name;  // the looked-up name in the comment after it, when there is one
    std::string from_ip;    // the [IP] of the from clause, without brackets
    std::string by;         // the host after "by"
};

struct trace_evidence {
    std::vector<std::string_view> reasons;  // from trace_reason_tags(), in that order
    std::vector<received_hop> hops;         // newest first, as in the header
    std::string from_domain;                // of the original's From, lower case
    bool our_relay = false;
    bool spf_fail = false;
    bool dmarc_fail = false;
    bool foreign_origin = false;
    bool truncated = false;
};

const std::vector<std::string_view>& trace_reason_tags();

trace_evidence read_trace(std::string_view returned_headers, const trace_settings& settings,
                          const trace_limits& limits = {});

// One Received field's value (unfolded), read as RFC 5321 section 4.4 and the common MTAs write
// it: Postfix and Sendmail "from HELO (name [IP])", Exim "from name ([IP] helo=HELO)".
received_hop parse_received(std::string_view value);

// VBounce-style glob: * any run, ? one character, case-insensitive.
bool host_glob_match(std::string_view pattern, std::string_view host);

}  // namespace ndrguard::evidence
