// libFuzzer target over the policy protocol's reader (policy/request.hpp): the input is cut into
// reads at lengths the input chooses (1..16 bytes) and also fed whole. Small limits make every
// bound reachable. Checked on every input: the same requests and the same error whatever the
// reads' boundaries; what the reader holds never exceeds max_line_bytes; no request has more
// lines than max_attributes, and no value holds a newline or a NUL; after an error nothing more
// is read.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "ndrguard/policy/request.hpp"

namespace {

using ndrguard::policy::policy_request;
using ndrguard::policy::request_error;
using ndrguard::policy::request_reader;

struct run {
    std::vector<policy_request> requests;
    request_error error = request_error::none;
};

bool same(const policy_request& a, const policy_request& b) {
    return a.request == b.request && a.protocol_state == b.protocol_state && a.queue_id == b.queue_id && a.sender == b.sender &&
           a.recipient == b.recipient && a.client_address == b.client_address && a.client_name == b.client_name &&
           a.helo_name == b.helo_name && a.instance == b.instance && a.has_sender == b.has_sender &&
           a.has_recipient == b.has_recipient && a.has_request == b.has_request && a.attributes == b.attributes;
}

bool clean(const std::string& v) { return v.find('\n') == std::string::npos && v.find('\0') == std::string::npos; }

run read(std::string_view in, bool chunked) {
    ndrguard::policy::request_limits lim;
    lim.max_line_bytes = 64;
    lim.max_attributes = 8;
    lim.max_request_bytes = 256;
    request_reader reader(lim);
    run r;
    std::size_t pos = 0;
    while (pos < in.size()) {
        const std::size_t len = chunked ? 1 + static_cast<unsigned char>(in[pos]) % 16 : in.size();
        const bool ok = reader.feed(in.substr(pos, len), r.requests);
        pos += len;
        if (reader.held_bytes() > lim.max_line_bytes) __builtin_trap();
        if (!ok) {
            std::vector<policy_request> more;
            if (reader.feed("request=smtpd_access_policy\n\n", more) || !more.empty()) std::abort();  // stays stopped
            break;
        }
    }
    r.error = reader.error();
    for (const auto& q : r.requests) {
        if (q.attributes == 0 || q.attributes > lim.max_attributes) std::abort();
        for (const std::string* v : {&q.request, &q.protocol_state, &q.queue_id, &q.sender, &q.recipient, &q.client_address,
                                     &q.client_name, &q.helo_name, &q.instance})
            if (!clean(*v) || v->size() > lim.max_line_bytes) std::abort();
    }
    return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    const run pieces = read(in, true);
    const run whole = read(in, false);
    if (pieces.error != whole.error || pieces.requests.size() != whole.requests.size()) std::abort();
    for (std::size_t i = 0; i < pieces.requests.size(); ++i)
        if (!same(pieces.requests[i], whole.requests[i])) std::abort();
    return 0;
}
