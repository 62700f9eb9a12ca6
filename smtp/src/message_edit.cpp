#include "ndrguard/smtp/message_edit.hpp"

#include <cstdio>
#include <ctime>

namespace ndrguard::smtp {

namespace {

bool iequals_prefix(std::string_view line, std::string_view name) {
    if (line.size() <= name.size() || line[name.size()] != ':') {
        // "Name :" (space before the colon) is obsolete syntax but still a field.
        std::size_t colon = line.find(':');
        if (colon == std::string_view::npos || colon < name.size()) return false;
        for (std::size_t i = name.size(); i < colon; ++i)
            if (line[i] != ' ' && line[i] != '\t') return false;
    }
    for (std::size_t i = 0; i < name.size(); ++i) {
        char a = line[i], b = name[i];
        if (a >= 'A' && a <= 'Z') a = char(a + 32);
        if (b >= 'A' && b <= 'Z') b = char(b + 32);
        if (a != b) return false;
    }
    return true;
}

}  // namespace

std::string_view header_section(std::string_view message) {
    std::size_t pos = 0;
    while (pos < message.size()) {
        std::size_t nl = message.find('\n', pos);
        std::string_view line = message.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
        if (line.empty() || line == "\r") return message.substr(0, pos);
        if (nl == std::string_view::npos) break;
        pos = nl + 1;
    }
    return message;
}

std::string header_value(std::string_view message, std::string_view name) {
    std::string_view headers = header_section(message);
    std::size_t pos = 0;
    std::string value;
    bool in_field = false;
    while (pos < headers.size()) {
        std::size_t nl = headers.find('\n', pos);
        std::string_view line = headers.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
        pos = nl == std::string_view::npos ? headers.size() : nl + 1;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (in_field) {
            if (!line.empty() && (line[0] == ' ' || line[0] == '\t')) {
                value.append(" ").append(line.substr(line.find_first_not_of(" \t")));
                continue;
            }
            break;
        }
        if (iequals_prefix(line, name)) {
            value.assign(line.substr(line.find(':') + 1));
            in_field = true;
        }
    }
    std::size_t b = value.find_first_not_of(" \t");
    std::size_t e = value.find_last_not_of(" \t");
    return b == std::string::npos ? std::string() : value.substr(b, e - b + 1);
}

bool has_header(std::string_view message, std::string_view name) {
    std::string_view headers = header_section(message);
    std::size_t pos = 0;
    while (pos < headers.size()) {
        std::size_t nl = headers.find('\n', pos);
        std::string_view line = headers.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
        if (iequals_prefix(line, name)) return true;
        if (nl == std::string_view::npos) break;
        pos = nl + 1;
    }
    return false;
}

std::size_t remove_fields(std::string& message, std::initializer_list<std::string_view> names) {
    const std::string_view headers = header_section(message);
    auto named = [&](std::string_view line) {
        for (auto n : names)
            if (!n.empty() && iequals_prefix(line, n)) return true;
        return false;
    };
    // Lines of the header section: a field is its first line and the folded ones after it.
    std::string kept;
    std::size_t removed = 0, pos = 0;
    bool dropping = false;
    while (pos < headers.size()) {
        std::size_t nl = headers.find('\n', pos);
        std::size_t end = nl == std::string_view::npos ? headers.size() : nl + 1;
        std::string_view line = headers.substr(pos, end - pos);
        const bool folded = line[0] == ' ' || line[0] == '\t';
        if (!folded) {
            dropping = named(line);
            if (dropping && removed++ == 0) kept.assign(headers.substr(0, pos));  // first hit: copy what came before
        }
        if (removed > 0 && !dropping) kept.append(line);
        pos = end;
    }
    if (removed == 0) return 0;  // nothing copied, nothing changed
    kept.append(std::string_view(message).substr(headers.size()));
    message = std::move(kept);
    return removed;
}

std::string with_header_on_top(std::string_view message, std::string_view name, std::string_view value) {
    std::string out;
    out.reserve(message.size() + name.size() + value.size() + 4);
    out.append(name).append(": ").append(value).append("\r\n").append(message);
    return out;
}

std::string make_message_id(std::chrono::system_clock::time_point now, std::uint64_t random, std::string_view host) {
    std::time_t t = std::chrono::system_clock::to_time_t(now);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d%02d%02dT%02d%02d%02d.%016llx", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<unsigned long long>(random));
    return "<" + std::string(buf) + "@" + std::string(host) + ">";
}

}  // namespace ndrguard::smtp
