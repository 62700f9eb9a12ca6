// Runs every tests/samples/*.eml through classify() and checks it against its .expect file.
//
// The format is detector/include/ndrguard/detector/expect.hpp's; `ndrguard scan --expect FILE`
// writes it (tests/samples/README.md).
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "ndrguard/detector/detector.hpp"
#include "ndrguard/detector/expect.hpp"
#include "ndrguard/detector/mbox.hpp"

namespace fs = std::filesystem;
namespace det = ndrguard::detector;

namespace {

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
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
        auto diff = det::expect_mismatches(det::classify(messages.front()), expect, known_failure);
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
