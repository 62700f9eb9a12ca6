// The strength of the detector's result, as a table: pure cases, then every sample of
// tests/samples, from its .expect file's class and reasons and from classify() itself.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "ndrguard/detector/detector.hpp"
#include "ndrguard/evidence/strength.hpp"

namespace fs = std::filesystem;
namespace det = ndrguard::detector;
namespace ev = ndrguard::evidence;

TEST_CASE("strength: the rule") {
    using sv = std::string_view;
    const std::vector<sv> dsn_reasons{"header.null_return_path", "dsn.rfc3464", "ref.msgid.rfc822"};
    const std::vector<sv> ndr_reasons{"ndr.heuristic.subject", "ndr.heuristic.body", "ref.msgid.rfc822"};
    const std::vector<sv> no_report{"ref.msgid.rfc822"};
    struct row {
        const char* what;
        det::message_class klass;
        const std::vector<sv>* reasons;
        bool returned;
        ev::detector_strength want;
    };
    const row rows[] = {
        {"RFC 3464 DSN with the original", det::message_class::dsn, &dsn_reasons, true, ev::detector_strength::strong},
        {"RFC 3464 DSN naming only an id", det::message_class::dsn, &dsn_reasons, false, ev::detector_strength::weak},
        {"a DSN class without the report's tag", det::message_class::dsn, &no_report, true, ev::detector_strength::weak},
        {"an NDR found by its wording, original attached", det::message_class::ndr, &ndr_reasons, true,
         ev::detector_strength::weak},
        {"an auto-reply", det::message_class::autoreply, &no_report, true, ev::detector_strength::weak},
        {"not a bounce", det::message_class::not_bounce, &no_report, false, ev::detector_strength::weak},
    };
    for (const auto& r : rows) {
        INFO(r.what);
        CHECK(ev::strength_of(ev::strength_input{r.klass, *r.reasons, r.returned}) == r.want);
    }
    CHECK(ev::to_string(ev::detector_strength::strong) == "strong");
    CHECK(ev::to_string(ev::detector_strength::weak) == "weak");
}

namespace {

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("strength of every sample, from its .expect file and from classify()") {
    // Strong: the RFC 3464 reports that return the original or its headers. All else is weak.
    const std::map<std::string, ev::detector_strength> strong{
        {"dsn-base64-rfc822", ev::detector_strength::strong},  {"dsn-crlf", ev::detector_strength::strong},
        {"dsn-delayed", ev::detector_strength::strong},        {"dsn-global-headers", ev::detector_strength::strong},
        {"dsn-global", ev::detector_strength::strong},         {"dsn-rfc822-headers", ev::detector_strength::strong},
        {"dsn-rfc822", ev::detector_strength::strong},         {"dsn-two-recipients", ev::detector_strength::strong},
        {"dsn-exchange-imcea", ev::detector_strength::strong},  // issue 18's sample: a DSN returning the headers
    };
    std::size_t samples = 0, strong_seen = 0;
    for (const auto& entry : fs::directory_iterator(NDRGUARD_SAMPLES_DIR)) {
        if (entry.path().extension() != ".expect") continue;
        const std::string name = entry.path().stem().string();
        CAPTURE(name);
        // The .expect file's class and reasons.
        std::ifstream in(entry.path());
        std::string line, klass_name;
        std::vector<std::string> reason_storage;
        while (std::getline(in, line)) {
            if (line.rfind("class: ", 0) == 0) klass_name = line.substr(7);
            if (line.rfind("reason: ", 0) == 0) reason_storage.push_back(line.substr(8));
        }
        const auto klass = det::parse_message_class(klass_name);
        REQUIRE(klass.has_value());
        std::vector<std::string_view> reasons(reason_storage.begin(), reason_storage.end());
        const bool returned = std::find(reasons.begin(), reasons.end(), "ref.msgid.rfc822") != reasons.end() ||
                              std::find(reasons.begin(), reasons.end(), "ref.msgid.rfc822_headers") != reasons.end();
        const auto want = strong.count(name) ? ev::detector_strength::strong : ev::detector_strength::weak;
        CHECK(ev::strength_of(ev::strength_input{*klass, reasons, returned}) == want);

        // The same from the message itself.
        const auto eml = entry.path().parent_path() / (name + ".eml");
        REQUIRE(fs::exists(eml));
        const det::result r = det::classify(slurp(eml));
        CHECK(ev::original_returned(r) == returned);
        CHECK(ev::strength_of(r) == want);
        ++samples;
        strong_seen += want == ev::detector_strength::strong;
    }
    CHECK(samples >= 29);
    CHECK(strong_seen == strong.size());
}
