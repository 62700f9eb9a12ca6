// libFuzzer target for the BATV parser: any bytes as an envelope recipient must verify to one of
// the four statuses without crashing, with the invariants below; and the bytes as the address
// of a tag we make must verify as valid, so parsing and signing agree on every address.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ndrguard/evidence/batv.hpp"

using namespace ndrguard::evidence;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const batv_settings settings{{{0, "fuzz-key-0"}, {5, "fuzz key five"}}, 7};
    if (size == 0) return 0;
    const std::int64_t today = 20000 + data[0];  // the first byte moves the day across a wrap
    const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);

    const batv_result r = verify_batv(input, settings, today);
    batv_tag tag;
    const bool tagged = parse_batv(input, tag);
    if (tagged != (r.status != batv_status::not_tagged)) std::abort();
    if (r.untagged.size() > input.size()) std::abort();
    if (tagged) {
        if (tag.key_number > 9 || tag.day > 999 || tag.hash.size() != 6) std::abort();
        if (tag.local_part.empty() || tag.domain.empty()) std::abort();
        if (r.untagged.size() != tag.local_part.size() + 1 + tag.domain.size()) std::abort();
    }
    bool known = false;
    for (auto t : batv_reason_tags()) known = known || t == r.reason;
    if (!known) std::abort();

    // Our own tag over the input as loc-core@domain, made today: valid.
    const std::size_t at = input.rfind('@');
    if (at != std::string_view::npos && at > 0 && at + 1 < input.size() && input.size() + 16 <= max_batv_address &&
        input.front() != '<') {
        const unsigned ddd = static_cast<unsigned>((today + 3) % 1000);
        char head[16];
        std::snprintf(head, sizeof head, "prvs=5%03u", ddd);
        const std::string address = head + prvs_hash("fuzz key five", 5, ddd, input) + "=" + std::string(input);
        const batv_result mine = verify_batv(address, settings, today);
        if (mine.status != batv_status::valid || mine.untagged != input) std::abort();
    }
    return 0;
}
