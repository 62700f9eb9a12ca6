#include "ndrguard/evidence/trace.hpp"

#include "ndrguard/detector/ascii.hpp"

#include <algorithm>

namespace ndrguard::evidence {

namespace {

constexpr std::string_view reason_our_relay = "trace.our_relay";
constexpr std::string_view reason_spf_fail = "trace.spf_fail";
constexpr std::string_view reason_dmarc_fail = "trace.dmarc_fail";
constexpr std::string_view reason_foreign_origin = "trace.foreign_origin";
constexpr std::string_view reason_truncated = "trace.truncated";

using detector::ascii::iequals;
using detector::ascii::lower;
std::string lowered(std::string_view s) { return detector::ascii::to_lower(s); }

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
    return s;
}

// A header value as a sequence of words and top-level comments, in order (RFC 5322 CFWS:
// comments nest, a backslash quotes the next character; quoted strings are kept in words).
// ';' is a word of its own. Iterative: nesting depth is only a counter.
struct item {
    bool comment = false;
    std::string text;
};

std::vector<item> items_of(std::string_view v) {
    std::vector<item> out;
    std::string word;
    auto flush = [&] {
        if (!word.empty()) out.push_back({false, std::move(word)});
        word.clear();
    };
    for (std::size_t i = 0; i < v.size(); ++i) {
        const char c = v[i];
        if (c == '(') {
            flush();
            std::string text;
            std::size_t depth = 1;
            for (++i; i < v.size() && depth > 0; ++i) {
                if (v[i] == '\\' && i + 1 < v.size()) {
                    text.push_back(v[++i]);
                    continue;
                }
                if (v[i] == '(') ++depth;
                if (v[i] == ')' && --depth == 0) break;
                text.push_back(v[i]);
            }
            out.push_back({true, std::move(text)});
        } else if (c == '"') {
            for (++i; i < v.size() && v[i] != '"'; ++i) {
                if (v[i] == '\\' && i + 1 < v.size()) ++i;
                word.push_back(v[i]);
            }
        } else if (c == ';') {
            flush();
            out.push_back({false, ";"});
        } else if (is_space(c)) {
            flush();
        } else {
            word.push_back(c);
        }
    }
    flush();
    return out;
}

std::vector<std::string_view> words_of(std::string_view s) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && is_space(s[i])) ++i;
        const std::size_t start = i;
        while (i < s.size() && !is_space(s[i])) ++i;
        if (i > start) out.push_back(s.substr(start, i - start));
    }
    return out;
}

bool looks_like_ip(std::string_view s) {
    if (s.size() < 2 || s.size() > 64) return false;
    std::size_t dots = 0, colons = 0;
    for (char c : s) {
        if (c == '.') ++dots;
        else if (c == ':') ++colons;
        else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) return false;
    }
    return dots == 3 || colons >= 2;
}

bool looks_like_host(std::string_view s) {
    if (s.empty() || s.size() > 255 || s.find('.') == std::string_view::npos) return false;
    bool letter = false;
    for (char c : s) {
        const char l = lower(c);
        if (l >= 'a' && l <= 'z') letter = true;
        else if (!((l >= '0' && l <= '9') || l == '-' || l == '.' || l == '_')) return false;
    }
    return letter;
}

std::string strip_ip(std::string_view s) {
    if (s.size() >= 2 && s.front() == '[' && s.back() == ']') s = s.substr(1, s.size() - 2);
    if (s.size() > 5 && iequals(s.substr(0, 5), "ipv6:")) s.remove_prefix(5);
    return lowered(s);
}

// The first looked-up name and the IP of the comment after "from HELO".
void read_from_comment(std::string_view comment, received_hop& hop, bool& exim_style) {
    const auto words = words_of(comment);
    std::string_view name, ip;
    bool after_helo_keyword = false;
    for (auto w : words) {
        if (w.find('=') != std::string_view::npos) {  // Exim's helo=NAME
            if (w.size() > 5 && iequals(w.substr(0, 5), "helo=")) exim_style = true;
            continue;
        }
        if (iequals(w, "helo") || iequals(w, "ehlo")) {  // Sendmail's (HELO name)
            after_helo_keyword = true;
            continue;
        }
        if (w.front() == '[') {
            const std::size_t close = w.find(']');
            if (ip.empty()) ip = w.substr(0, close == std::string_view::npos ? w.size() : close + 1);
            continue;
        }
        if (after_helo_keyword) {
            after_helo_keyword = false;
            continue;
        }
        if (ip.empty() && looks_like_ip(w)) {  // Exchange writes (10.0.0.1) without brackets
            ip = w;
            continue;
        }
        if (name.empty() && ip.empty() && looks_like_host(w)) name = w;
    }
    if (!ip.empty()) hop.from_ip = strip_ip(ip);
    if (!name.empty()) hop.from_name = lowered(name);
}

