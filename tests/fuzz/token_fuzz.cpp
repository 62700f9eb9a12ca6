// libFuzzer target for the release-link parser (and the admin API's query strings): any bytes
// as a token must be refused or
// accepted without crashing; bytes signed as a payload exercise the parser behind the signature;
// what verifies must survive a make/verify round trip, and base64url has one spelling per value.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ndrguard/web/release_token.hpp"
#include "ndrguard/web/url.hpp"

using namespace ndrguard::web;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const std::string secret = "fuzz-secret-0123456789abcdef0123";
    const std::int64_t now = 1795400000;
    const std::string_view input(reinterpret_cast<const char*>(data), size);

    auto as_token = verify_token(input, secret, now);
    if (as_token.error == token_error::none && verify_token(make_token(as_token.claims, secret), secret, now).claims != as_token.claims)
        std::abort();

    std::string decoded;
    if (base64url_decode(input, decoded) && base64url(decoded) != input) std::abort();

    const std::string signed_part = "v1." + base64url(input);
    const std::string token = signed_part + "." + base64url(hmac_sha256(secret, signed_part));
    auto signed_check = verify_token(token, secret, now);
    if (signed_check.error == token_error::bad_signature && token.size() <= 1024) std::abort();  // we signed it
    if (signed_check.error == token_error::none || signed_check.error == token_error::expired) {
        const token_claims& c = signed_check.claims;
        if (c.mailbox.empty() || c.mailbox.size() > 320 || c.target < 0 || c.expires_at < 0) std::abort();
        if (verify_token(make_token(c, secret), secret, now).claims != c) std::abort();
    }
    // The admin API's query strings: decoding never grows the input, and a value found
    // decodes from the input's own bytes.
    std::string plain;
    if (url_decode(input, plain) && plain.size() > input.size()) std::abort();
    if (auto v = query_value(input, "mailbox"); v && v->size() > input.size()) std::abort();
    return 0;
}
