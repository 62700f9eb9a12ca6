// Classification throughput of the detector on a set of message files, one core.
//
// All files are read (and mbox files split) before the clock starts; then whole passes of
// classify() over every message run until at least --seconds of CPU time have been spent (after
// one warm-up pass that is not counted).
// Prints one line: detector messages=N bytes=B passes=P cpu_seconds=C wall_seconds=W
//                  messages_per_s=X mb_per_s=Y bounces=K
// (N, B and K per pass; rates from total work / process CPU time).
//
// usage: bench_detector [--seconds S] PATH...
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "cpu_clock.hpp"
#include "ndrguard/detector/detector.hpp"
#include "ndrguard/detector/mbox.hpp"

namespace fs = std::filesystem;
namespace det = ndrguard::detector;
using ndrguard::bench::cpu_seconds;

namespace {

void collect(const fs::path& p, std::vector<fs::path>& out) {
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
        for (const auto& e : fs::recursive_directory_iterator(p, ec))
            if (e.is_regular_file()) out.push_back(e.path());
    } else if (fs::is_regular_file(p, ec)) {
        out.push_back(p);
    }
}

}  // namespace

int main(int argc, char** argv) {
    double min_seconds = 2.0;
    std::vector<fs::path> files;
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        if (a == "--seconds" && i + 1 < argc) min_seconds = std::atof(argv[++i]);
        else collect(a, files);
    }
    std::sort(files.begin(), files.end());
    std::vector<std::string> contents;
    contents.reserve(files.size());
    std::vector<std::string_view> messages;
    for (const auto& f : files) {
        std::ifstream in(f, std::ios::binary);
        contents.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    std::size_t bytes = 0;
    for (std::size_t i = 0; i < files.size(); ++i)
        for (auto m : det::messages_in_file(contents[i], files[i].filename().string())) {
            messages.push_back(m);
            bytes += m.size();
        }
    if (messages.empty()) {
        std::fprintf(stderr, "bench_detector: no messages found\n");
        return 2;
    }

    volatile std::size_t sink = 0;
    // A warm-up pass, not counted: the first touches of the messages and of the allocator.
    for (auto m : messages) sink = sink + det::classify(m).message_ids.size();
    std::size_t passes = 0, bounces = 0;
    const double cpu0 = cpu_seconds();
    const auto wall0 = std::chrono::steady_clock::now();
    double cpu = 0;
    do {
        std::size_t pass_bounces = 0;
        for (auto m : messages) {
            det::result r = det::classify(m);
            if (det::is_bounce(r.klass)) ++pass_bounces;
            sink = sink + r.message_ids.size() + r.recipients.size();
        }
        bounces = pass_bounces;
        ++passes;
        cpu = cpu_seconds() - cpu0;
    } while (cpu < min_seconds);
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
    const double done = double(messages.size() * passes);
    std::printf("detector messages=%zu bytes=%zu passes=%zu cpu_seconds=%.3f wall_seconds=%.3f "
                "messages_per_s=%.0f mb_per_s=%.1f bounces=%zu\n",
                messages.size(), bytes, passes, cpu, wall, done / cpu,
                double(bytes) * double(passes) / cpu / 1e6, bounces);
    return 0;
}
