// ASCII case folding, for the names of mail: header field names, SMTP verbs, MIME tokens, host
// names and tags are ASCII, and folding UTF-8 is never needed to compare them. One copy for the
// detector, the SMTP state machines and the evidence parsers.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ndrguard::detector::ascii {

inline char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

inline bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i])) return false;
    return true;
}

inline std::string to_lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = lower(c);
    return out;
}

// `name` is `domain` or a host or subdomain under it ("mx.example.org" in "example.org"), in
// any case; an empty domain holds nothing.
inline bool within_domain(std::string_view name, std::string_view domain) {
    if (domain.empty() || name.size() < domain.size()) return false;
    if (name.size() == domain.size()) return iequals(name, domain);
    return name[name.size() - domain.size() - 1] == '.' && iequals(name.substr(name.size() - domain.size()), domain);
}

}  // namespace ndrguard::detector::ascii