bool is_clause_keyword(std::string_view w) {
    for (std::string_view k : {"from", "by", "via", "with", "id", "for"})
        if (iequals(w, k)) return true;
    return false;
}

bool domain_is_ours(std::string_view domain, const trace_settings& s) {
    if (domain.empty()) return false;
    for (const auto& ours : s.our_domains)
        if (detector::ascii::within_domain(domain, ours)) return true;
    return false;
}

bool host_is_relay(std::string_view host, const trace_settings& s) {
    if (host.empty() || host.size() > 255) return false;  // no host name is longer (RFC 1035)
    for (const auto& pattern : s.our_relays)
        if (host_glob_match(pattern, host)) return true;
    return false;
}

// Our relay, or a host in our domains: for "is this hop one of ours" in foreign_origin.
bool host_is_ours(std::string_view host, const trace_settings& s) {
    return host_is_relay(host, s) || domain_is_ours(host, s);
}

// The domain of an address, a bare domain, or "" (lower case).
std::string domain_of(std::string_view value) {
    value = trim(value);
    if (value.size() >= 2 && value.front() == '<' && value.back() == '>') value = value.substr(1, value.size() - 2);
    const std::size_t at = value.rfind('@');
    if (at != std::string_view::npos) value.remove_prefix(at + 1);
    value = trim(value);
    while (!value.empty() && value.back() == '.') value.remove_suffix(1);
    if (!looks_like_host(value)) return {};
    return lowered(value);
}

// The address of a From value: inside <...>, else the first word with an '@'.
std::string from_domain_of(std::string_view value) {
    std::string outside;
    for (const auto& it : items_of(value))
        if (!it.comment) outside.append(it.text).push_back(' ');
    const std::size_t open = outside.find('<');
    if (open != std::string::npos) {
        const std::size_t close = outside.find('>', open);
        return domain_of(std::string_view(outside).substr(open + 1, (close == std::string::npos ? outside.size() : close) - open - 1));
    }
    for (auto w : words_of(outside))
        if (w.find('@') != std::string_view::npos) {
            while (!w.empty() && (w.back() == ',' || w.back() == ';')) w.remove_suffix(1);
            return domain_of(w);
        }
    return {};
}

// "a = b" -> "a=b", so that RFC 8601's CFWS around "=" leaves one word per method and property.
std::string join_equals(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (is_space(s[i])) {
            std::size_t j = i;
            while (j < s.size() && is_space(s[j])) ++j;
            if ((j < s.size() && s[j] == '=') || (!out.empty() && out.back() == '=')) {
                i = j - 1;
                continue;
            }
        }
        out.push_back(s[i]);
    }
    return out;
}

// The words of a value without its comments, split at ';' into segments.
std::vector<std::vector<std::string>> segments_of(std::string_view value) {
    std::vector<std::vector<std::string>> out(1);
    std::string flat;
    for (const auto& it : items_of(value)) {
        if (it.comment) {
            flat.push_back(' ');
            continue;
        }
        flat.append(it.text == ";" ? std::string(1, '\x01') : it.text).push_back(' ');
    }
    const std::string joined = join_equals(flat);  // words_of returns views into it
    for (auto w : words_of(joined)) {
        std::size_t start = 0;
        while (start <= w.size()) {
            const std::size_t sep = w.find('\x01', start);
            const std::string_view part = w.substr(start, sep == std::string_view::npos ? std::string_view::npos : sep - start);
            if (!part.empty()) out.back().push_back(lowered(part));
            if (sep == std::string_view::npos) break;
            out.emplace_back();
            start = sep + 1;
        }
    }
    return out;
}

