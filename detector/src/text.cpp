#include "text.hpp"

#include <cstring>

namespace ndrguard::detector::text {

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
    return s;
}

bool istarts_with(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

bool iends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && iequals(s.substr(s.size() - suffix.size()), suffix);
}

std::size_t ifind(std::string_view hay, std::string_view needle, std::size_t from) {
    if (needle.empty()) return from <= hay.size() ? from : std::string_view::npos;
    if (hay.size() < needle.size() || from > hay.size() - needle.size()) return std::string_view::npos;
    // memchr for both cases of the first byte is what makes this fast on long texts.
    const char first_lo = needle[0];
    const char first_up = (first_lo >= 'a' && first_lo <= 'z') ? char(first_lo - 32) : first_lo;
    const char* base = hay.data();
    const std::size_t last = hay.size() - needle.size();
    std::size_t i = from;
    while (i <= last) {
        const void* lo = std::memchr(base + i, first_lo, last - i + 1);
        const void* up = first_up == first_lo ? nullptr : std::memchr(base + i, first_up, last - i + 1);
        const char* hit = static_cast<const char*>(lo);
        if (up && (!hit || static_cast<const char*>(up) < hit)) hit = static_cast<const char*>(up);
        if (!hit) return std::string_view::npos;
        std::size_t pos = std::size_t(hit - base);
        std::size_t k = 1;
        while (k < needle.size() && lower(base[pos + k]) == needle[k]) ++k;
        if (k == needle.size()) return pos;
        i = pos + 1;
    }
    return std::string_view::npos;
}

std::string to_lower(std::string_view s) {
    std::string out;
    append_lower(out, s);
    return out;
}

void append_lower(std::string& out, std::string_view s) {
    std::size_t base = out.size();
    out.resize(base + s.size());
    for (std::size_t i = 0; i < s.size(); ++i) out[base + i] = lower(s[i]);
}

std::string to_lower_utf8(std::string_view s) {
    // ASCII first, in the simple loop the compiler vectorises; then only the lead bytes of the
    // folded two-byte blocks (C3..D0) are looked at again.
    std::string out = to_lower(s);
    const std::size_t n = out.size();
    for (std::size_t i = 0; i + 1 < n; ++i) {
        const auto c = static_cast<unsigned char>(out[i]);
        if (c < 0xC3 || c > 0xD0) continue;
        const auto d = static_cast<unsigned char>(out[i + 1]);
        if ((d & 0xC0) != 0x80) continue;
        // Two-byte sequence: code point 0x40 * (c & 0x1F) + (d & 0x3F).
        const std::uint32_t cp = (std::uint32_t(c & 0x1F) << 6) | (d & 0x3F);
        std::uint32_t lo = cp;
        if ((cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) || (cp >= 0x391 && cp <= 0x3AB && cp != 0x3A2) ||
            (cp >= 0x410 && cp <= 0x42F))
            lo = cp + 0x20;  // Latin-1 capitals, Greek capitals, Cyrillic А..Я
        else if (cp >= 0x400 && cp <= 0x40F)
            lo = cp + 0x50;  // Cyrillic Ѐ..Џ -> ѐ..џ (the lead byte changes, D0 -> D1)
        else if (cp == 0x178)
            lo = 0xFF;  // Ÿ -> ÿ
        else if (cp >= 0x100 && cp <= 0x17E && cp != 0x130 && cp != 0x138 && cp != 0x149)
            // Latin Extended-A pairs capital/small as even/odd, except Ĺ..ň and Ź..ž: odd/even.
            lo = ((cp >= 0x139 && cp <= 0x148) || cp >= 0x179) ? (cp % 2 == 1 ? cp + 1 : cp) : (cp | 1);
        if (lo != cp && lo >= 0x80 && lo < 0x800) {  // only folds that stay two bytes long
            out[i] = char(0xC0 | (lo >> 6));
            out[i + 1] = char(0x80 | (lo & 0x3F));
        }
        ++i;
    }
    return out;
}

