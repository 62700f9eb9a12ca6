#include "ndrguard/evidence/batv.hpp"

#include "ndrguard/detector/ascii.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <cstdio>

namespace ndrguard::evidence {

namespace {

constexpr std::string_view reason_valid = "batv.valid";
constexpr std::string_view reason_bad_hash = "batv.bad_hash";
constexpr std::string_view reason_unknown_key = "batv.unknown_key";
constexpr std::string_view reason_expired = "batv.expired";
constexpr std::string_view reason_not_tagged = "batv.not_tagged";

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
using detector::ascii::iequals;
using detector::ascii::lower;

}  // namespace

std::string_view to_string(batv_status s) {
    switch (s) {
        case batv_status::not_tagged: return "not_tagged";
        case batv_status::valid: return "valid";
        case batv_status::invalid: return "invalid";
        case batv_status::expired: return "expired";
    }
    return "not_tagged";
}

const std::vector<std::string_view>& batv_reason_tags() {
    static const std::vector<std::string_view> tags{reason_valid, reason_bad_hash, reason_unknown_key,
                                                    reason_expired, reason_not_tagged};
    return tags;
}

bool parse_batv(std::string_view address, batv_tag& out) {
    if (address.size() >= 2 && address.front() == '<' && address.back() == '>')
        address = address.substr(1, address.size() - 2);
    // "prvs=" K DDD SSSSSS "=" loc-core "@" domain: 16 characters of tag, then at least "x@y".
    if (address.size() > max_batv_address || address.size() < 16 + 3) return false;
    if (!iequals(address.substr(0, 5), "prvs=")) return false;
    const std::string_view tag = address.substr(5, 10);
    if (!is_digit(tag[0]) || !is_digit(tag[1]) || !is_digit(tag[2]) || !is_digit(tag[3])) return false;
    for (std::size_t i = 4; i < 10; ++i)
        if (!is_hex(tag[i])) return false;
    if (address[15] != '=') return false;
    const std::string_view rest = address.substr(16);
    const std::size_t at = rest.rfind('@');  // Exim's (.+)@(.+): the last '@' splits
    if (at == std::string_view::npos || at == 0 || at + 1 == rest.size()) return false;
    out.key_number = static_cast<unsigned>(tag[0] - '0');
    out.day = static_cast<unsigned>((tag[1] - '0') * 100 + (tag[2] - '0') * 10 + (tag[3] - '0'));
    out.hash = tag.substr(4);
    out.local_part = rest.substr(0, at);
    out.domain = rest.substr(at + 1);
    return true;
}

std::int64_t day_number(std::int64_t unix_seconds) {
    // Floor division, so that a time before 1970 still falls on its own day.
    return unix_seconds >= 0 ? unix_seconds / 86400 : -((-unix_seconds + 86399) / 86400);
}

std::string prvs_hash(std::string_view secret, unsigned key_number, unsigned day, std::string_view address) {
    char prefix[8];
    std::snprintf(prefix, sizeof prefix, "%u%03u", key_number % 10, day % 1000);
    std::string source(prefix);
    source.append(address);
    std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
    unsigned int mac_size = 0;
    HMAC(EVP_sha1(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(source.data()), source.size(), mac.data(), &mac_size);
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (std::size_t i = 0; i < 3; ++i) {
        out.push_back(hex[mac[i] >> 4]);
        out.push_back(hex[mac[i] & 0xf]);
    }
    return out;
}

batv_result verify_batv(std::string_view address, const batv_settings& settings, std::int64_t today) {
    batv_result r;
    batv_tag tag;
    if (!parse_batv(address, tag)) {
        if (address.size() >= 2 && address.front() == '<' && address.back() == '>')
            address = address.substr(1, address.size() - 2);
        r.reason = reason_not_tagged;
        r.untagged = std::string(address);
        return r;
    }
    r.untagged.reserve(tag.local_part.size() + 1 + tag.domain.size());
    r.untagged.append(tag.local_part).append("@").append(tag.domain);

    const batv_key* key = nullptr;
    for (const auto& k : settings.keys)
        if (k.number == tag.key_number) key = &k;
    if (!key) {
        r.status = batv_status::invalid;
        r.reason = reason_unknown_key;
        return r;
    }
    // The hash first, as Exim does: a tag we did not make is invalid whatever its day says.
    if (!iequals(prvs_hash(key->secret, tag.key_number, tag.day, r.untagged), tag.hash)) {
        r.status = batv_status::invalid;
        r.reason = reason_bad_hash;
        return r;
    }
    // DDD is the expiry day modulo 1000. Days left until it, modulo 1000: 0 is the last day
    // the tag is good; more than validity_days means the day is past (it wrapped round) or
    // further ahead than any tag we make. Exim accepts iexpire >= inow, adjusted at the wrap;
    // this is the same on every tag made within the last 1000 - validity_days days.
    const std::int64_t today_mod = ((today % 1000) + 1000) % 1000;
    const std::int64_t days_left = (static_cast<std::int64_t>(tag.day) - today_mod + 1000) % 1000;
    if (days_left > static_cast<std::int64_t>(settings.validity_days)) {
        r.status = batv_status::expired;
        r.reason = reason_expired;
        return r;
    }
    r.status = batv_status::valid;
    r.reason = reason_valid;
    return r;
}

}  // namespace ndrguard::evidence
