#include "ndrguard/digest/encode.hpp"

namespace ndrguard::digest {

namespace {

constexpr char hex[] = "0123456789ABCDEF";

// Length of the valid UTF-8 sequence starting at s[i], or 0 when it is invalid.
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > s.size()) return 0;
    for (std::size_t k = 1; k < n; ++k)
        if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return 0;
    if (n == 2 && c < 0xC2) return 0;  // overlong
    return n;
}

bool plain_ascii(std::string_view s) {
    for (char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c < 0x20 || c > 0x7E) return false;
    }
    // "=?" would be read as the start of an encoded word.
    return s.find("=?") == std::string_view::npos;
}

}  // namespace

std::string valid_utf8(std::string_view bytes) {
    std::string out;
    out.reserve(bytes.size());
    for (std::size_t i = 0; i < bytes.size();) {
        const std::size_t n = utf8_sequence(bytes, i);
        if (n == 0) {
            out += "\xEF\xBF\xBD";
            ++i;
        } else {
            out.append(bytes.substr(i, n));
            i += n;
        }
    }
    return out;
}

std::string encode_header_text(std::string_view utf8, std::size_t first_line_used) {
    if (plain_ascii(utf8) && first_line_used + utf8.size() <= 998) return std::string(utf8);
    constexpr std::string_view open = "=?UTF-8?Q?", close = "?=";
    constexpr std::size_t max_word = 75;
    std::string out, word;
    std::size_t line_used = first_line_used;
    auto flush = [&] {
        if (word.empty()) return;
        std::string w = std::string(open) + word + std::string(close);
        if (!out.empty()) {
            out += "\r\n ";
            line_used = 1;
        }
        out += w;
        line_used += w.size();
        word.clear();
    };
    for (std::size_t i = 0; i < utf8.size();) {
        std::size_t n = utf8_sequence(utf8, i);
        std::string encoded;
        if (n == 0) {
            encoded = "=EF=BF=BD";  // U+FFFD for a byte that is not UTF-8
            n = 1;
        } else {
            for (std::size_t k = 0; k < n; ++k) {
                const auto c = static_cast<unsigned char>(utf8[i + k]);
                if (c == ' ') {
                    encoded += '_';
                } else if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '!' || c == '*' ||
                           c == '+' || c == '-' || c == '/') {
                    encoded += static_cast<char>(c);
                } else {
                    encoded += '=';
                    encoded += hex[c >> 4];
                    encoded += hex[c & 15];
                }
            }
        }
        // The first word shares its line with the field name.
        const std::size_t room = out.empty() && line_used < 40 ? max_word - line_used : max_word;
        if (open.size() + word.size() + encoded.size() + close.size() > room) flush();
        word += encoded;
        i += n;
    }
    flush();
    return out;
}

std::string quoted_printable(std::string_view text) {
    std::string out;
    out.reserve(text.size() + text.size() / 8);
    std::size_t pos = 0;
    while (pos <= text.size()) {
        std::size_t nl = text.find('\n', pos);
        if (nl == std::string_view::npos) nl = text.size();
        std::string_view line = text.substr(pos, nl - pos);
        if (nl < text.size() && !line.empty() && line.back() == '\r') line.remove_suffix(1);  // CR LF: one line end
        std::size_t used = 0;
        for (std::size_t i = 0; i < line.size(); ++i) {
            const auto c = static_cast<unsigned char>(line[i]);
            const bool last = i + 1 == line.size();
            auto literal_here = [&] {
                // An output line must not start with "From " (mbox readers would split there).
                return ((c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !last)) &&
                       !(used == 0 && c == 'F' && line.substr(i, 5) == "From ");
            };
            bool literal = literal_here();
            if (used + (literal ? 1 : 3) > (last ? 76 : 75)) {  // room for the soft break's "="
                out += "=\r\n";
                used = 0;
                literal = literal_here();
            }
            const std::size_t need = literal ? 1 : 3;
            if (literal) {
                out += static_cast<char>(c);
            } else {
                out += '=';
                out += hex[c >> 4];
                out += hex[c & 15];
            }
            used += need;
        }
        if (nl == text.size()) break;
        out += "\r\n";
        pos = nl + 1;
    }
    return out;
}

}  // namespace ndrguard::digest
