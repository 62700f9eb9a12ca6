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
    lim.refuse_malformed_recipients = size > 0 && (data[size - 1] & 1);  // before queue, or after
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
        while (s.has_message()) {
            sink = sink + s.message().message.size() + s.message().recipients.size();
            sink = sink + s.complete(accept ? "250 2.0.0 Ok: queued as X" : "451 4.3.0 try again").size();
            accept = !accept;
        }
    }
    return 0;
}
