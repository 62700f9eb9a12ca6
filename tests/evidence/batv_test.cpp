// BATV tags: every vector is made here from draft-levine-smtp-batv-01's algorithm with OpenSSL
// directly (HMAC-SHA1 of "K DDD loc-core@domain", first 3 bytes in hex), not with prvs_hash.
#include <doctest/doctest.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <string>

#include "ndrguard/evidence/batv.hpp"

namespace ev = ndrguard::evidence;

namespace {

std::string spec_hash(const std::string& secret, unsigned key, unsigned ddd, const std::string& address) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%u%03u", key, ddd);
    const std::string source = buf + address;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    HMAC(EVP_sha1(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(source.data()), source.size(), mac, &n);
    char hex[7];
    std::snprintf(hex, sizeof hex, "%02x%02x%02x", mac[0], mac[1], mac[2]);
    return hex;
}

std::string tagged(const std::string& secret, unsigned key, unsigned ddd, const std::string& local,
                   const std::string& domain) {
    char head[16];
    std::snprintf(head, sizeof head, "prvs=%u%03u", key, ddd);
    return head + spec_hash(secret, key, ddd, local + "@" + domain) + "=" + local + "@" + domain;
}

const ev::batv_settings settings{{{0, "old-secret"}, {1, "current secret, with spaces"}}, 7};
constexpr std::int64_t today = 20424;  // 2025-12-02; 424 modulo 1000

}  // namespace

TEST_CASE("prvs_hash is the spec's HMAC-SHA1 prefix") {
    CHECK(ev::prvs_hash("k", 0, 431, "alice@example.org") == spec_hash("k", 0, 431, "alice@example.org"));
    CHECK(ev::prvs_hash("current secret, with spaces", 1, 7, "a@b.c") ==
          spec_hash("current secret, with spaces", 1, 7, "a@b.c"));
}

TEST_CASE("verify_batv: the table") {
    const std::string k1 = "current secret, with spaces";
    struct row {
        const char* what;
        std::string address;
        std::int64_t today;
        ev::batv_status status;
        std::string_view reason;
        std::string untagged;
    };
    std::string upper = tagged(k1, 1, 431, "alice", "example.org");
    for (std::size_t i = 0; i < 5; ++i) upper[i] = static_cast<char>(std::toupper(static_cast<unsigned char>(upper[i])));
    for (std::size_t i = 9; i < 15; ++i) upper[i] = static_cast<char>(std::toupper(static_cast<unsigned char>(upper[i])));
    std::string bad_hash = tagged(k1, 1, 431, "alice", "example.org");
    bad_hash[14] = bad_hash[14] == '0' ? '1' : '0';
    const row rows[] = {
        {"made today, expires in 7 days", tagged(k1, 1, 431, "alice", "example.org"), today,
         ev::batv_status::valid, "batv.valid", "alice@example.org"},
        {"the older key still verifies", tagged("old-secret", 0, 428, "bob", "example.org"), today,
         ev::batv_status::valid, "batv.valid", "bob@example.org"},
        {"its last day", tagged(k1, 1, 424, "alice", "example.org"), today, ev::batv_status::valid, "batv.valid",
         "alice@example.org"},
        {"the day after its last", tagged(k1, 1, 423, "alice", "example.org"), today, ev::batv_status::expired,
         "batv.expired", "alice@example.org"},
        {"further ahead than any tag we make", tagged(k1, 1, 432, "alice", "example.org"), today,
         ev::batv_status::expired, "batv.expired", "alice@example.org"},
        {"made on day 998, expires on 005 (the wrap)", tagged(k1, 1, 5, "alice", "example.org"), 20998,
         ev::batv_status::valid, "batv.valid", "alice@example.org"},
        {"expired on 999, checked on 003", tagged(k1, 1, 999, "alice", "example.org"), 21003,
         ev::batv_status::expired, "batv.expired", "alice@example.org"},
        {"prefix and hex in upper case", upper, today, ev::batv_status::valid, "batv.valid", "alice@example.org"},
        {"in angle brackets", "<" + tagged(k1, 1, 430, "alice", "example.org") + ">", today, ev::batv_status::valid,
         "batv.valid", "alice@example.org"},
        {"a local part with '=' and '@' (the last '@' splits)", tagged(k1, 1, 430, "a=b@c", "example.org"), today,
         ev::batv_status::valid, "batv.valid", "a=b@c@example.org"},
        {"one hex digit changed", bad_hash, today, ev::batv_status::invalid, "batv.bad_hash", "alice@example.org"},
        {"another site's key", tagged("not ours", 1, 431, "alice", "example.org"), today, ev::batv_status::invalid,
         "batv.bad_hash", "alice@example.org"},
        {"a key number we do not have", tagged(k1, 3, 431, "alice", "example.org"), today,
         ev::batv_status::invalid, "batv.unknown_key", "alice@example.org"},
        {"bad hash and expired: invalid first", tagged("not ours", 1, 100, "alice", "example.org"), today,
         ev::batv_status::invalid, "batv.bad_hash", "alice@example.org"},
        {"a tag for another address", tagged(k1, 1, 431, "alice", "example.org").replace(16, 5, "carol"), today,
         ev::batv_status::invalid, "batv.bad_hash", "carol@example.org"},
        {"no tag", "alice@example.org", today, ev::batv_status::not_tagged, "batv.not_tagged", "alice@example.org"},
        {"no tag, in brackets", "<alice@example.org>", today, ev::batv_status::not_tagged, "batv.not_tagged",
         "alice@example.org"},
        {"the tag after the local part (not a form we accept)", "alice=prvs=1431abcdef@example.org", today,
         ev::batv_status::not_tagged, "batv.not_tagged", "alice=prvs=1431abcdef@example.org"},
        {"a non-hex hash", "prvs=1431abcdeg=alice@example.org", today, ev::batv_status::not_tagged,
         "batv.not_tagged", "prvs=1431abcdeg=alice@example.org"},
        {"a short tag", "prvs=143abcdef=alice@example.org", today, ev::batv_status::not_tagged, "batv.not_tagged",
         "prvs=143abcdef=alice@example.org"},
        {"no domain", "prvs=1431abcdef=alice", today, ev::batv_status::not_tagged, "batv.not_tagged",
         "prvs=1431abcdef=alice"},
        {"an empty local part", "prvs=1431abcdef=@example.org", today, ev::batv_status::not_tagged,
         "batv.not_tagged", "prvs=1431abcdef=@example.org"},
        {"SRS, not BATV", "SRS0=HHH=TT=example.org=alice@forwarder.example", today, ev::batv_status::not_tagged,
         "batv.not_tagged", "SRS0=HHH=TT=example.org=alice@forwarder.example"},
        {"the null sender", "", today, ev::batv_status::not_tagged, "batv.not_tagged", ""},
    };
    for (const auto& r : rows) {
        INFO(r.what);
        CAPTURE(r.address);
        const auto got = ev::verify_batv(r.address, settings, r.today);
        CHECK(got.status == r.status);
        CHECK(got.reason == r.reason);
        CHECK(got.untagged == r.untagged);
        if (got.status != ev::batv_status::valid) continue;
        CHECK(std::find(ev::batv_reason_tags().begin(), ev::batv_reason_tags().end(), got.reason) !=
              ev::batv_reason_tags().end());
    }
}

