// Keys for DKIM evidence: key files (PEM or DKIM TXT text) and DNS TXT records with a bound
// on time. The file and DNS reads are here, apart from the verification in dkim.cpp.
#include "ndrguard/evidence/dkim.hpp"

#include "ndrguard/detector/ascii.hpp"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <resolv.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace ndrguard::evidence::dkim {
namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
        s.remove_suffix(1);
    return s;
}

bool is_base64(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/' ||
           c == '=';
}

std::string lower(std::string_view s) { return detector::ascii::to_lower(s); }

}  // namespace

std::optional<std::string> key_record_from_text(std::string_view text, std::string& error, std::size_t max_bytes) {
    if (text.size() > 4 * max_bytes) {
        error = "key text too long";
        return std::nullopt;
    }
    std::string record;
    static constexpr std::string_view begin = "-----BEGIN PUBLIC KEY-----";
    static constexpr std::string_view end = "-----END PUBLIC KEY-----";
    if (std::size_t b = text.find(begin); b != std::string_view::npos) {
        // A PEM SubjectPublicKeyInfo is what p= holds, base64 without the armour.
        const std::size_t from = b + begin.size();
        const std::size_t e = text.find(end, from);
        if (e == std::string_view::npos) {
            error = "PEM key without its END line";
            return std::nullopt;
        }
        std::string p;
        for (char c : text.substr(from, e - from)) {
            if (is_base64(c)) p.push_back(c);
            else if (c != '\n' && c != '\r' && c != ' ' && c != '\t') {
                error = "PEM key with a character that is not base64";
                return std::nullopt;
            }
        }
        record = "v=DKIM1; k=rsa; p=" + p;
    } else if (text.find("-----BEGIN") != std::string_view::npos) {
        error = "only a PEM \"PUBLIC KEY\" (SubjectPublicKeyInfo) is read, e.g. `openssl rsa -pubout`";
        return std::nullopt;
    } else if (text.find('"') != std::string_view::npos) {
        // A zone-file line (opendkim-genkey's .txt): the quoted strings, joined.
        std::size_t pos = 0;
        while ((pos = text.find('"', pos)) != std::string_view::npos) {
            const std::size_t close = text.find('"', pos + 1);
            if (close == std::string_view::npos) {
                error = "unterminated quoted string";
                return std::nullopt;
            }
            record.append(text.substr(pos + 1, close - pos - 1));
            pos = close + 1;
        }
    } else {
        record = std::string(trim(text));
    }
    if (record.find("p=") == std::string::npos) {
        error = "no p= tag: not a DKIM key record";
        return std::nullopt;
    }
    if (record.size() > max_bytes) {
        error = "key record longer than " + std::to_string(max_bytes) + " bytes";
        return std::nullopt;
    }
    return record;
}

std::vector<key_entry> load_key_entries(std::string_view setting) {
    std::vector<key_entry> out;
    std::size_t pos = 0;
    while (pos <= setting.size()) {
        std::size_t comma = setting.find(',', pos);
        if (comma == std::string_view::npos) comma = setting.size();
        const std::string_view entry = trim(setting.substr(pos, comma - pos));
        pos = comma + 1;
        if (entry.empty()) continue;
        const std::size_t c1 = entry.find(':');
        const std::size_t c2 = c1 == std::string_view::npos ? c1 : entry.find(':', c1 + 1);
        if (c2 == std::string_view::npos || c1 == 0 || c2 == c1 + 1 || c2 + 1 >= entry.size())
            throw std::runtime_error("dkim_keys: \"" + std::string(entry) + "\" is not DOMAIN:SELECTOR:FILE");
        const std::string file(entry.substr(c2 + 1));
        std::ifstream in(file, std::ios::binary);
        if (!in) throw std::runtime_error("dkim_keys: cannot read " + file + ": " + std::strerror(errno));
        std::string text(64u << 10, '\0');  // a key file is small; more is not a key file
        in.read(text.data(), std::streamsize(text.size()));
        text.resize(std::size_t(in.gcount()));
        std::string error;
        std::optional<std::string> record = key_record_from_text(text, error);
        if (!record) throw std::runtime_error("dkim_keys: " + file + ": " + error);
        out.push_back({lower(entry.substr(0, c1)), lower(entry.substr(c1 + 1, c2 - c1 - 1)), std::move(*record)});
    }
    return out;
}

std::optional<std::string> dns_txt_lookup(const std::string& name, const dns_options& options) {
    struct __res_state state;
    std::memset(&state, 0, sizeof state);
    if (res_ninit(&state) != 0) return std::nullopt;
    state.retrans = options.timeout_seconds;
    state.retry = options.tries;
    if (!options.server.empty()) {
        sockaddr_in server{};
        server.sin_family = AF_INET;
        server.sin_port = htons(options.port);
        if (inet_pton(AF_INET, options.server.c_str(), &server.sin_addr) != 1) {
            res_nclose(&state);
            return std::nullopt;
        }
        state.nsaddr_list[0] = server;
        state.nscount = 1;
    }
    unsigned char answer[4096];
    const int len = res_nquery(&state, name.c_str(), ns_c_in, ns_t_txt, answer, sizeof answer);
    std::optional<std::string> out;
    ns_msg msg;
    if (len > 0 && ns_initparse(answer, len, &msg) == 0) {
        const int count = ns_msg_count(msg, ns_s_an);
        for (int i = 0; i < count && !out; ++i) {
            ns_rr rr;
            if (ns_parserr(&msg, ns_s_an, i, &rr) != 0 || ns_rr_type(rr) != ns_t_txt) continue;
            // A TXT record is one or more <length><bytes> strings: joined, as DKIM says.
            const unsigned char* p = ns_rr_rdata(rr);
            const unsigned char* e = p + ns_rr_rdlen(rr);
            std::string text;
            while (p < e) {
                const std::size_t n = *p++;
                if (n > std::size_t(e - p)) break;
                text.append(reinterpret_cast<const char*>(p), n);
                p += n;
            }
            out = std::move(text);
        }
    }
    res_nclose(&state);
    return out;
}

}  // namespace ndrguard::evidence::dkim
