// The digest mail: what a mailbox is told about the bounces held for it since the last digest.
// Pure: grouping and wording from plain data, the MIME structure built with mimetic.
//
// Order, most useful first: the held items that may be genuine (could not be checked), one by
// one with their own release link; then each storm as one group ("1,243 bounces for mail you did
// not send, 02:00-04:00 UTC", top reporting MTAs, sample subjects, a release-all link); then the
// other forged bounces as one group; then the link to the full list.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ndrguard::digest {

using clock_time = std::chrono::system_clock::time_point;

// A held item as the digest sees it (quarantine::item_summary, less what it does not show).
struct held_item {
    std::int64_t id = 0;
    clock_time held_at;
    std::string klass, verification;  // detector class; verified | forged | unverifiable | suspect
    std::string sender;               // envelope sender ("" for <>)
    std::string reporting_mta, subject, original_subject, original_recipient;
    std::vector<std::string> notes;   // "storm", "warm_up", ...
    std::int64_t storm_id = 0;
    std::vector<std::string> evidence;  // the verdict's evidence tags (filter/verdict.hpp)
};

struct storm_info {
    std::int64_t id = 0;
    clock_time started_at;
    std::optional<clock_time> ended_at;
    std::int64_t bounces = 0, rejected = 0;  // all it counted, and how many were refused outright
    std::vector<std::pair<std::string, std::int64_t>> top_reporters;
    std::vector<std::string> sample_subjects;
};

// Where the links go; made by the caller (signed tokens, web_base_url).
struct link_maker {
    std::function<std::string(std::int64_t item_id)> release;
    std::function<std::string(std::int64_t storm_id)> release_storm;
    std::string full_list;
    clock_time valid_until;  // when the links expire (shown as a UTC date)
};

struct digest_input {
    std::string mailbox;               // the To: and the envelope recipient
    std::string from;                  // From: ("Mail quarantine <postmaster@example.org>")
    std::string message_id;            // without <>
    clock_time now;
    std::vector<held_item> items;      // oldest first
    std::vector<storm_info> storms;    // those the items name
    std::size_t max_listed = 50;
    link_maker links;
    std::int64_t digest_id = 0;        // in X-NDRGuard-Digest:, for the administrator
};

// The groups, for the text, the HTML and the tests.
struct storm_group {
    storm_info storm;
    std::int64_t held = 0, maybe_genuine = 0;  // items of this digest in the storm
    std::string release_all_link;
};
struct digest_groups {
    std::vector<const held_item*> maybe_genuine;  // listed one by one (at most max_listed)
    std::size_t maybe_genuine_total = 0;
    std::vector<storm_group> storms;
    std::int64_t forged = 0;                      // outside storms
    std::vector<std::pair<std::string, std::int64_t>> forged_reporters;  // most first, at most 5
    std::vector<std::string> forged_subjects;     // at most 5
    std::size_t total = 0;
};
digest_groups group_items(const digest_input& in);

// "1,243"
std::string with_thousands(std::int64_t n);
// The reason an item was held, in plain words.
std::string plain_reason(const held_item& it);

struct digest_mail {
    std::string subject;  // unencoded (UTF-8)
    std::string text, html;
    std::string message;  // the whole RFC 5322 message, CRLF line ends, ready for SMTP
};
digest_mail compose_digest(const digest_input& in);

}  // namespace ndrguard::digest
