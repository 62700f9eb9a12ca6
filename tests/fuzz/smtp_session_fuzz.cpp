// libFuzzer target over the SMTP server session: the input is cut into chunks at bytes chosen
// by the input itself, so that every split of a command or of the end-of-data dot is tried;
// each finished message is answered, alternately accepted and refused. Small limits make every
// limit path reachable. Checked on every input: a message never holds a bare CR or a bare LF
// (both are written as CRLF), and the session's replies and messages are the same whatever the
// reads' boundaries (the input fed at once must give the same).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "ndrguard/smtp/server.hpp"

namespace {

struct run {
    std::string replies;
    std::vector<std::string> messages;
    bool dropped = false;  // a message was dropped mid-DATA
};

bool has_bare_cr_or_lf(const std::string& m) {
    for (std::size_t i = 0; i < m.size(); ++i) {
        if (m[i] == '\r' && (i + 1 == m.size() || m[i + 1] != '\n')) return true;
        if (m[i] == '\n' && (i == 0 || m[i - 1] != '\r')) return true;
    }
    return false;
}

// chunked: chunk lengths from the data itself (1..16 bytes, the length byte fed too);
// otherwise everything at once.
run session(std::string_view in, bool chunked) {
    ndrguard::smtp::server_limits lim;
    lim.max_line_bytes = 128;
    lim.max_message_bytes = 2048;
    lim.max_recipients = 4;
    lim.max_pending_bytes = 256;
    lim.max_errors = 8;
    lim.refuse_malformed_recipients = !in.empty() && (in.back() & 1);  // before queue, or after
    ndrguard::smtp::smtp_server_session s("fuzz.example", lim);
    run r;
    r.replies = s.greeting();
    bool accept = true;
    std::size_t pos = 0;
    while (pos < in.size() && !s.closed()) {
        std::size_t len = chunked ? 1 + static_cast<unsigned char>(in[pos]) % 16 : in.size();
        std::string_view chunk = in.substr(pos, len);
        pos += len;
        r.replies += s.feed(chunk);
        // The memory cap's API: a message dropped mid-DATA (452 at its dot), and the bound on
        // what a message may hold (grown by a quarter at a time). Only in pieces: a drop depends
        // on where the reads fall, so such a run is not compared with the whole one.
        if (chunked && static_cast<unsigned char>(chunk.front()) >= 0xF8) {
            s.drop_message("452 4.3.1 Insufficient system storage");
            r.dropped = true;
        }
        if (s.content_bytes() > lim.max_message_bytes + lim.max_message_bytes / 4 + (64u << 10) + 64) __builtin_trap();
        while (s.has_message()) {  // answered at once, so nothing waits on the answer
            r.messages.push_back(s.message().message);
            if (has_bare_cr_or_lf(r.messages.back())) std::abort();
            if (accept && s.take_content() != r.messages.back()) std::abort();
            r.replies += s.complete(accept ? "250 2.0.0 Ok: queued as X" : "451 4.3.0 try again");
            accept = !accept;
        }
    }
    return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    const run pieces = session(in, true);
    const run whole = session(in, false);
    if (!pieces.dropped && (pieces.messages != whole.messages || pieces.replies != whole.replies)) std::abort();
    return 0;
}
