// libFuzzer target for the returned trace: any bytes as a header section must be read within
// the limits, giving only tags of the fixed set, with the findings consistent with the tags.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "ndrguard/evidence/trace.hpp"

using namespace ndrguard::evidence;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const trace_settings settings{{"mail.example.org", "192.0.2.10", "relay*.example.org"}, {"example.org"}};
    trace_limits limits;
    limits.max_received = 20;
    limits.max_field_bytes = 4096;
    const std::string_view input(reinterpret_cast<const char*>(data), size);

    const trace_evidence e = read_trace(input, settings, limits);
    if (e.hops.size() > limits.max_received) std::abort();
    for (const auto& hop : e.hops)
        for (const auto* s : {&hop.from_helo, &hop.from_name, &hop.from_ip, &hop.by})
            if (s->size() > limits.max_field_bytes) std::abort();
    const auto& known = trace_reason_tags();
    for (auto tag : e.reasons)
        if (std::find(known.begin(), known.end(), tag) == known.end()) std::abort();
    if (e.our_relay && e.foreign_origin) std::abort();
    const std::size_t expected = std::size_t{e.our_relay} + e.spf_fail + e.dmarc_fail + e.foreign_origin + e.truncated;
    if (e.reasons.size() != expected) std::abort();

    // One Received value alone, and the glob on the input's two halves (bounded: hosts <= 255).
    const received_hop hop = parse_received(input.substr(0, limits.max_field_bytes));
    if (hop.by.size() > input.size() || hop.from_helo.size() > input.size()) std::abort();
    const std::string_view head = input.substr(0, std::min<std::size_t>(input.size() / 2, 64));
    const std::string_view tail = input.substr(head.size(), 255);
    (void)host_glob_match(head, tail);
    return 0;
}
