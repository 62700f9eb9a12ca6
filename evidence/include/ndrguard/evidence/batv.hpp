// BATV: checking the prvs tag of a bounce's envelope recipient (draft-levine-smtp-batv-01).
//
// A site whose outbound relay (Exim's ${prvs}, or a gateway) tags its envelope senders gets
// bounces addressed to the tagged address. A tag made with our key is evidence that the
// bounce answers mail we sent; a tag that does not verify, or is too old, is evidence of
// forgery. ndrguard only checks tags: it never rewrites an address itself.
//
// The one form accepted, and where it comes from:
//   prvs=KDDDSSSSSS=loc-core@domain
// draft-levine-smtp-batv-01 section 4 ("prvs", tag-val = K DDD SSSSSS) and Exim's
// ${prvs{address}{key}{keynum}} / ${prvscheck{...}} expansion items, whose check is the anchored,
// case-insensitive pattern ^prvs=([0-9])([0-9]{3})([A-F0-9]{6})=(.+)@(.+)$:
//   K       one decimal digit, the key number (Exim: 0 when not given)
//   DDD     the day the tag expires, as days since 1970-01-01 modulo 1000 (Exim: today + 7)
//   SSSSSS  the first 3 bytes of HMAC-SHA1(key, K DDD loc-core@domain), in hex
// A tag after the local part (user=prvs=...@domain) is in neither text, and Exim's pattern does
// not match it: such an address reads as not tagged (no evidence either way), never as forged.
// The prefix and the hex digits are read in either case. (Exim's pattern is caseless, but it
// then compares the hash with its own lower-case one, so it refuses upper-case hex: the value
// is the same 24 bits either way.) Checked against Exim 4.96 itself: tests/evidence/batv_test.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ndrguard::evidence {

enum class batv_status : std::uint8_t {
    not_tagged,  // no prvs tag: BATV says nothing about this bounce
    valid,       // our key's tag, not expired: evidence we sent the message bounced
    invalid,     // a prvs tag our keys do not make (bad hash, or a key number we do not have)
    expired,     // our key's tag, but its day is past (or further ahead than any tag we make)
};
std::string_view to_string(batv_status s);

struct batv_key {
    unsigned number = 0;  // 0..9, the K of the tag
    std::string secret;
};

struct batv_settings {
    std::vector<batv_key> keys;
    // How many days ahead of signing the signer sets DDD (Exim's ${prvs} uses 7). A tag is
    // accepted from the day it is made until its day DDD is over.
    unsigned validity_days = 7;
};

// A prvs-tagged address, split. Views into the address given to parse_batv.
struct batv_tag {
    unsigned key_number = 0;
    unsigned day = 0;               // DDD, 0..999
    std::string_view hash;          // SSSSSS as written (6 hex digits, either case)
    std::string_view local_part;    // loc-core
    std::string_view domain;
};

// Longer addresses are not read as tagged (RFC 5321 allows 64 + 1 + 255, plus the 16 of the tag).
inline constexpr std::size_t max_batv_address = 400;

// The tag of `address` (optionally in <>), or false when it has none in the accepted form.
bool parse_batv(std::string_view address, batv_tag& out);

struct batv_result {
    batv_status status = batv_status::not_tagged;
    // One of the fixed tags: batv.valid, batv.bad_hash, batv.unknown_key, batv.expired,
    // batv.not_tagged (invalid is bad_hash or unknown_key).
    std::string_view reason;
    std::string untagged;  // loc-core@domain; the address as given when not tagged
};

// The tags verify_batv returns, in one list (for metrics labels and tests).
const std::vector<std::string_view>& batv_reason_tags();

// `today` is the day number (days since 1970-01-01, UTC) of the check.
batv_result verify_batv(std::string_view address, const batv_settings& settings, std::int64_t today);

// The day number of a Unix time.
std::int64_t day_number(std::int64_t unix_seconds);

// SSSSSS for key `secret`, key number, day DDD and loc-core@domain: 6 lower-case hex digits.
std::string prvs_hash(std::string_view secret, unsigned key_number, unsigned day, std::string_view address);

}  // namespace ndrguard::evidence