std::string_view value_after(std::string_view word, std::string_view key) {
    if (word.size() > key.size() && word[key.size()] == '=' && iequals(word.substr(0, key.size()), key))
        return word.substr(key.size() + 1);
    return {};
}

// RFC 8601 section 2.2: authserv-id [version] ( "none" / 1*( ";" method=result *prop ) ).
void read_authentication_results(std::string_view value, const trace_settings& s, trace_evidence& ev) {
    const auto segs = segments_of(value);
    if (segs.empty() || segs[0].empty()) return;
    const std::string& authserv_id = segs[0][0];
    if (host_is_ours(authserv_id, s)) return;  // our own results, not the receiver's
    for (std::size_t i = 1; i < segs.size(); ++i) {
        const auto& words = segs[i];
        if (words.empty()) continue;
        const std::size_t eq = words[0].find('=');
        if (eq == std::string::npos) continue;
        std::string_view method = std::string_view(words[0]).substr(0, eq);
        method = method.substr(0, method.find('/'));  // method "/" version
        const std::string_view result = std::string_view(words[0]).substr(eq + 1);
        if (result != "fail") continue;
        for (std::size_t w = 1; w < words.size(); ++w) {
            if (method == "spf") {
                if (auto v = value_after(words[w], "smtp.mailfrom"); !v.empty() && domain_is_ours(domain_of(v), s))
                    ev.spf_fail = true;
            } else if (method == "dmarc") {
                if (auto v = value_after(words[w], "header.from"); !v.empty() && domain_is_ours(domain_of(v), s))
                    ev.dmarc_fail = true;
            }
        }
    }
}

// RFC 7208 section 9.1: result [comment] [key-value-list], keys envelope-from, identity, receiver.
void read_received_spf(std::string_view value, const trace_settings& s, trace_evidence& ev) {
    const auto segs = segments_of(value);
    if (segs.empty() || segs[0].empty() || segs[0][0] != "fail") return;
    std::string envelope_from_domain;
    bool about_mailfrom = true, ours_wrote_it = false;
    for (const auto& seg : segs)
        for (std::size_t w = (&seg == &segs[0]) ? 1 : 0; w < seg.size(); ++w) {
            if (auto v = value_after(seg[w], "envelope-from"); !v.empty()) envelope_from_domain = domain_of(v);
            if (auto v = value_after(seg[w], "identity"); !v.empty()) about_mailfrom = (v == "mailfrom");
            if (auto v = value_after(seg[w], "receiver"); !v.empty()) ours_wrote_it = host_is_ours(v, s);
        }
    if (about_mailfrom && !ours_wrote_it && domain_is_ours(envelope_from_domain, s)) ev.spf_fail = true;
}

}  // namespace

const std::vector<std::string_view>& trace_reason_tags() {
    static const std::vector<std::string_view> tags{reason_our_relay, reason_spf_fail, reason_dmarc_fail,
                                                    reason_foreign_origin, reason_truncated};
    return tags;
}

bool host_glob_match(std::string_view pattern, std::string_view host) {
    // Iterative wildcard match with one backtrack point: linear in practice, never recursive.
    std::size_t p = 0, h = 0, star = std::string_view::npos, mark = 0;
    while (h < host.size()) {
        if (p < pattern.size() && (pattern[p] == '?' || lower(pattern[p]) == lower(host[h]))) {
            ++p, ++h;
        } else if (p < pattern.size() && pattern[p] == '*') {
            star = p++;
            mark = h;
        } else if (star != std::string_view::npos) {
            p = star + 1;
            h = ++mark;
        } else {
            return false;
        }
    }
    while (p < pattern.size() && pattern[p] == '*') ++p;
    return p == pattern.size() && !pattern.empty();
}

