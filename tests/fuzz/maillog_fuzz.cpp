// libFuzzer target for the mail log reader (backfill/maillog.hpp): the input is split at '\n'
// into lines fed to the joiner, with small bounds so that eviction and the length limit are
// reached. Invariants: nothing crashes; what parses has its views inside the line; the open
// queue ids never exceed the bound; every line is counted once; outbound ids are bounded.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "ndrguard/backfill/maillog.hpp"

namespace bf = ndrguard::backfill;

namespace {

bool inside(std::string_view part, std::string_view whole) {
    return part.empty() || (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    bf::limits lim;
    lim.max_line = 512;
    lim.max_open = 4;
    lim.max_recipients = 3;
    lim.max_message_id = 64;
    lim.max_inbound_ids = 4;
    const bf::clock_context clock{bf::time_point(std::chrono::seconds(1795400000)), std::chrono::seconds(3600)};
    bf::joiner join([](std::string_view a) { return a.substr(0, 4) == "127."; }, clock, lim);
    std::vector<bf::outbound> out;
    std::uint64_t lines = 0;
    std::size_t start = 0;
    while (start <= input.size()) {
        std::size_t nl = input.find('\n', start);
        if (nl == std::string_view::npos) nl = input.size();
        const std::string_view line = input.substr(start, nl - start);
        bf::skip_reason why{};
        if (auto l = bf::parse_line(line, clock, lim, why)) {
            if (!inside(l->program, line) || !inside(l->queue_id, line) || !inside(l->value, line)) std::abort();
            if (l->queue_id.size() > 20) std::abort();
        } else if (static_cast<std::size_t>(why) >= static_cast<std::size_t>(bf::skip_reason::count_)) {
            std::abort();
        }
        join.feed(line, out);
        ++lines;
        if (join.open() > lim.max_open) std::abort();
        start = nl + 1;
    }
    join.finish(out);
    if (join.open() != 0 || join.counts().lines != lines) std::abort();
    for (const auto& m : out)
        if (m.message_id.empty() || m.message_id.size() > lim.max_message_id || m.recipients.empty() ||
            m.recipients.size() > lim.max_recipients)
            std::abort();
    if (join.counts().outbound != out.size()) std::abort();
    return 0;
}
