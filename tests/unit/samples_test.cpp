// Runs every tests/samples/*.eml through classify() and checks it against its .expect file.
//
// .expect lines (all optional but class):
//   class: dsn                        the class
//   message_id: ID                    the first such line must be the first id reported;
//                                     each further one must be reported somewhere
//   recipient: ADDR ACTION STATUS     a recipient with that action and status ("-" = none)
//   reporting_mta: / original_from: / subject:   equal to the field
//   received_host: HOST / reason: TAG / flag: NAME   present in the list
//   known_failure: WHY                the detector is known to get this sample wrong: the
//                                     mismatches are printed, not failed; a sample that then
//                                     passes fails, so the marker is removed when fixed
//   note: TEXT                        for people
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "ndrguard/detector/detector.hpp"
#include "ndrguard/detector/mbox.hpp"

namespace fs = std::filesystem;
namespace det = ndrguard::detector;

namespace {

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

template <class List, class T>
bool contains(const List& list, const T& value) {
    return std::find(list.begin(), list.end(), value) != list.end();
}

// Every way the result differs from the expectation, one line each.
std::vector<std::string> mismatches(const det::result& r, const std::string& expect, bool& known_failure) {
    std::vector<std::string> out;
    std::istringstream lines(expect);
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
            if (det::to_string(r.klass) != value) fail(std::string(det::to_string(r.klass)));
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
            bool found = std::any_of(r.recipients.begin(), r.recipients.end(), [&](const det::recipient_report& x) {
                return x.address == address && det::to_string(x.action) == action && x.status == status;
            });
            if (!found) {
                std::string got;
                for (const auto& x : r.recipients)
                    got += "[" + x.address + " " + std::string(det::to_string(x.action)) + " " + x.status + "]";
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
            if (!contains(det::flag_names(r.flags), std::string_view(value))) fail("flags without it");
        } else if (key == "known_failure") {
            known_failure = true;
        } else if (key != "note") {
            out.push_back("unknown key in .expect: " + key);
        }
    }
    return out;
}

}  // namespace

TEST_CASE("every sample classifies as its .expect file says") {
    const fs::path dir = NDRGUARD_SAMPLES_DIR;
    std::vector<fs::path> samples;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.path().extension() == ".eml") samples.push_back(e.path());
    std::sort(samples.begin(), samples.end());
    REQUIRE(samples.size() >= 25);

    int known = 0;
    for (const auto& eml : samples) {
        fs::path expect_file = eml;
        expect_file.replace_extension(".expect");
        CAPTURE(eml.filename().string());
        REQUIRE_MESSAGE(fs::exists(expect_file), "missing " << expect_file.filename().string());
        std::string expect = slurp(expect_file);
        REQUIRE_MESSAGE(expect.find("class:") != std::string::npos, "no class in " << expect_file.string());

        std::string bytes = slurp(eml);
        auto messages = det::messages_in_file(bytes, eml.filename().string());
        REQUIRE(messages.size() == 1);
        bool known_failure = false;
        auto diff = mismatches(det::classify(messages.front()), expect, known_failure);
        if (known_failure) {
            ++known;
            for (const auto& d : diff) MESSAGE("KNOWN FAILURE " << eml.filename().string() << ": " << d);
            CHECK_MESSAGE(!diff.empty(), eml.filename().string() << " passes now: remove its known_failure line");
        } else {
            for (const auto& d : diff) FAIL_CHECK(eml.filename().string() << ": " << d);
        }
    }
    MESSAGE(samples.size() << " samples, " << known << " known failures");
}
