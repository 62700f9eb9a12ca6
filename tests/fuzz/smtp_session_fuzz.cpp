// libFuzzer target over the SMTP server session: the input is cut into chunks at bytes chosen
// by the input itself, so that every split of a command or of the end-of-data dot is tried;
// each finished message is answered, alternately accepted and refused. Small limits make every
// limit path reachable.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ndrguard/filter/smtp_server.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    ndrguard::filter::server_limits lim;
    lim.max_line_bytes = 128;
    lim.max_message_bytes = 2048;
    lim.max_recipients = 4;
    lim.max_pending_bytes = 256;
    lim.max_errors = 8;
    ndrguard::filter::smtp_server_session s("fuzz.example", lim);
    volatile std::size_t sink = s.greeting().size();
    bool accept = true;
    std::size_t pos = 0;
    while (pos < in.size() && !s.closed()) {
        // Chunk length from the data itself: 1..16 bytes.
        std::size_t len = 1 + static_cast<unsigned char>(in[pos]) % 16;
        std::string_view chunk = in.substr(pos, len);
        pos += len;
        sink = sink + s.feed(chunk).size();
        // The memory cap's API: a message dropped mid-DATA (452 at its dot), and the bound on
        // what a message may hold (grown by a quarter at a time).
        if (static_cast<unsigned char>(chunk.front()) >= 0xF8) s.drop_message("452 4.3.1 Insufficient system storage");
        if (s.content_bytes() > lim.max_message_bytes + lim.max_message_bytes / 4 + (64u << 10) + 64) __builtin_trap();
        while (s.has_message()) {
            sink = sink + s.message().message.size() + s.message().recipients.size();
            if (accept) sink = sink + s.take_content().size();
            sink = sink + s.complete(accept ? "250 2.0.0 Ok: queued as X" : "451 4.3.0 try again").size();
            accept = !accept;
        }
    }
    return 0;
}
