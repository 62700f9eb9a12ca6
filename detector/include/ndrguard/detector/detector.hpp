// ndrguard detector: is this message a bounce, and which message of ours does it return?
//
// classify() takes the raw bytes of one message (and, when known, its envelope sender) and
// returns its class, the references it carries (original Message-IDs, recipients with their
// delivery status, Reporting-MTA, the returned original's From and Received hosts), stable
// reason tags that explain the decision, and flags for anything truncated or malformed.
//
// The detector is pure: no I/O, no clock, no logging, no global state. It never throws on
// input (only std::bad_alloc can escape, as from any allocation) and every bound on work is
// a named field of `limits` below. It does not use mimetic: hostile MIME is split by the
// small iterative parser in mime.cpp (see the note there for why).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ndrguard::detector {

enum class message_class : std::uint8_t {
    not_bounce,
    dsn,           // RFC 3464 multipart/report; report-type=delivery-status (or RFC 6533 global)
    ndr,           // a non-standard bounce text written by an MTA
    autoreply,     // RFC 3834 auto-reply, vacation, out-of-office
    challenge,     // challenge-response ("confirm you are human") systems
    virus_notice,  // anti-virus / content-filter notice about a message "from you"
    mdn,           // RFC 8098 message disposition notification (read receipt)
    feedback,      // RFC 5965 ARF feedback report
};

std::string_view to_string(message_class c);
std::optional<message_class> parse_message_class(std::string_view name);

// The classes that are "mail about mail we sent": everything but not_bounce and mdn.
bool is_bounce(message_class c);

enum class recipient_action : std::uint8_t { unknown, failed, delayed, delivered, relayed, expanded };
std::string_view to_string(recipient_action a);

struct recipient_report {
    std::string address;           // Final-Recipient, or the address named by an NDR text
    std::string original_address;  // Original-Recipient, when given
    recipient_action action = recipient_action::unknown;
    std::string status;            // RFC 3463 code, e.g. "5.1.1"; empty when none was given
    std::string diagnostic;        // Diagnostic-Code (unfolded), or the NDR's reason line
    std::string remote_mta;        // Remote-MTA, without the "dns;" type
};

// Everything the detector found wrong with the input. Each is also a reason to be careful:
// a flagged message was classified on what could be read.
enum flag : std::uint32_t {
    flag_truncated = 1u << 0,              // larger than max_message_bytes: only the head was read
    flag_header_too_large = 1u << 1,       // a header section over max_header_bytes
    flag_too_many_header_fields = 1u << 2, // more than max_header_fields in one section
    flag_mime_too_deep = 1u << 3,          // nesting beyond max_mime_depth: deeper parts not read
    flag_too_many_parts = 1u << 4,         // more than max_mime_parts: the rest not read
    flag_missing_boundary = 1u << 5,       // multipart/* without a boundary parameter
    flag_unterminated_multipart = 1u << 6, // no closing boundary
    flag_bad_encoding = 1u << 7,           // invalid base64 / quoted-printable data (decoded leniently)
    flag_nul_byte = 1u << 8,               // a NUL byte in the message
    flag_malformed_header = 1u << 9,       // a header line that is neither a field nor a continuation
    flag_text_truncated = 1u << 10,        // text scanned only up to max_text_bytes
    flag_too_many_references = 1u << 11,   // more ids / recipients / hosts than kept
    flag_bad_delivery_status = 1u << 12,   // a delivery-status part with no recipient block
};
std::vector<std::string_view> flag_names(std::uint32_t flags);

// Bounds on the work done for one message. Each stops a named attack; see limits.md.
struct limits {
    std::size_t max_message_bytes = 32u << 20;  // 32 MiB: more than Postfix's default 10 MB
    std::size_t max_header_bytes = 256u << 10;  // one header section (top level or a part)
    std::size_t max_header_fields = 2000;       // fields in one header section
    std::size_t max_mime_depth = 32;            // multipart / message nesting
    std::size_t max_mime_parts = 1000;          // entities walked in one message
    std::size_t max_text_bytes = 256u << 10;    // decoded text scanned for NDR phrases and quoted headers
    std::size_t max_decoded_bytes = 64u << 20;  // total base64/QP output for one message
    std::size_t max_references = 64;            // message ids, recipients, hosts kept (each)
    std::size_t max_returned_body_bytes = 1u << 20;  // the returned original's body kept in result
};

// What the SMTP layer knows. Unknown in offline scans.
struct envelope {
    std::optional<std::string> mail_from;  // "" is the null sender <>
};

struct result {
    message_class klass = message_class::not_bounce;

    // Original Message-IDs, normalised (see normalize_message_id), best first: the returned
    // original's own Message-ID, then ids quoted inline, then the bounce's In-Reply-To/References.
    std::vector<std::string> message_ids;
    std::vector<recipient_report> recipients;
    std::string reporting_mta;         // without the "dns;" type
    std::string arrival_date;
    std::string original_envelope_id;

    // About the returned original, when it is returned.
    std::string original_from;         // address only
    std::string original_return_path;  // address only
    std::string original_subject;      // RFC 2047 decoded, UTF-8
    std::vector<std::string> received_hosts;  // host names in its Received lines, lower case
    // Its header section as returned (fields in order, folds kept; line endings LF, as the
    // detector reads every message), for checks over the original such as DKIM. Bounded by
    // max_header_bytes and max_header_fields; empty when nothing was returned.
    std::string returned_headers;
    // Its body, when the whole original came back (a message/rfc822 or .eml part, not
    // text/rfc822-headers) and fits max_returned_body_bytes; then returned_body_complete.
    std::string returned_body;
    bool returned_body_complete = false;

    std::string subject;  // the bounce's own Subject, decoded, UTF-8 (for logs and digests)

    std::vector<std::string_view> reasons;  // stable tags, static storage (e.g. "dsn.rfc3464")
    std::uint32_t flags = 0;                // bitwise or of `flag`
};

result classify(std::string_view message, const envelope& env = {}, const limits& lim = {});

// "<Abc.1@Mail.Example.COM> (comment)" -> "Abc.1@mail.example.com". Empty if no id is there.
// The local part keeps its case (RFC 5322 ids are case-sensitive); the domain does not.
// An id without '@' (written by broken mailers) is kept verbatim if it is a single token of at
// least 8 characters; a bare value without brackets must also contain a digit.
std::string normalize_message_id(std::string_view raw);

}  // namespace ndrguard::detector
