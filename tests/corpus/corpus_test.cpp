// Corpus test: the detector against ../shared/corpus and its reference labels.
//
// Prints its figures and the misses, and fails unless
//   - at least 99% of labelled bounces are recognised as bounces (any bounce class),
//   - no labelled non-bounce is classified as anything but not_bounce,
//   - the labelled original Message-ID is found for at least 98% of the bounces that have one.
// Labels come from the Sisimai bounce parser; where we read a message and disagree with it,
// tests/corpus/label_review.jsonl says so, with the reasoning, and that decision is applied.
//
// usage: corpus_test CORPUS_DIR REVIEW_FILE   (exit 77 = skipped: no corpus)

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "ndrguard/detector/detector.hpp"
#include "ndrguard/detector/mbox.hpp"

namespace det = ndrguard::detector;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string norm_id(const std::string& id) {
    if (id.empty()) return {};
    std::string n = det::normalize_message_id("<" + id + ">");
    return n.empty() ? id : n;
}

struct figures {
    int bounces = 0, recognised = 0;
    int ham = 0, ham_clean = 0;
    int with_id = 0, id_found = 0, id_first = 0;
    int with_rcpt = 0, rcpt_found = 0;
};

double pct(int a, int b) { return b == 0 ? 100.0 : 100.0 * a / b; }

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::cerr << "usage: corpus_test CORPUS_DIR REVIEW_FILE\n";
        return 2;
    }
    fs::path corpus = argv[1];
    if (!fs::exists(corpus / "labels.jsonl")) {
        std::cout << "SKIP: no corpus at " << corpus << " (../shared is not beside the checkout)\n";
        return 77;
    }
    // Reviewed labels: file -> field -> value.
    std::map<std::string, json> review;
    {
        std::ifstream in(argv[2]);
        std::string line;
        while (std::getline(in, line)) {
            if (line.empty() || line[0] == '#') continue;
            json j = json::parse(line, nullptr, false);
            if (j.is_discarded()) {
                std::cerr << "bad line in review file: " << line << "\n";
                return 2;
            }
            review[j.at("file").get<std::string>()][j.at("field").get<std::string>()] = j.at("value");
        }
    }
    figures f;
    std::map<std::string, std::map<std::string, int>> confusion;  // expect_class -> our class -> n
    std::vector<std::string> misses;
    std::ifstream labels(corpus / "labels.jsonl");
    std::string line;
    int reviewed = 0;
    while (std::getline(labels, line)) {
        json l = json::parse(line);
        std::string file = l.at("file");
        if (auto it = review.find(file); it != review.end()) {
            for (auto& [k, v] : it->second.items()) l[k] = v;
            ++reviewed;
        }
        bool expect_bounce = l.at("expect_bounce");
        std::string expect_id = norm_id(l.value("expect_messageid", ""));
        std::string expect_rcpt = l.value("expect_recipient", "");
        std::string data = read_file(corpus / file);
        std::vector<std::string_view> messages = det::messages_in_file(data, file);

        bool all_bounce = !messages.empty(), any_not_clean = false, id_found = false, id_first = false, rcpt_found = false;
        std::string got_class;
        for (std::size_t i = 0; i < messages.size(); ++i) {
            det::result r = det::classify(messages[i]);
            // One message of an mbox reviewed as not a bounce ("file#index" in the review file):
            // it must come out not_bounce, and the file's other messages still all be bounces.
            if (auto it = review.find(file + "#" + std::to_string(i));
                messages.size() > 1 && it != review.end() && it->second.value("expect_bounce", true) == false) {
                ++reviewed;
                ++f.ham;
                if (r.klass == det::message_class::not_bounce) ++f.ham_clean;
                else misses.push_back("FALSE bounce " + file + "#" + std::to_string(i) + " got=" +
                                      std::string(det::to_string(r.klass)));
                continue;
            }
            got_class = std::string(det::to_string(r.klass));
            if (!det::is_bounce(r.klass)) all_bounce = false;
            if (r.klass != det::message_class::not_bounce) any_not_clean = true;
            if (!expect_id.empty()) {
                if (std::find(r.message_ids.begin(), r.message_ids.end(), expect_id) != r.message_ids.end()) id_found = true;
                if (!r.message_ids.empty() && r.message_ids.front() == expect_id) id_first = true;
            }
            for (auto& rc : r.recipients)
                if (!expect_rcpt.empty() && (rc.address == expect_rcpt || rc.original_address == expect_rcpt ||
                                             det::normalize_message_id("<" + expect_rcpt + ">") == rc.address))
                    rcpt_found = true;
        }
        confusion[l.value("expect_class", "?")][messages.size() == 1 ? got_class : "(mbox)"]++;
        if (expect_bounce) {
            ++f.bounces;
            if (all_bounce) ++f.recognised;
            else misses.push_back("MISS bounce  " + file + " got=" + got_class);
            if (!expect_id.empty()) {
                ++f.with_id;
                if (id_found) ++f.id_found;
                if (id_first) ++f.id_first;
                if (!id_first) misses.push_back(std::string(id_found ? "LATE msgid   " : "MISS msgid   ") + file + " want=" + expect_id);
            }
            if (!expect_rcpt.empty() && messages.size() == 1) {
                ++f.with_rcpt;
                if (rcpt_found) ++f.rcpt_found;
            }
        } else {
            ++f.ham;
            if (!any_not_clean) ++f.ham_clean;
            else misses.push_back("FALSE bounce " + file + " got=" + got_class);
        }
    }
    for (auto& m : misses) std::cout << m << "\n";
    std::cout << "\nexpected class -> detector class (files)\n";
    for (auto& [want, row] : confusion) {
        std::cout << "  " << want << ":";
        for (auto& [got, n] : row) std::cout << " " << got << "=" << n;
        std::cout << "\n";
    }
    std::printf("\nlabels reviewed by hand: %d (tests/corpus/label_review.jsonl)\n", reviewed);
    std::printf("bounces recognised:      %d/%d = %.2f%% (goal >= 99%%)\n", f.recognised, f.bounces, pct(f.recognised, f.bounces));
    std::printf("ham kept not_bounce:     %d/%d = %.2f%% (goal 100%%)\n", f.ham_clean, f.ham, pct(f.ham_clean, f.ham));
    std::printf("original Message-ID:     found %d/%d = %.2f%%, reported first %d/%d = %.2f%% (goal >= 98%%)\n",
                f.id_found, f.with_id, pct(f.id_found, f.with_id), f.id_first, f.with_id, pct(f.id_first, f.with_id));
    std::printf("labelled recipient:      %d/%d = %.2f%% (informational)\n", f.rcpt_found, f.with_rcpt,
                pct(f.rcpt_found, f.with_rcpt));
    bool ok = pct(f.recognised, f.bounces) >= 99.0 && f.ham_clean == f.ham && pct(f.id_first, f.with_id) >= 98.0;
    std::cout << (ok ? "corpus: PASS\n" : "corpus: FAIL\n");
    return ok ? 0 : 1;
}
