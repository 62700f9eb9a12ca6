// The policy_service benchmark's client (policy_service.py runs it against ndrguard serve's
// policy_listen and against postgrey, on the same request stream). Each connection is a thread
// that behaves as a Postfix smtpd: one request, wait for the answer, the next one. The stream is
// deterministic: request i of connection c is stream[(c * 7919 + i) % size], half of them
// null-sender RCPTs to the storm mailbox, half ordinary mail (senders, recipients and clients
// cycling through small sets, so that postgrey sees triplets again).
// usage: bench_policy_client PORT CONNECTIONS WARMUP_SECONDS SECONDS STORM_MAILBOX
// prints: RESULT requests=N seconds=S rps=R p50_us=.. p99_us=.. p999_us=.. max_us=.. rejects=.. dunno=.. other=.. errors=..
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

using steady = std::chrono::steady_clock;

std::vector<std::string> make_stream(const std::string& storm_mailbox) {
    std::vector<std::string> out;
    for (int i = 0; i < 2000; ++i) {
        const bool bounce = i % 2 == 0;
        char buf[1024];
        std::snprintf(buf, sizeof buf,
                      "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n"
                      "client_address=198.51.%d.%d\nclient_name=mx%d.remote.example\nhelo_name=mx%d.remote.example\n"
                      "sender=%s\nrecipient=%s\nrecipient_count=0\nqueue_id=\ninstance=%x.1\nsize=0\n\n",
                      100 + i % 3, 1 + i % 200, i % 200, i % 200, bounce ? "" : ("user" + std::to_string(i % 97) + "@remote.example").c_str(),
                      bounce ? storm_mailbox.c_str() : ("rcpt" + std::to_string(i % 89) + "@example.org").c_str(), i);
        out.emplace_back(buf);
    }
    return out;
}

struct thread_result {
    std::vector<std::uint32_t> micros;  // counted requests only
    long rejects = 0, dunno = 0, other = 0, errors = 0;
};

int connect_to(int port) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return -1;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 6) {
        std::fprintf(stderr, "usage: bench_policy_client PORT CONNECTIONS WARMUP_SECONDS SECONDS STORM_MAILBOX\n");
        return 2;
    }
    const int port = std::atoi(argv[1]), conns = std::atoi(argv[2]);
    const double warmup = std::atof(argv[3]), seconds = std::atof(argv[4]);
    const auto stream = make_stream(argv[5]);
    std::vector<thread_result> results(static_cast<std::size_t>(conns));
    const auto start = steady::now();
    const auto count_from = start + std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(warmup));
    const auto end = count_from + std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(seconds));
    std::vector<std::thread> threads;
    for (int c = 0; c < conns; ++c)
        threads.emplace_back([&, c] {
            thread_result& r = results[static_cast<std::size_t>(c)];
            int fd = connect_to(port);
            std::size_t i = static_cast<std::size_t>(c) * 7919;
            char buf[4096];
            while (fd >= 0) {
                const auto t0 = steady::now();
                if (t0 >= end) break;
                const std::string& req = stream[i++ % stream.size()];
                std::string answer;
                bool ok = ::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size());
                while (ok && (answer.size() < 2 || answer.compare(answer.size() - 2, 2, "\n\n") != 0)) {
                    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
                    if (n <= 0) ok = false;
                    else answer.append(buf, static_cast<std::size_t>(n));
                }
                const auto t1 = steady::now();
                if (t0 < count_from) {
                    if (!ok) break;
                    continue;
                }
                if (!ok) {
                    ++r.errors;
                    break;
                }
                r.micros.push_back(static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::microseconds>(t1 - t0).count()));
                if (answer.rfind("action=550", 0) == 0 || answer.rfind("action=5", 0) == 0) ++r.rejects;
                else if (answer.rfind("action=DUNNO", 0) == 0 || answer.rfind("action=PREPEND", 0) == 0) ++r.dunno;
                else ++r.other;  // postgrey's DEFER_IF_PERMIT
            }
            if (fd >= 0) ::close(fd);
        });
    for (auto& t : threads) t.join();
    std::vector<std::uint32_t> all;
    thread_result sum;
    for (auto& r : results) {
        all.insert(all.end(), r.micros.begin(), r.micros.end());
        sum.rejects += r.rejects, sum.dunno += r.dunno, sum.other += r.other, sum.errors += r.errors;
    }
    std::sort(all.begin(), all.end());
    auto pct = [&](double p) { return all.empty() ? 0u : all[std::min(all.size() - 1, static_cast<std::size_t>(p * static_cast<double>(all.size())))]; };
    std::printf("RESULT requests=%zu seconds=%.2f rps=%.0f p50_us=%u p99_us=%u p999_us=%u max_us=%u rejects=%ld dunno=%ld other=%ld errors=%ld\n",
                all.size(), seconds, static_cast<double>(all.size()) / seconds, pct(0.50), pct(0.99), pct(0.999),
                all.empty() ? 0u : all.back(), sum.rejects, sum.dunno, sum.other, sum.errors);
    return sum.errors > 0 || all.empty() ? 1 : 0;
}
