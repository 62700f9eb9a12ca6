// Signed links for the digest and the web service (issue 5): HMAC-SHA256 over the action, the
// item or storm, the mailbox and an expiry, so that a link does one thing, for one mailbox,
// for a while, and cannot be forged or altered. Pure: the secret and the time are parameters.
//
//   v1.<base64url(action "\n" target "\n" expires "\n" mailbox)>.<base64url(HMAC-SHA256)>
//
// The signature covers everything before the last dot. Tokens over 1 KB are refused unread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace ndrguard::web {

enum class token_action {
    release,        // one held item (target = its id)
    release_storm,  // everything a storm held for the mailbox (target = the storm's id)
    list,           // the mailbox's page of held items (target = 0)
};
std::string_view to_string(token_action a);

struct token_claims {
    token_action action = token_action::release;
    std::int64_t target = 0;
    std::string mailbox;         // mailbox_key() form
    std::int64_t expires_at = 0; // Unix seconds
    bool operator==(const token_claims&) const = default;
};

enum class token_error { none, malformed, bad_signature, expired };
std::string_view to_string(token_error e);

struct token_check {
    token_error error = token_error::malformed;
    token_claims claims;  // meaningful only when error == none
};

// The secret must be at least 16 bytes (the configuration's is 32 random bytes).
std::string make_token(const token_claims& c, std::string_view secret);
token_check verify_token(std::string_view token, std::string_view secret, std::int64_t now);

// base_url + "/release/TOKEN" (release), "/release-storm/TOKEN" (release_storm) or "/held/TOKEN"
// (list): the links the digest and the pages give out.
std::string signed_link(std::string_view base_url, const token_claims& c, std::string_view secret);

// The one place links are minted: every link of one mailbox, signed with one expiry (the
// digest's, the list page's, `ndrguard quarantine link`'s). base_url "" gives paths
// ("/release/TOKEN"), as the pages link to themselves.
class mailbox_links {
public:
    mailbox_links(std::string base_url, std::string mailbox, std::string secret, std::int64_t expires_at)
        : base_url_(std::move(base_url)), mailbox_(std::move(mailbox)), secret_(std::move(secret)), expires_at_(expires_at) {}
    // Links that work for link_ttl_days from `now` (Unix seconds).
    static mailbox_links valid_for_days(std::string base_url, std::string mailbox, std::string secret, int link_ttl_days,
                                        std::int64_t now) {
        return {std::move(base_url), std::move(mailbox), std::move(secret), now + std::int64_t(link_ttl_days) * 86400};
    }

    std::string release(std::int64_t item_id) const { return link(token_action::release, item_id); }
    std::string release_storm(std::int64_t storm_id) const { return link(token_action::release_storm, storm_id); }
    std::string list() const { return link(token_action::list, 0); }
    std::int64_t expires_at() const { return expires_at_; }

private:
    std::string link(token_action a, std::int64_t target) const {
        return signed_link(base_url_, {a, target, mailbox_, expires_at_}, secret_);
    }
    std::string base_url_, mailbox_, secret_;
    std::int64_t expires_at_;
};

// The signing secret from `path`, created there (32 random bytes, hex, mode 0600) when the file
// does not exist. Throws std::runtime_error saying what is wrong: unreadable, too short, or
// readable by others than its owner.
std::string load_or_create_secret(const std::string& path);

// Exposed for tests (RFC 4231 vectors) and other signed values.
std::string hmac_sha256(std::string_view key, std::string_view message);  // 32 raw bytes
std::string base64url(std::string_view bytes);                            // no padding
bool base64url_decode(std::string_view text, std::string& out);           // false on bad input

}  // namespace ndrguard::web