void append_utf8(std::string& out, std::uint32_t cp) {
    if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) cp = 0xFFFD;
    if (cp < 0x80) {
        out.push_back(char(cp));
    } else if (cp < 0x800) {
        out.push_back(char(0xC0 | (cp >> 6)));
        out.push_back(char(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out.push_back(char(0xE0 | (cp >> 12)));
        out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(char(0x80 | (cp & 0x3F)));
    } else {
        out.push_back(char(0xF0 | (cp >> 18)));
        out.push_back(char(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(char(0x80 | (cp & 0x3F)));
    }
}

std::string unfold(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (c == '\r' || c == '\n') {
            // Skip the line break; the white space that starts the continuation line stays
            // (RFC 5322 2.2.3), collapsed with what follows below.
            while (i + 1 < s.size() && (s[i + 1] == '\r' || s[i + 1] == '\n')) ++i;
            if (!out.empty() && out.back() != ' ') out.push_back(' ');
            while (i + 1 < s.size() && (s[i + 1] == ' ' || s[i + 1] == '\t')) ++i;
            continue;
        }
        out.push_back(c == '\t' ? ' ' : c);
    }
    return std::string(trim(out));
}

namespace {

// Removes (comments), honouring nesting and quoted-pairs, outside "quoted strings".
std::string strip_comments(std::string_view v) {
    std::string out;
    out.reserve(v.size());
    int depth = 0;
    bool quoted = false;
    for (std::size_t i = 0; i < v.size(); ++i) {
        char c = v[i];
        if (c == '\\' && i + 1 < v.size() && (depth > 0 || quoted)) {
            if (depth == 0) { out.push_back(c); out.push_back(v[i + 1]); }
            ++i;
            continue;
        }
        if (quoted) {
            out.push_back(c);
            if (c == '"') quoted = false;
            continue;
        }
        if (c == '(') { ++depth; continue; }
        if (c == ')' && depth > 0) { --depth; continue; }
        if (depth > 0) continue;
        if (c == '"') quoted = true;
        out.push_back(c);
    }
    return out;
}

bool is_addr_char(char c) {
    return !(is_space(c) || c == '<' || c == '>' || c == '(' || c == ')' || c == ',' || c == ';' ||
             c == '"' || c == '[' || c == ']' || c == '\'' || c == ':');
}

}  // namespace

std::string extract_address(std::string_view value) {
    std::string v = strip_comments(value);
    std::string_view s = trim(v);
    // RFC 3464 address-type prefix ("rfc822;", "utf-8;").
    if (std::size_t semi = s.find(';'); semi != std::string_view::npos && semi < 16 &&
                                        s.substr(0, semi).find('@') == std::string_view::npos)
        s = trim(s.substr(semi + 1));
    std::string_view addr;
    if (std::size_t lt = s.find('<'); lt != std::string_view::npos) {
        std::size_t gt = s.find('>', lt + 1);
        addr = trim(s.substr(lt + 1, gt == std::string_view::npos ? std::string_view::npos : gt - lt - 1));
    }
    if (addr.find('@') == std::string_view::npos) {
        // No bracketed address: take the first token that holds an '@'.
        std::size_t at = s.find('@');
        if (at == std::string_view::npos) return {};
        std::size_t b = at, e = at + 1;
        while (b > 0 && is_addr_char(s[b - 1])) --b;
        while (e < s.size() && is_addr_char(s[e])) ++e;
        addr = s.substr(b, e - b);
    }
    return clean_address(addr);
}

namespace {

// Exchange wraps addresses of other types in an SMTP address: IMCEA<type>-<address>@<domain>,
// the inner address with '+XX' (hex) for every byte that may not stand in a local part.
// An SMTP address wrapped so ("IMCEASMTP-bob+40example+2Enet@ex.example") is unwrapped; other
// types (EX, the X.500 DN of a mailbox) stay as they are, the address mail was sent to.
std::string unwrap_imcea(std::string_view local) {
    if (!istarts_with(local, "imceasmtp-")) return {};
    std::string out;
    for (std::size_t i = 10; i < local.size(); ++i) {
        if (local[i] == '+' && i + 2 < local.size() && hex_value(local[i + 1]) >= 0 && hex_value(local[i + 2]) >= 0) {
            const char c = char(hex_value(local[i + 1]) * 16 + hex_value(local[i + 2]));
            // Only what an address may hold: no controls, spaces or specials of RFC 5322.
            if (static_cast<unsigned char>(c) < 0x21 || c == 0x7F || std::strchr("<>()[]\\,;:\"", c) != nullptr) return {};
            out.push_back(c);
            i += 2;
        } else {
            out.push_back(local[i]);
        }
    }
    std::size_t at = out.rfind('@');
    if (at == std::string::npos || at == 0 || at + 1 == out.size()) return {};
    return out;
}

}  // namespace

namespace {

std::string clean_address_once(std::string_view addr, bool unwrap) {
    std::size_t at = addr.rfind('@');
    if (at == std::string_view::npos || at == 0 || at + 1 >= addr.size()) return {};
    std::string_view local = addr.substr(0, at);
    // Type prefixes written into the address: "mailto:" (RFC 6068, in Exchange and webmail
    // texts), "SMTP:" (Exchange proxy addresses), X.400's domain-defined attribute
    // "DDA:SMTP=bob@..." (Exchange and Domino NDRs); the address is what follows.
    for (std::string_view prefix : {std::string_view("mailto:"), std::string_view("smtp:")})
        if (istarts_with(local, prefix)) local.remove_prefix(prefix.size());
    if (std::size_t p = ifind(local, "smtp="); p != std::string_view::npos && p + 5 < local.size())
        local.remove_prefix(p + 5);
    // Exchange wraps once: the address inside is not unwrapped again.
    if (unwrap)
        if (std::string inner = unwrap_imcea(local); !inner.empty()) return clean_address_once(inner, false);
    std::string_view domain = addr.substr(at + 1);
    // The domain ends at the first byte no domain (nor address literal) has: "x.example!" and
    // "x.example>" are x.example. Bytes above 0x7F stay (RFC 6531 domains).
    std::size_t end = 0;
    while (end < domain.size()) {
        const char c = domain[end];
        const bool ok = is_alpha(c) || is_digit(c) || c == '.' || c == '-' || c == '_' || c == '[' || c == ']' ||
                        c == ':' || static_cast<unsigned char>(c) >= 0x80;
        if (!ok) break;
        ++end;
    }
    domain = domain.substr(0, end);
    while (!domain.empty() && domain.back() == '.') domain.remove_suffix(1);
    if (domain.empty() || local.empty()) return {};
    std::string out(local);
    out.push_back('@');
    append_lower(out, domain);
    return out;
}

}  // namespace

std::string clean_address(std::string_view addr) { return clean_address_once(addr, true); }

}  // namespace ndrguard::detector::text
