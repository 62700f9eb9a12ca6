// libFuzzer target for the digest's encoders: any bytes (a subject or a reporting MTA from a
// bounce) as an RFC 2047 header text and as a quoted-printable body must come out within line
// limits and decode back, with the detector's own decoders, to what went in (invalid UTF-8 in
// a header becomes U+FFFD).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "mime.hpp"
#include "ndrguard/digest/encode.hpp"

namespace {

bool lines_within(std::string_view s, std::size_t max) {
    std::size_t start = 0;
    for (std::size_t i = 0; i < s.size(); ++i)
        if (s[i] == '\n') {
            if (i == 0 || s[i - 1] != '\r' || i - 1 - start > max) return false;
            start = i + 1;
        }
    return s.size() - start <= max;
}

std::string without_crlf(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i)
        if (!(s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n')) out += s[i];
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    namespace dg = ndrguard::digest;
    namespace mime = ndrguard::detector::mime;

    // Quoted-printable: lines of at most 76, and the same text back (CR LF pairs are line ends
    // on the way in, and the decoder gives LF: compare without them).
    const std::string qp = dg::quoted_printable(input);
    if (!lines_within(qp, 76)) std::abort();
    std::uint32_t flags = 0;
    std::string lf_input = without_crlf(input);
    if (mime::decode_quoted_printable(without_crlf(qp), flags) != lf_input) std::abort();

    // Header text: printable ASCII that could not be misread stays as it is; anything else is
    // encoded words in lines of at most 78 (with "Subject: ") that decode back.
    if (size > 2000) return 0;
    const std::string header = dg::encode_header_text(input, 9);
    if (!lines_within("Subject: " + header, header == input ? 998 + 9 : 78)) std::abort();
    std::string unfolded;
    for (char c : header)
        if (c != '\r' && c != '\n') unfolded += c;
    if (header != input) {
        if (mime::decode_rfc2047(unfolded) != dg::valid_utf8(input)) std::abort();
    } else if (unfolded != input) {
        std::abort();
    }
    if (dg::valid_utf8(dg::valid_utf8(input)) != dg::valid_utf8(input)) std::abort();
    return 0;
}
