// Reading postconf's output (see postconf.hpp for the formats and where they come from).
#include "ndrguard/doctor/postconf.hpp"

#include <algorithm>

namespace ndrguard::doctor {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; }

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
    return s;
}

bool is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

bool is_parameter_name(std::string_view s) {
    return !s.empty() && s.size() <= 200 && std::all_of(s.begin(), s.end(), is_name_char);
}

// Logical lines: a line that starts with white space continues the one before (main(5),
// master(5)); comments and blank lines end nothing and are skipped. `too_long` is called for a
// logical line over the bound (it is skipped whole).
template <class Each>
bool logical_lines(std::string_view text, const limits& lim, std::size_t& bad, Each each) {
    bool truncated = false;
    if (text.size() > lim.max_input_bytes) {
        text = text.substr(0, lim.max_input_bytes);
        // The last line may be cut: drop it.
        const std::size_t nl = text.rfind('\n');
        text = nl == std::string_view::npos ? std::string_view{} : text.substr(0, nl + 1);
        truncated = true;
    }
    std::string current;
    bool have = false, over = false;
    auto flush = [&] {
        if (have) {
            if (over) ++bad;
            else if (!each(std::string_view(current))) truncated = true;
        }
        current.clear();
        have = over = false;
    };
    std::size_t start = 0;
    while (start < text.size()) {
        std::size_t nl = text.find('\n', start);
        if (nl == std::string_view::npos) nl = text.size();
        std::string_view line = text.substr(start, nl - start);
        start = nl + 1;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        const std::string_view t = trim(line);
        if (t.empty() || t.front() == '#') continue;
        if (is_space(line.front())) {
            if (!have) {
                ++bad;  // a continuation of nothing
                continue;
            }
            if (current.size() + 1 + t.size() > lim.max_line_bytes) over = true;
            else {
                current += ' ';
                current += t;
            }
            continue;
        }
        flush();
        have = true;
        if (t.size() > lim.max_line_bytes) over = true;
        else current.assign(t);
    }
    flush();
    return truncated;
}

// master(5) fields and arguments: white space separates, "{...}" (braces nested) is one token.
std::vector<std::string_view> tokens(std::string_view s, std::size_t max) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < s.size() && out.size() < max) {
        while (i < s.size() && is_space(s[i])) ++i;
        if (i >= s.size()) break;
        const std::size_t b = i;
        if (s[i] == '{') {
            int depth = 0;
            for (; i < s.size(); ++i) {
                if (s[i] == '{') ++depth;
                else if (s[i] == '}' && --depth == 0) {
                    ++i;
                    break;
                }
            }
        } else {
            while (i < s.size() && !is_space(s[i])) ++i;
        }
        out.push_back(s.substr(b, i - b));
    }
    return out;
}

std::string_view unbrace(std::string_view t) {
    if (t.size() >= 2 && t.front() == '{' && t.back() == '}') return trim(t.substr(1, t.size() - 2));
    if (!t.empty() && t.front() == '{') return trim(t.substr(1));  // unclosed: the rest
    return t;
}

}  // namespace

parameters parse_parameters(std::string_view text, const limits& lim) {
    parameters p;
    p.truncated = logical_lines(text, lim, p.bad_lines, [&](std::string_view line) {
        const std::size_t eq = line.find('=');
        const std::string_view name = eq == std::string_view::npos ? line : trim(line.substr(0, eq));
        if (eq == std::string_view::npos || !is_parameter_name(name)) {
            ++p.bad_lines;
            return true;
        }
        const std::string_view value = trim(line.substr(eq + 1));
        auto it = p.values.find(name);
        if (it != p.values.end()) {
            it->second.assign(value);  // main.cf: the last one wins
            return true;
        }
        if (p.values.size() >= lim.max_parameters) return false;
        p.values.emplace(std::string(name), std::string(value));
        return true;
    });
    return p;
}

master parse_master(std::string_view m_text, std::string_view p_text, const limits& lim) {
    master m;
    m.truncated = logical_lines(m_text, lim, m.bad_lines, [&](std::string_view line) {
        const auto t = tokens(line, 8 + lim.max_arguments + 2 * lim.max_overrides);
        if (t.size() < 8) {
            ++m.bad_lines;
            return true;
        }
        if (m.services.size() >= lim.max_services) return false;
        service s;
        s.name = t[0];
        s.type = t[1];
        s.private_ = t[2];
        s.unprivileged = t[3];
        s.chroot = t[4];
        s.wakeup = t[5];
        s.maxproc = t[6];
        s.command = t[7];
        for (std::size_t i = 8; i < t.size(); ++i) {
            std::string_view a = t[i];
            std::string_view setting;
            if (a == "-o" && i + 1 < t.size()) setting = unbrace(t[++i]);
            else if (a.size() > 2 && a.substr(0, 2) == "-o") setting = unbrace(a.substr(2));  // "-oname=value"
            else {
                if (s.arguments.size() < lim.max_arguments) s.arguments.emplace_back(a);
                continue;
            }
            const std::size_t eq = setting.find('=');
            const std::string_view name = eq == std::string_view::npos ? setting : trim(setting.substr(0, eq));
            if (eq == std::string_view::npos || !is_parameter_name(name)) {
                ++m.bad_lines;
                continue;
            }
            if (s.overrides.size() >= lim.max_overrides && !s.overrides.count(name)) continue;
            s.overrides[std::string(name)] = std::string(trim(setting.substr(eq + 1)));
        }
        m.services.push_back(std::move(s));
        return true;
    });
    std::size_t p_bad = 0;
    const bool p_truncated = logical_lines(p_text, lim, p_bad, [&](std::string_view line) {
        const std::size_t eq = line.find('=');
        const std::string_view key = eq == std::string_view::npos ? line : trim(line.substr(0, eq));
        const std::size_t s1 = key.find('/');
        const std::size_t s2 = s1 == std::string_view::npos ? s1 : key.find('/', s1 + 1);
        if (eq == std::string_view::npos || s2 == std::string_view::npos) {
            ++p_bad;
            return true;
        }
        const std::string_view name = key.substr(0, s1), type = key.substr(s1 + 1, s2 - s1 - 1),
                               param = key.substr(s2 + 1);
        if (!is_parameter_name(param)) {
            ++p_bad;
            return true;
        }
        for (auto& s : m.services) {
            if (s.name != name || s.type != type) continue;
            if (s.overrides.size() >= lim.max_overrides && !s.overrides.count(param)) break;
            s.overrides[std::string(param)] = std::string(trim(line.substr(eq + 1)));
            break;
        }
        return true;
    });
    m.bad_lines += p_bad;
    m.truncated = m.truncated || p_truncated;
    return m;
}

std::vector<std::string> split_list(std::string_view value, const limits& lim) {
    std::vector<std::string> out;
    std::size_t i = 0;
    while (i < value.size() && out.size() < lim.max_list_items) {
        while (i < value.size() && (is_space(value[i]) || value[i] == ',')) ++i;
        if (i >= value.size()) break;
        const std::size_t b = i;
        if (value[i] == '{') {
            int depth = 0;
            for (; i < value.size(); ++i) {
                if (value[i] == '{') ++depth;
                else if (value[i] == '}' && --depth == 0) {
                    ++i;
                    break;
                }
            }
        } else {
            while (i < value.size() && !is_space(value[i]) && value[i] != ',') ++i;
        }
        out.emplace_back(value.substr(b, i - b));
    }
    return out;
}

}  // namespace ndrguard::doctor
