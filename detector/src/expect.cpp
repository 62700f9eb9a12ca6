#include "ndrguard/detector/expect.hpp"

#include <algorithm>
#include <sstream>

namespace ndrguard::detector {

namespace {

template <class List, class T>
bool contains(const List& list, const T& value) {
    return std::find(list.begin(), list.end(), value) != list.end();
}

// "key: value" as expect_mismatches() reads it back: one line, value after the spaces.
bool fits_on_a_line(std::string_view value) {
    return !value.empty() && value.front() != ' ' && value.find_first_of("\r\n") == std::string_view::npos;
}

// One word of a recipient line ("-" stands for none).
bool one_word(std::string_view value) {
    return value.find_first_of(" \t\r\n\v\f") == std::string_view::npos && value != "-";
}

}  // namespace

std::vector<std::string> expect_mismatches(const result& r, std::string_view expect, bool& known_failure) {
    std::vector<std::string> out;
    std::istringstream lines{std::string(expect)};
    std::string line;
    bool first_id = true;
    while (std::getline(lines, line)) {
        auto colon = line.find(':');
        if (line.empty() || colon == std::string::npos) continue;
        std::string key = line.substr(0, colon);
        std::string value = line.substr(colon + 1);
        value.erase(0, value.find_first_not_of(' '));
        auto fail = [&](const std::string& got) { out.push_back(key + ": want '" + value + "', got " + got); };
        if (key == "class") {
            if (to_string(r.klass) != value) fail(std::string(to_string(r.klass)));
        } else if (key == "message_id") {
            std::string got = r.message_ids.empty() ? "none" : r.message_ids.front();
            if (first_id ? (r.message_ids.empty() || r.message_ids.front() != value) : !contains(r.message_ids, value))
                fail(std::to_string(r.message_ids.size()) + " ids, first " + got);
            first_id = false;
        } else if (key == "recipient") {
            std::istringstream parts(value);
            std::string address, action, status;
            parts >> address >> action >> status;
            if (action == "-") action.clear();
            if (status == "-") status.clear();
            bool found = std::any_of(r.recipients.begin(), r.recipients.end(), [&](const recipient_report& x) {
                return x.address == address && to_string(x.action) == action && x.status == status;
            });
            if (!found) {
                std::string got;
                for (const auto& x : r.recipients)
                    got += "[" + x.address + " " + std::string(to_string(x.action)) + " " + x.status + "]";
                fail(got.empty() ? "no recipients" : got);
            }
        } else if (key == "reporting_mta") {
            if (r.reporting_mta != value) fail("'" + r.reporting_mta + "'");
        } else if (key == "original_from") {
            if (r.original_from != value) fail("'" + r.original_from + "'");
        } else if (key == "subject") {
            if (r.subject != value) fail("'" + r.subject + "'");
        } else if (key == "received_host") {
            if (!contains(r.received_hosts, value)) fail(std::to_string(r.received_hosts.size()) + " hosts");
        } else if (key == "reason") {
            if (!contains(r.reasons, std::string_view(value))) {
                std::string got;
                for (auto x : r.reasons) got += std::string(x) + " ";
                fail(got);
            }
        } else if (key == "flag") {
            if (!contains(flag_names(r.flags), std::string_view(value))) fail("flags without it");
        } else if (key == "known_failure") {
            known_failure = true;
        } else if (key != "note") {
            out.push_back("unknown key in .expect: " + key);
        }
    }
    return out;
}

std::optional<std::string> expect_file(const result& r, std::string_view previous) {
    std::string out;
    bool ok = true;
    auto line = [&](std::string_view key, std::string_view value) {
        ok = ok && fits_on_a_line(value);
        out.append(key).append(": ").append(value).append("\n");
    };
    auto line_if_set = [&](std::string_view key, std::string_view value) {
        if (!value.empty()) line(key, value);
    };
    auto word = [](std::string_view value) { return value.empty() ? std::string("-") : std::string(value); };

    line("class", to_string(r.klass));
    for (const auto& id : r.message_ids) line("message_id", id);
    for (const auto& rc : r.recipients) {
        ok = ok && !rc.address.empty() && one_word(rc.address) && one_word(rc.status);
        line("recipient", rc.address + " " + word(to_string(rc.action)) + " " + word(rc.status));
    }
    line_if_set("reporting_mta", r.reporting_mta);
    line_if_set("original_from", r.original_from);
    line_if_set("subject", r.subject);
    for (const auto& host : r.received_hosts) line("received_host", host);
    for (auto reason : r.reasons) line("reason", reason);
    for (auto flag : flag_names(r.flags)) line("flag", flag);

    // What people wrote: kept, in its order, after what the detector says.
    std::istringstream lines{std::string(previous)};
    std::string kept;
    for (std::string l; std::getline(lines, l);)
        if (l.starts_with("known_failure:") || l.starts_with("note:")) kept += l + "\n";
    out += kept;

    bool known_failure = false;
    if (!ok || !expect_mismatches(r, out, known_failure).empty()) return std::nullopt;
    return out;
}

}  // namespace ndrguard::detector
