// ndrguard evidence: DKIM signatures of our own domains on a bounce's returned original.
//
// A valid signature by one of our domains over the returned headers proves we sent that
// message, with no sent log at all. Most bounces return only the headers (text/rfc822-headers),
// so the header hash is what is checked; the body hash only when the whole original came back.
//
// Implementation: Debian's libopendkim (2.11), not our own canonicalisation. It verifies
// header-only input: fed the header fields and no body, dkim_eom() leaves a signature whose
// RSA check over the headers passed flagged DKIM_SIGFLAG_PASSED, with the body hash reported
// apart (dkim_sig_getbh() == DKIM_SIGBH_MISMATCH, since the empty body does not hash to bh=).
// bh= is itself inside the signed header, so a header that verifies vouches for the body hash
// it claims. libopendkim does RFC 6376's simple and relaxed canonicalisation, the removal of
// b=, h= with repeated and missing fields, l=, and x= expiry; keys come through our own lookup
// callback (files from dkim_keys, or a DNS TXT function with a bounded time), never through
// libopendkim's resolver. Signatures of other domains are skipped before any key is looked up.
//
// A signature of ours that does not verify is not proof of forgery (relays refold headers and
// rewrite bodies): it is reported as failed, with its own reason.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ndrguard::evidence::dkim {

struct limits {
    std::size_t max_signatures = 8;             // signatures of ours checked (the rest: skipped)
    std::size_t max_header_bytes = 256u << 10;  // header section handed over (the rest: ignored)
    std::size_t max_header_fields = 2000;
    std::size_t max_body_bytes = 1u << 20;      // a longer body is not checked (header hash only)
    std::size_t max_key_record_bytes = 1024;    // a key record: libopendkim's buffer (4096-bit RSA fits)
};

// A public key as a DKIM key record's text: "v=DKIM1; k=rsa; p=MIIB...".
struct key_entry {
    std::string domain;    // lower case
    std::string selector;  // lower case
    std::string record;
};

// Where keys come from: dkim_keys entries first, then DNS when dns_txt is set.
struct key_source {
    std::vector<key_entry> keys;
    // The TXT record at a name (strings joined), nullopt when there is none or it took too long.
    std::function<std::optional<std::string>(const std::string& name)> dns_txt;
};

enum class outcome { verified, failed };
std::string_view to_string(outcome o);

struct signature_check {
    std::string domain;    // d=, lower case
    std::string selector;  // s=
    outcome result = outcome::failed;
    bool body_checked = false;  // the whole body was returned and its hash was compared
    // For failed: one of "header_hash", "body_hash", "no_key", "bad_key", "expired",
    // "bad_signature" (unreadable tags or an unsupported algorithm). "" when verified.
    std::string_view reason;
};

struct report {
    std::vector<signature_check> ours;  // signatures of our domains, in header order
    std::size_t other_signatures = 0;   // DKIM-Signature fields of other domains (ignored)
    bool limit_hit = false;             // more signatures of ours, or header/body cut
    bool verified() const;              // any signature of ours verified
};

// Checks the DKIM-Signature fields of our domains (d= equal to one of them, or a subdomain)
// over the returned header section (LF or CRLF line endings) and, when given, the whole body.
report check(std::string_view headers, std::optional<std::string_view> body, const std::vector<std::string>& our_domains,
             const key_source& keys, const limits& lim = {});

// ---- keys

// A key file's text (a PEM "PUBLIC KEY" block, or a DKIM TXT record's text) as a key record.
// nullopt and `error` set when it is neither, or longer than the limit.
std::optional<std::string> key_record_from_text(std::string_view text, std::string& error,
                                                std::size_t max_bytes = limits{}.max_key_record_bytes);

// "DOMAIN:SELECTOR:FILE, DOMAIN:SELECTOR:FILE" (the dkim_keys setting) with each FILE read.
// Throws std::runtime_error naming the entry that is malformed or whose file cannot be read.
std::vector<key_entry> load_key_entries(std::string_view setting);

struct dns_options {
    int timeout_seconds = 2;  // per try
    int tries = 2;
    std::string server;       // an IPv4 address instead of resolv.conf's (tests); "" = system's
    std::uint16_t port = 53;
};

// The TXT record at `name` (its strings joined) from the resolver (res_nquery), waiting at most
// timeout_seconds * tries. nullopt on no record, an error or a timeout.
std::optional<std::string> dns_txt_lookup(const std::string& name, const dns_options& options = {});

}  // namespace ndrguard::evidence::dkim
