// BENCH detector_mime_heavy: one large bounce (a DSN returning a 5 MB message, base64-encoded,
// with a few hundred recipients), classified repeatedly; compared with the physical floor of
// touching the same bytes: memcpy of the message, in the same run, on the same core. Each is
// run once as a warm-up before it is timed.
// Prints the figures and one BENCH line (ratio = detector MB/s / memcpy MB/s).
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "cpu_clock.hpp"
#include "ndrguard/detector/detector.hpp"

namespace det = ndrguard::detector;
using ndrguard::bench::cpu_seconds;

namespace {

std::string base64(const std::string& in) {
    static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::size_t line = 0;
    for (std::size_t i = 0; i + 2 < in.size(); i += 3) {
        unsigned v = unsigned((unsigned char)in[i]) << 16 | unsigned((unsigned char)in[i + 1]) << 8 |
                     unsigned((unsigned char)in[i + 2]);
        for (int k = 3; k >= 0; --k) out.push_back(table[(v >> (6 * k)) & 63]);
        if ((line += 4) == 76) {
            out.push_back('\n');
            line = 0;
        }
    }
    return out;
}

std::string big_bounce() {
    std::string original = "From: alice@example.org\nTo: bob@example.net\nSubject: big\n"
                           "Message-ID: <big.1@mail.example.org>\n\n";
    unsigned x = 12345;
    while (original.size() < (5u << 20)) {
        x = x * 1103515245u + 12345u;
        original.push_back(char('a' + (x >> 16) % 26));
        if ((x >> 8) % 70 == 0) original.push_back('\n');
    }
    std::string m = "Return-Path: <>\nFrom: MAILER-DAEMON@mx.example.net\nTo: alice@example.org\n"
                    "Subject: Undelivered Mail Returned to Sender\nMIME-Version: 1.0\n"
                    "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\n\n"
                    "--B\nContent-Type: text/plain\n\nYour message could not be delivered.\n\n"
                    "--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n";
    for (int i = 0; i < 300; ++i)
        m += "\nFinal-Recipient: rfc822; u" + std::to_string(i) + "@example.net\nAction: failed\nStatus: 5.1.1\n";
    m += "\n--B\nContent-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n" + base64(original) + "\n--B--\n";
    return m;
}

}  // namespace

int main() {
    const std::string message = big_bounce();
    const double mb = double(message.size()) / 1e6;
    volatile std::size_t sink = 0;

    auto measure = [&](auto&& work) {
        work();  // a warm-up round, not counted (first touches of the pages and the allocator)
        std::size_t n = 0;
        const double t0 = cpu_seconds();
        double t = 0;
        do {
            work();
            ++n;
            t = cpu_seconds() - t0;
        } while (t < 2.0);
        return double(n) * mb / t;
    };
    det::result r = det::classify(message);
    if (r.message_ids.empty() || r.message_ids.front() != "big.1@mail.example.org") {
        std::fprintf(stderr, "bench_mime_heavy: the detector did not find the original's id\n");
        return 1;
    }
    std::vector<char> copy(message.size());
    const double detector_mbs = measure([&] { sink = sink + det::classify(message).recipients.size(); });
    const double memcpy_mbs = measure([&] {
        std::memcpy(copy.data(), message.data(), message.size());
        sink = sink + std::size_t(copy[copy.size() / 2]);
    });
    std::printf("message_bytes=%zu recipients=%zu detector_mb_per_s=%.1f memcpy_mb_per_s=%.1f\n", message.size(),
                r.recipients.size(), detector_mbs, memcpy_mbs);
    std::printf("BENCH name=detector_mime_heavy value=%.1f unit=MB/s ratio=%.4f reference=memcpy-same-bytes-one-core\n",
                detector_mbs, detector_mbs / memcpy_mbs);
    return 0;
}
