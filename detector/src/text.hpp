// Small byte-string helpers shared by the detector's parsers. ASCII-only case folding:
// mail header names, MIME tokens and MTA phrases are ASCII, and folding UTF-8 is not needed
// to find them.
#pragma once

#include <cstdint>

#include <cstddef>
#include <string>
#include <string_view>

#include "ndrguard/detector/ascii.hpp"

namespace ndrguard::detector::text {

using ascii::iequals;
using ascii::lower;
inline bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
inline bool is_digit(char c) { return c >= '0' && c <= '9'; }
inline bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

std::string_view trim(std::string_view s);
bool istarts_with(std::string_view s, std::string_view prefix);
bool iends_with(std::string_view s, std::string_view suffix);
// Position of `needle` (which must already be lower case) in `hay`, ignoring ASCII case.
std::size_t ifind(std::string_view hay, std::string_view lower_needle, std::size_t from = 0);
inline bool icontains(std::string_view hay, std::string_view lower_needle) {
    return ifind(hay, lower_needle) != std::string_view::npos;
}
std::string to_lower(std::string_view s);
void append_lower(std::string& out, std::string_view s);
// Like to_lower, and also folds the two-byte UTF-8 capitals of Latin-1, Latin Extended-A,
// Greek and Cyrillic (the scripts of the phrase tables: "Réponse", "Odpowiedź", "Автоответ").
// Every fold keeps the byte length, so offsets in the result are offsets in `s`; bytes that
// are not such a capital (CJK, broken UTF-8) are copied unchanged.
std::string to_lower_utf8(std::string_view s);

// The value of a hex digit, or -1.
inline int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Appends a code point as UTF-8; surrogate halves and values past U+10FFFF become U+FFFD.
void append_utf8(std::string& out, std::uint32_t code_point);

// Joins folded header lines: CR/LF followed by white space become one space; the rest kept.
std::string unfold(std::string_view s);

// Iterates the lines of an LF-normalised buffer; the last line may lack its LF.
class line_reader {
public:
    explicit line_reader(std::string_view s) : rest_(s) {}
    bool next(std::string_view& line) {
        if (rest_.empty()) return false;
        std::size_t nl = rest_.find('\n');
        if (nl == std::string_view::npos) {
            line = rest_;
            rest_ = {};
        } else {
            line = rest_.substr(0, nl);
            rest_.remove_prefix(nl + 1);
        }
        return true;
    }
    std::string_view rest() const { return rest_; }

private:
    std::string_view rest_;
};

// The address in "Name <a@b>", "<a@b>", "rfc822; a@b" or "a@b (comment)": angle brackets,
// comments and an RFC 3464 address-type prefix removed, domain lower-cased. Empty if the
// value holds no '@'.
std::string extract_address(std::string_view value);
// One address token as found ("mailto:bob@x", "SMTP=bob@x", "IMCEASMTP-bob+40x@gw", "bob@x!"):
// type prefixes removed, an IMCEA-wrapped SMTP address unwrapped, the domain cut where no
// domain byte follows and lower-cased. Empty if no address is left.
std::string clean_address(std::string_view token);

}  // namespace ndrguard::detector::text