// Made by Exim itself (Debian's exim4-daemon-light 4.96, `exim -be` run once by hand on day
// 20789, 2026-12-02): ${prvs{ADDRESS}{KEY}{KEYNUM}} signs with today + 7 = day 796.
TEST_CASE("tags made by Exim 4.96's ${prvs} verify, and Exim's ${prvscheck} accepted ours") {
    const ev::batv_settings exim_keys{{{1, "current secret"}, {0, "old-secret"}, {9, "k9"}, {2, "ndrguard made this"}}, 7};
    struct row {
        const char* tag;
        const char* untagged;
    };
    const row rows[] = {
        {"prvs=179616a4bd=alice@example.org", "alice@example.org"},
        {"prvs=07966ef50c=list-owner+x@lists.example.org", "list-owner+x@lists.example.org"},  // no KEYNUM: 0
        {"prvs=97969e325f=a=b@example.org", "a=b@example.org"},
    };
    for (const auto& r : rows) {
        INFO(r.tag);
        for (std::int64_t day = 20789; day <= 20796; ++day) {
            const auto got = ev::verify_batv(r.tag, exim_keys, day);
            CHECK(got.status == ev::batv_status::valid);
            CHECK(got.untagged == r.untagged);
        }
        CHECK(ev::verify_batv(r.tag, exim_keys, 20797).status == ev::batv_status::expired);
    }
    // ${prvscheck{prvs=2795d2ec6d=bob@example.org}{ndrguard made this}{...}} set $prvscheck_result
    // to 1, and not with another key. (Exim refused the same tag in upper case: its pattern is
    // caseless but it compares the hash with its own lower-case one. We accept either case: the
    // value, 24 bits, is the same.)
    CHECK(ev::prvs_hash("ndrguard made this", 2, 795, "bob@example.org") == "d2ec6d");
}

TEST_CASE("an address longer than any real one is not read as tagged") {
    const std::string long_local(400, 'a');
    const auto got = ev::verify_batv(tagged("old-secret", 0, 428, long_local, "example.org"), settings, today);
    CHECK(got.status == ev::batv_status::not_tagged);
}

TEST_CASE("day_number is days since 1970 in UTC") {
    CHECK(ev::day_number(0) == 0);
    CHECK(ev::day_number(86399) == 0);
    CHECK(ev::day_number(86400) == 1);
    CHECK(ev::day_number(-1) == -1);
    CHECK(ev::day_number(1764633600) == 20424);  // 2025-12-02T00:00:00Z
}

TEST_CASE("parse_batv splits the tag") {
    ev::batv_tag t;
    REQUIRE(ev::parse_batv("prvs=7042a1b2c3=list-owner@lists.example.org", t));
    CHECK(t.key_number == 7);
    CHECK(t.day == 42);
    CHECK(t.hash == "a1b2c3");
    CHECK(t.local_part == "list-owner");
    CHECK(t.domain == "lists.example.org");
    CHECK_FALSE(ev::parse_batv("prvs=7042a1b2c3", t));
}
