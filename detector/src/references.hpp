// Reading what a bounce refers to: Message-IDs, addresses, Received hosts, RFC 3464 fields,
// and original headers quoted inline in the text of non-standard bounces.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "mime.hpp"
#include "ndrguard/detector/detector.hpp"

namespace ndrguard::detector::refs {

// Collects unique values up to a bound; sets flag_too_many_references past it.
class unique_list {
public:
    unique_list(std::vector<std::string>& out, std::size_t max, std::uint32_t& flags)
        : out_(out), max_(max), flags_(flags) {}
    bool add(std::string value);  // false if empty, present already or over the bound

private:
    std::vector<std::string>& out_;
    std::size_t max_;
    std::uint32_t& flags_;
};

// All ids in a References-like value ("<a@b> <c@d>"), normalised, in order.
std::vector<std::string> message_ids_in(std::string_view value);

// "from a.example by b.example (Postfix) with ESMTP id X" -> {"a.example", "b.example"}:
// the names after "from" and "by" that look like DNS names (IP literals are skipped).
std::vector<std::string> received_hosts(std::string_view received_value);

// RFC 3464 delivery-status fields, read as one stream: per-message fields set the message
// part of the result, each Final-Recipient (or Original-Recipient that starts a new block)
// opens a recipient. Blank lines between blocks are not required, as some MTAs omit them.
struct delivery_status {
    std::string reporting_mta, arrival_date, original_envelope_id, original_message_id;
    std::vector<recipient_report> recipients;
};
delivery_status parse_delivery_status(std::string_view body, const limits& lim, std::uint32_t& flags);

std::string_view strip_type_prefix(std::string_view value);  // "dns; mx.example" -> "mx.example"
std::string status_code_in(std::string_view s);              // first "d.ddd.ddd" code, if any
recipient_action parse_action(std::string_view value);

// Original headers quoted in text ("> Message-ID: <x@y>", qmail's "--- Below this line is a
// copy of the message." and the like): the header-like blocks found, in order.
struct quoted_block {
    std::vector<std::pair<std::string_view, std::string>> fields;  // name, unfolded value
    std::size_t offset = 0;  // where the block starts in the text
    std::string_view get(std::string_view name) const;
};
std::vector<quoted_block> quoted_header_blocks(std::string_view text, std::size_t max_blocks);

}  // namespace ndrguard::detector::refs
