// Signed release links: the HMAC primitive against RFC 4231, base64url, and every way a token
// can be wrong (altered, forged, expired, malformed).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "ndrguard/web/release_token.hpp"

using namespace ndrguard::web;

namespace {

std::string hex(std::string_view bytes) {
    static const char digits[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : bytes) {
        out.push_back(digits[c >> 4]);
        out.push_back(digits[c & 15]);
    }
    return out;
}

const std::string secret = "0123456789abcdef0123456789abcdef";
const std::int64_t now = 1795400000;

token_claims sample() {
    token_claims c;
    c.action = token_action::release;
    c.target = 4711;
    c.mailbox = "alice@example.org";
    c.expires_at = now + 14 * 86400;
    return c;
}

}  // namespace

TEST_CASE("HMAC-SHA256 matches RFC 4231") {
    // Test case 1 and test case 2 of RFC 4231.
    CHECK(hex(hmac_sha256(std::string(20, '\x0b'), "Hi There")) ==
          "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    CHECK(hex(hmac_sha256("Jefe", "what do ya want for nothing?")) ==
          "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST_CASE("base64url: round trips, no padding, one spelling per value") {
    for (const std::string& s : std::vector<std::string>{"", "f", "fo", "foo", "foob", "fooba", "foobar", std::string("\xff\xfe\x00\x01", 4)}) {
        std::string back;
        REQUIRE(base64url_decode(base64url(s), back));
        CHECK(back == s);
        CHECK(base64url(s).find('=') == std::string::npos);
    }
    CHECK(base64url("foobar") == "Zm9vYmFy");
    CHECK(base64url("\xfb\xff") == "-_8");
    std::string out;
    CHECK_FALSE(base64url_decode("Zm9v+mFy", out));  // not the URL alphabet
    CHECK_FALSE(base64url_decode("Z", out));         // impossible length
    CHECK_FALSE(base64url_decode("Zh", out));        // "f" is "Zg": stray low bits refused
}

TEST_CASE("a token made is a token verified, with the same claims") {
    for (auto action : {token_action::release, token_action::release_storm, token_action::list}) {
        token_claims c = sample();
        c.action = action;
        auto t = make_token(c, secret);
        CHECK(t.substr(0, 3) == "v1.");
        auto check = verify_token(t, secret, now);
        CHECK(check.error == token_error::none);
        CHECK(check.claims == c);
    }
}

TEST_CASE("every altered character makes a token invalid") {
    const std::string t = make_token(sample(), secret);
    for (std::size_t i = 0; i < t.size(); ++i) {
        std::string bad = t;
        bad[i] = bad[i] == 'A' ? 'B' : 'A';
        auto check = verify_token(bad, secret, now);
        CHECK_MESSAGE(check.error != token_error::none, "position " << i);
    }
}

TEST_CASE("forged, expired and malformed tokens are refused, each for its reason") {
    const std::string t = make_token(sample(), secret);
    CHECK(verify_token(t, "another secret of 32 bytes......", now).error == token_error::bad_signature);
    CHECK(verify_token(t, secret, sample().expires_at).error == token_error::expired);
    CHECK(verify_token(t, secret, sample().expires_at - 1).error == token_error::none);
    // A payload signed with the right secret but made up by hand still has to parse.
    std::string signed_part = "v1." + base64url("release\n12\n99999999999\n");
    CHECK(verify_token(signed_part + "." + base64url(hmac_sha256(secret, signed_part)), secret, now).error ==
          token_error::malformed);  // no mailbox
    signed_part = "v1." + base64url("delete\n12\n99999999999\nalice@example.org");
    CHECK(verify_token(signed_part + "." + base64url(hmac_sha256(secret, signed_part)), secret, now).error ==
          token_error::malformed);  // no such action
    for (const std::string& junk : std::vector<std::string>{"", "v1", "v1.", "v1..", "v2." + t.substr(3), "v1.abc", t + "A", std::string(5000, 'v')})
        CHECK(verify_token(junk, secret, now).error != token_error::none);
}

TEST_CASE("the mailbox is bounded and kept exactly") {
    token_claims c = sample();
    c.mailbox = "Ünïcode.user+tag@exämple.org";
    auto check = verify_token(make_token(c, secret), secret, now);
    CHECK(check.error == token_error::none);
    CHECK(check.claims.mailbox == c.mailbox);
    c.mailbox = std::string(1000, 'm');
    auto long_one = verify_token(make_token(c, secret), secret, now);
    CHECK(long_one.error == token_error::none);
    CHECK(long_one.claims.mailbox.size() == 320);
}

TEST_CASE("a mailbox's links: release, storm and list, one expiry link_ttl_days ahead, each verified for what it does") {
    const auto links = mailbox_links::valid_for_days("https://q.example.org", "alice@example.org", secret, 14, now);
    CHECK(links.expires_at() == now + 14 * 86400);
    auto claims_of = [&](const std::string& link, std::string_view path) {
        REQUIRE(link.rfind(std::string("https://q.example.org") + std::string(path), 0) == 0);
        auto check = verify_token(std::string_view(link).substr(std::string("https://q.example.org").size() + path.size()), secret, now);
        REQUIRE(check.error == token_error::none);
        return check.claims;
    };
    CHECK(claims_of(links.release(7), "/release/") == token_claims{token_action::release, 7, "alice@example.org", now + 14 * 86400});
    CHECK(claims_of(links.release_storm(3), "/release-storm/") ==
          token_claims{token_action::release_storm, 3, "alice@example.org", now + 14 * 86400});
    CHECK(claims_of(links.list(), "/held/") == token_claims{token_action::list, 0, "alice@example.org", now + 14 * 86400});
    // No base URL: the paths the pages link to themselves with.
    CHECK(mailbox_links("", "alice@example.org", secret, now + 60).release(7).rfind("/release/v1.", 0) == 0);
}
