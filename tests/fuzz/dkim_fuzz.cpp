// libFuzzer target for DKIM evidence: any bytes as a returned original (header section, and
// body after the blank line when the first byte is odd) through the header splitter, then
// libopendkim's DKIM-Signature tag parser, canonicalisation and verification with a fixed key
// for example.org; and any bytes as a key file's text. Nothing may crash, leak or run unbounded;
// no more signatures of ours are checked than the limit allows.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ndrguard/evidence/dkim.hpp"

namespace dkim = ndrguard::evidence::dkim;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // A 1024-bit RSA key made for this target (its private half was not kept).
    static const dkim::key_source keys{
        {{"example.org", "sel1",
          "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDLi3j0L8GqN+ght7q7lytwYVUPfwBZReu3me7ISIBclkLX72cxl"
          "cKXin2L+ghibCeqinVqxLHDCmos3S1RwfLMiFNFTYio9pKhl/SGb5fU4p8p5oNcsszR53WJkG717P0151nzniHLcG4t+/9USgDBOZXbU+8Y"
          "pGLevbSpnQwgPwIDAQAB"}},
        {}};
    static const std::vector<std::string> ours{"example.org"};
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    if (input.empty()) return 0;
    const bool with_body = (input[0] & 1) != 0;
    const std::string_view message = input.substr(1);
    std::size_t blank = message.find("\n\n");
    std::string_view headers = message, body;
    if (blank != std::string_view::npos) {
        headers = message.substr(0, blank + 1);
        body = message.substr(blank + 2);
    }
    dkim::limits lim;
    lim.max_signatures = 4;
    const dkim::report r = dkim::check(headers, with_body ? std::optional(body) : std::nullopt, ours, keys, lim);
    if (r.ours.size() > lim.max_signatures) std::abort();
    for (const auto& s : r.ours)
        if ((s.result == dkim::outcome::verified) != s.reason.empty()) std::abort();

    std::string error;
    auto record = dkim::key_record_from_text(message, error);
    if (record && record->size() > dkim::limits{}.max_key_record_bytes) std::abort();
    if (!record && error.empty()) std::abort();
    return 0;
}
