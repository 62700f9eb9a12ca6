// libFuzzer target over the detector's entry points: classify() with and without a null
// envelope sender, under the default limits and under tiny ones (so every "limit hit" path
// is reached on small inputs), and the mbox splitter.
#include <ndrguard/detector/detector.hpp>
#include <ndrguard/detector/mbox.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace nd = ndrguard::detector;

static nd::limits tiny_limits() {
    nd::limits lim;
    lim.max_message_bytes = 4096;
    lim.max_header_bytes = 512;
    lim.max_header_fields = 8;
    lim.max_mime_depth = 3;
    lim.max_mime_parts = 6;
    lim.max_text_bytes = 256;
    lim.max_decoded_bytes = 1024;
    lim.max_references = 2;
    return lim;
}

// Touch every output so the sanitizers see each string the detector built.
static std::size_t consume(const nd::result& r) {
    std::size_t n = nd::to_string(r.klass).size() + r.reporting_mta.size() + r.subject.size() +
                    r.original_from.size() + r.original_subject.size() + r.arrival_date.size();
    for (const auto& id : r.message_ids) n += id.size();
    for (const auto& rcpt : r.recipients)
        n += rcpt.address.size() + rcpt.status.size() + rcpt.diagnostic.size() +
             nd::to_string(rcpt.action).size();
    for (const auto& h : r.received_hosts) n += h.size();
    for (auto reason : r.reasons) n += reason.size();
    for (auto name : nd::flag_names(r.flags)) n += name.size();
    return n;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view message(reinterpret_cast<const char*>(data), size);
    static const nd::limits tiny = tiny_limits();

    volatile std::size_t sink = 0;
    sink = sink + consume(nd::classify(message));
    sink = sink + consume(nd::classify(message, nd::envelope{std::string()}, tiny));
    for (auto part : nd::split_mbox(message, 16)) sink = sink + part.size();
    // The streaming splitter gives split_mbox's messages (cut to its bound), whatever the
    // chunks (their sizes from the input's first byte).
    if (nd::looks_like_mbox(message)) {
        auto expected = nd::split_mbox(message);
        const std::size_t chunk = 1 + (size ? data[0] % 7 : 0), cap = 64;
        std::size_t n = 0;
        nd::mbox_stream stream(cap);
        auto check = [&](std::string_view m, std::size_t full) {
            if (n >= expected.size() || m != expected[n].substr(0, cap) || full != expected[n].size()) __builtin_trap();
            ++n;
        };
        for (std::size_t i = 0; i < message.size(); i += chunk) stream.feed(message.substr(i, chunk), check);
        stream.finish(check);
        if (n != expected.size()) __builtin_trap();
    }
    sink = sink + nd::normalize_message_id(message.substr(0, 512)).size();
    return 0;
}