received_hop parse_received(std::string_view value) {
    received_hop hop;
    const auto items = items_of(value);
    enum class clause { none, from, by, other } in = clause::none;
    bool want_from_host = false, want_by_host = false, read_comment = false, exim_style = false;
    for (const auto& it : items) {
        if (!it.comment && it.text == ";") break;  // the date follows
        if (it.comment) {
            // Sendmail may write "(HELO name)" before "(name [IP])": read on until an IP is found.
            if (in == clause::from && !read_comment) {
                read_from_comment(it.text, hop, exim_style);
                read_comment = !hop.from_ip.empty();
            }
            continue;
        }
        if (want_from_host) {
            want_from_host = false;
            if (it.text.front() == '[') hop.from_ip = strip_ip(it.text);
            else hop.from_helo = lowered(it.text);
            continue;
        }
        if (want_by_host) {
            want_by_host = false;
            hop.by = lowered(it.text);
            continue;
        }
        if (is_clause_keyword(it.text)) {
            if (iequals(it.text, "from") && in == clause::none) {
                in = clause::from;
                want_from_host = true;
            } else if (iequals(it.text, "by") && hop.by.empty()) {
                in = clause::by;
                want_by_host = true;
            } else {
                in = clause::other;
            }
        }
    }
    // Exim writes the looked-up name after "from" and the HELO in the comment.
    if (exim_style && hop.from_name.empty() && looks_like_host(hop.from_helo)) hop.from_name = hop.from_helo;
    return hop;
}

trace_evidence read_trace(std::string_view headers, const trace_settings& settings, const trace_limits& limits) {
    trace_evidence ev;
    if (headers.size() > limits.max_header_bytes) {
        headers = headers.substr(0, limits.max_header_bytes);
        ev.truncated = true;
    }
    bool from_seen = false, received_cut = false;
    std::size_t fields = 0;

    std::string name, value;
    auto finish_field = [&] {
        if (name.empty()) return;
        if (iequals(name, "received")) {
            if (ev.hops.size() < limits.max_received) ev.hops.push_back(parse_received(value));
            else received_cut = ev.truncated = true;
        } else if (iequals(name, "authentication-results")) {
            read_authentication_results(value, settings, ev);
        } else if (iequals(name, "received-spf")) {
            read_received_spf(value, settings, ev);
        } else if (iequals(name, "from") && !from_seen) {
            from_seen = true;
            ev.from_domain = from_domain_of(value);
        }
        name.clear();
        value.clear();
    };
    auto append = [&](std::string_view part) {
        const std::size_t room = limits.max_field_bytes - std::min(limits.max_field_bytes, value.size());
        if (part.size() > room) {
            part = part.substr(0, room);
            ev.truncated = true;
        }
        value.append(part);
    };

    std::size_t pos = 0;
    while (pos < headers.size()) {
        std::size_t end = headers.find('\n', pos);
        if (end == std::string_view::npos) end = headers.size();
        std::string_view line = headers.substr(pos, end - pos);
        pos = end + 1;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.empty()) break;  // the end of the header section
        if (line.front() == ' ' || line.front() == '\t') {
            if (!name.empty()) append(line);
            continue;
        }
        finish_field();
        if (++fields > limits.max_fields) {
            ev.truncated = true;
            break;
        }
        const std::size_t colon = line.find(':');
        if (colon == std::string_view::npos || colon == 0 || colon > 76) continue;  // not a field
        name.assign(trim(line.substr(0, colon)));
        append(line.substr(colon + 1));
    }
    finish_field();

    for (const auto& hop : ev.hops)
        if (host_is_relay(hop.by, settings) || host_is_relay(hop.from_name, settings) ||
            host_is_relay(hop.from_ip, settings))
            ev.our_relay = true;
    if (!ev.our_relay && !received_cut && !ev.hops.empty() && domain_is_ours(ev.from_domain, settings)) {
        const received_hop& oldest = ev.hops.back();
        // Any name the oldest hop gives for its client, even the HELO, spares the message: the
        // cautious direction, as foreign_origin is evidence of forgery.
        const bool from_ours = host_is_ours(oldest.from_helo, settings) || host_is_ours(oldest.from_name, settings) ||
                               host_is_relay(oldest.from_ip, settings);
        if (!oldest.by.empty() && !host_is_ours(oldest.by, settings) && !from_ours) ev.foreign_origin = true;
    }

    if (ev.our_relay) ev.reasons.push_back(reason_our_relay);
    if (ev.spf_fail) ev.reasons.push_back(reason_spf_fail);
    if (ev.dmarc_fail) ev.reasons.push_back(reason_dmarc_fail);
    if (ev.foreign_origin) ev.reasons.push_back(reason_foreign_origin);
    if (ev.truncated) ev.reasons.push_back(reason_truncated);
    return ev;
}

}  // namespace ndrguard::evidence
