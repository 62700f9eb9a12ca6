#include "ndrguard/quarantine/sql_text.hpp"

#include <cstdio>

namespace ndrguard::quarantine {

std::int64_t message_id_hash(std::string_view id) {
    std::uint64_t h = 14695981039346656037ull;  // FNV-1a 64 offset basis
    for (unsigned char c : id) {
        h ^= c;
        h *= 1099511628211ull;  // FNV 64 prime
    }
    return static_cast<std::int64_t>(h);  // two's complement: the bigint PostgreSQL stores
}

day utc_day(std::chrono::system_clock::time_point t) { return std::chrono::floor<std::chrono::days>(t); }

std::string iso_date(day d) {
    std::chrono::year_month_day ymd(d);
    char buf[16];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", int(ymd.year()), unsigned(ymd.month()), unsigned(ymd.day()));
    return buf;
}

std::string partition_name(day d, std::string_view table) {
    std::string s = iso_date(d);
    return std::string(table) + "_" + s.substr(0, 4) + s.substr(5, 2) + s.substr(8, 2);
}

std::optional<day> partition_day(std::string_view name, std::string_view table) {
    const std::string prefix = std::string(table) + "_";
    if (name.size() != prefix.size() + 8 || name.substr(0, prefix.size()) != prefix) return std::nullopt;
    int v[3] = {0, 0, 0};
    const int widths[3] = {4, 2, 2};
    std::size_t pos = prefix.size();
    for (int i = 0; i < 3; ++i) {
        for (int k = 0; k < widths[i]; ++k, ++pos) {
            char c = name[pos];
            if (c < '0' || c > '9') return std::nullopt;
            v[i] = v[i] * 10 + (c - '0');
        }
    }
    std::chrono::year_month_day ymd{std::chrono::year(v[0]), std::chrono::month(unsigned(v[1])),
                                    std::chrono::day(unsigned(v[2]))};
    if (!ymd.ok()) return std::nullopt;
    return day(ymd);
}

std::string text_array_literal(const std::vector<std::string>& items) {
    std::string out = "{";
    for (std::size_t i = 0; i < items.size(); ++i) {
        if (i) out.push_back(',');
        out.push_back('"');
        for (char c : items[i]) {
            if (c == '"' || c == '\\') out.push_back('\\');
            out.push_back(c);
        }
        out.push_back('"');
    }
    out.push_back('}');
    return out;
}

std::string to_db_text(std::string_view raw) {
    static const char hex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(raw.size());
    for (std::size_t i = 0; i < raw.size();) {
        const auto c = static_cast<unsigned char>(raw[i]);
        const std::size_t n = utf8_sequence_at(raw, i);
        if (c == '\\') {
            out += "\\\\";
        } else if (n == 0 || c == 0 || c == 0x1F) {
            out += "\\x";
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 15]);
        } else {
            out.append(raw.substr(i, n));
            i += n;
            continue;
        }
        ++i;
    }
    return out;
}

std::string from_db_text(std::string_view s) {
    auto hex_value = [](char h) -> int {
        if (h >= '0' && h <= '9') return h - '0';
        if (h >= 'A' && h <= 'F') return h - 'A' + 10;
        if (h >= 'a' && h <= 'f') return h - 'a' + 10;
        return -1;
    };
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 1 < s.size() && s[i + 1] == '\\') {
            out.push_back('\\');
            ++i;
        } else if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] == 'x' && hex_value(s[i + 2]) >= 0 &&
                   hex_value(s[i + 3]) >= 0) {
            out.push_back(static_cast<char>(hex_value(s[i + 2]) * 16 + hex_value(s[i + 3])));
            i += 3;
        } else {
            out.push_back(s[i]);
        }
    }
    return out;
}

std::string display_text(std::string_view s, std::size_t max) {
    std::string out;
    for (std::size_t i = 0; i < s.size();) {
        const std::size_t n = utf8_sequence_at(s, i);
        const bool ok = n > 0 && s[i] != '\0';
        if (out.size() + (ok ? n : 1) > max) break;
        if (ok) out.append(s.substr(i, n));
        else out.push_back('?');
        i += ok ? n : 1;
    }
    return out;
}

std::string bigint_array_literal(const std::vector<std::int64_t>& items) {
    std::string out = "{";
    for (std::size_t i = 0; i < items.size(); ++i) {
        if (i) out.push_back(',');
        out += std::to_string(items[i]);
    }
    out.push_back('}');
    return out;
}

}  // namespace ndrguard::quarantine
