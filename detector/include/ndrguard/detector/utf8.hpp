// Well-formed UTF-8 as RFC 3629 defines it and PostgreSQL checks it: no overlong forms, no
// surrogates, nothing above U+10FFFF. Shared by the SMTP session (addresses that are not
// UTF-8 are refused) and the database layer (texts it escapes). Header-only, pure.
#pragma once

#include <cstddef>
#include <string_view>

namespace ndrguard::detector {

// The length of the well-formed UTF-8 sequence starting at s[i], 0 when there is none. NUL is a
// sequence of one (callers that refuse it check it themselves).
inline std::size_t utf8_sequence_at(std::string_view s, std::size_t i) {
    auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char c = byte(i);
    if (c < 0x80) return 1;
    std::size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;  // overlong below U+0800
        if (c == 0xED) hi = 0x9F;  // surrogates U+D800..U+DFFF
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;  // overlong below U+10000
        if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
    } else {
        return 0;  // a continuation byte, C0/C1 (always overlong) or F5..FF
    }
    if (i + len > s.size() || byte(i + 1) < lo || byte(i + 1) > hi) return 0;
    for (std::size_t k = 2; k < len; ++k)
        if ((byte(i + k) & 0xC0) != 0x80) return 0;
    return len;
}

inline bool valid_utf8(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        const std::size_t n = utf8_sequence_at(s, i);
        if (n == 0) return false;
        i += n;
    }
    return true;
}

}  // namespace ndrguard::detector
