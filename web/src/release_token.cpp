#include "ndrguard/web/release_token.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <fcntl.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <stdexcept>

namespace ndrguard::web {

namespace {

constexpr std::size_t max_token = 1024;
constexpr std::size_t max_mailbox = 320;
constexpr std::string_view version = "v1";
constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

bool parse_int(std::string_view s, std::int64_t& out) {
    if (s.empty() || s.size() > 19) return false;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size() && out >= 0;
}

}  // namespace

std::string_view to_string(token_action a) {
    switch (a) {
        case token_action::release: return "release";
        case token_action::release_storm: return "release_storm";
        case token_action::list: return "list";
    }
    return "list";
}

std::string_view to_string(token_error e) {
    switch (e) {
        case token_error::none: return "none";
        case token_error::malformed: return "malformed";
        case token_error::bad_signature: return "bad_signature";
        case token_error::expired: return "expired";
    }
    return "malformed";
}

std::string hmac_sha256(std::string_view key, std::string_view message) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(message.data()),
         message.size(), out, &len);
    return std::string(reinterpret_cast<const char*>(out), len);
}

std::string base64url(std::string_view bytes) {
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 2 < bytes.size(); i += 3) {
        const unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                           static_cast<unsigned char>(bytes[i + 2]);
        for (int shift : {18, 12, 6, 0}) out.push_back(alphabet[(v >> shift) & 63]);
    }
    if (i + 1 == bytes.size()) {
        const unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
        out.push_back(alphabet[(v >> 18) & 63]);
        out.push_back(alphabet[(v >> 12) & 63]);
    } else if (i + 2 == bytes.size()) {
        const unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8);
        out.push_back(alphabet[(v >> 18) & 63]);
        out.push_back(alphabet[(v >> 12) & 63]);
        out.push_back(alphabet[(v >> 6) & 63]);
    }
    return out;
}

bool base64url_decode(std::string_view text, std::string& out) {
    out.clear();
    if (text.size() % 4 == 1) return false;
    unsigned acc = 0;
    int bits = 0;
    for (char c : text) {
        int v = c >= 'A' && c <= 'Z' ? c - 'A' : c >= 'a' && c <= 'z' ? c - 'a' + 26 : c >= '0' && c <= '9' ? c - '0' + 52
              : c == '-' ? 62 : c == '_' ? 63 : -1;
        if (v < 0) return false;
        acc = (acc << 6) | static_cast<unsigned>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((acc >> bits) & 0xff));
        }
    }
    // Leftover bits must be zero: one text per byte string, so a token cannot be re-spelled.
    return (acc & ((1u << bits) - 1)) == 0;
}

std::string load_or_create_secret(const std::string& path) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
        unsigned char raw[32];
        if (RAND_bytes(raw, sizeof raw) != 1) {
            ::close(fd);
            ::unlink(path.c_str());
            throw std::runtime_error("no random bytes for the secret " + path);
        }
        static const char digits[] = "0123456789abcdef";
        std::string text;
        for (unsigned char b : raw) {
            text.push_back(digits[b >> 4]);
            text.push_back(digits[b & 15]);
        }
        text.push_back('\n');
        const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
        ::close(fd);
        if (!written) {
            ::unlink(path.c_str());
            throw std::runtime_error("cannot write the secret " + path + ": " + std::strerror(errno));
        }
    } else if (errno != EEXIST) {
        throw std::runtime_error("cannot create the secret " + path + ": " + std::strerror(errno));
    }
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error("cannot read the secret " + path + ": " + std::strerror(errno));
    struct stat st {};
    ::fstat(fd, &st);
    char buf[256];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    ::close(fd);
    if ((st.st_mode & 077) != 0)
        throw std::runtime_error("the secret " + path + " must be readable by its owner only (chmod 600 " + path + ")");
    std::string secret(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
    while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r' || secret.back() == ' ')) secret.pop_back();
    if (secret.size() < 32) throw std::runtime_error("the secret " + path + " is too short (want at least 32 characters)");
    return secret;
}

std::string make_token(const token_claims& c, std::string_view secret) {
    std::string payload = std::string(to_string(c.action)) + "\n" + std::to_string(c.target) + "\n" +
                          std::to_string(c.expires_at) + "\n" + c.mailbox.substr(0, max_mailbox);
    std::string signed_part = std::string(version) + "." + base64url(payload);
    return signed_part + "." + base64url(hmac_sha256(secret, signed_part));
}

token_check verify_token(std::string_view token, std::string_view secret, std::int64_t now) {
    token_check result;
    if (token.size() > max_token || token.substr(0, version.size() + 1) != std::string(version) + ".") return result;
    const std::size_t last_dot = token.rfind('.');
    if (last_dot <= version.size()) return result;
    const std::string_view signed_part = token.substr(0, last_dot);
    std::string mac;
    if (!base64url_decode(token.substr(last_dot + 1), mac) || mac.size() != 32) return result;
    // Constant time: how much of a forged signature is right must not show in the timing.
    const std::string expected = hmac_sha256(secret, signed_part);
    if (CRYPTO_memcmp(expected.data(), mac.data(), 32) != 0) {
        result.error = token_error::bad_signature;
        return result;
    }
    // Signed by us: still parsed with care (a format change must not crash an old reader).
    std::string payload;
    if (!base64url_decode(signed_part.substr(version.size() + 1), payload)) return result;
    std::string_view rest = payload;
    std::string_view fields[3];
    for (auto& f : fields) {
        const std::size_t nl = rest.find('\n');
        if (nl == std::string_view::npos) return result;
        f = rest.substr(0, nl);
        rest.remove_prefix(nl + 1);
    }
    token_claims c;
    if (fields[0] == "release") c.action = token_action::release;
    else if (fields[0] == "release_storm") c.action = token_action::release_storm;
    else if (fields[0] == "list") c.action = token_action::list;
    else return result;
    if (!parse_int(fields[1], c.target) || !parse_int(fields[2], c.expires_at) || rest.empty() || rest.size() > max_mailbox)
        return result;
    c.mailbox = std::string(rest);
    result.claims = c;
    result.error = now >= c.expires_at ? token_error::expired : token_error::none;
    return result;
}

std::string signed_link(std::string_view base_url, const token_claims& c, std::string_view secret) {
    const char* path = c.action == token_action::release         ? "/release/"
                       : c.action == token_action::release_storm ? "/release-storm/"
                                                                 : "/held/";
    return std::string(base_url) + path + make_token(c, secret);
}

}  // namespace ndrguard::web
