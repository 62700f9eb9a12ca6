#include "ndrguard/web/url.hpp"

namespace ndrguard::web {

bool url_decode(std::string_view in, std::string& out) {
    out.clear();
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] == '+') {
            out.push_back(' ');
        } else if (in[i] == '%') {
            if (i + 2 >= in.size()) return false;  // two hex digits must follow
            int v = 0;
            for (int k = 1; k <= 2; ++k) {
                const char c = in[i + static_cast<std::size_t>(k)];
                const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
                if (d < 0) return false;
                v = v * 16 + d;
            }
            out.push_back(static_cast<char>(v));
            i += 2;
        } else {
            out.push_back(in[i]);
        }
    }
    return true;
}

namespace {

// The first pair of `query` whose name decodes to `name`: its raw value, or "" for a bare name
// (has_value false); nothing when absent.
struct raw_pair {
    std::string_view value;
    bool has_value = false;
};
std::optional<raw_pair> find_pair(std::string_view query, std::string_view name) {
    while (!query.empty()) {
        const std::size_t amp = query.find('&');
        const std::string_view pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        const std::size_t eq = pair.find('=');
        std::string key;
        if (!url_decode(pair.substr(0, eq), key) || key != name) continue;
        if (eq == std::string_view::npos) return raw_pair{};
        return raw_pair{pair.substr(eq + 1), true};
    }
    return std::nullopt;
}

}  // namespace

std::optional<std::string> query_value(std::string_view query, std::string_view name) {
    const auto pair = find_pair(query, name);
    std::string value;
    if (!pair || (pair->has_value && !url_decode(pair->value, value))) return std::nullopt;
    return value;
}

bool query_value_malformed(std::string_view query, std::string_view name) {
    const auto pair = find_pair(query, name);
    std::string value;
    return pair && pair->has_value && !url_decode(pair->value, value);
}

std::string html_escape(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&#39;"; break;
            default: out.push_back(c);
        }
    }
    return out;
}

}  // namespace ndrguard::web
