// DKIM verification of our own domains' signatures with libopendkim (see dkim.hpp for why
// libopendkim and how header-only input verifies).
#include "ndrguard/evidence/dkim.hpp"

#include "ndrguard/detector/ascii.hpp"

#include <sys/types.h>  // u_char, which opendkim/dkim.h uses without including it

// dkim.h is C99 and names _Bool, which C++ spells bool (the same type in the x86-64 and
// AArch64 ABIs); defined only around the include.
#define _Bool bool
#include <opendkim/dkim.h>
#undef _Bool

#include <algorithm>
#include <cstring>
#include <memory>
#include <new>

namespace ndrguard::evidence::dkim {
namespace {

std::string lower(std::string_view s) { return detector::ascii::to_lower(s); }

bool is_ours(std::string_view domain, const std::vector<std::string>& ours) {
    for (const std::string& o : ours)
        if (detector::ascii::within_domain(domain, o)) return true;
    return false;
}

// LF or CRLF in, CRLF out (DKIM hashes CRLF lines; the detector hands over LF).
std::string to_crlf(std::string_view in) {
    std::string out;
    out.reserve(in.size() + in.size() / 16);
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r')) out.push_back('\r');
        out.push_back(in[i]);
    }
    return out;
}

// The header section's fields, each with its folds and without its final CRLF. Stops at the
// blank line, at max_header_fields, or at a line that is neither a field nor a continuation.
std::vector<std::string_view> split_fields(std::string_view crlf, const limits& lim, bool& cut) {
    std::vector<std::string_view> fields;
    std::size_t pos = 0;
    std::size_t start = std::string_view::npos;
    std::size_t last_end = 0;  // where the line before this one ends (its CRLF not included)
    while (pos < crlf.size()) {
        std::size_t eol = crlf.find("\r\n", pos);
        if (eol == std::string_view::npos) eol = crlf.size();
        std::string_view line = crlf.substr(pos, eol - pos);
        const bool continuation = !line.empty() && (line[0] == ' ' || line[0] == '\t');
        if (!continuation && start != std::string_view::npos) {
            fields.push_back(crlf.substr(start, last_end - start));
            start = std::string_view::npos;
        }
        if (line.empty()) return fields;
        if (!continuation) {
            const std::size_t colon = line.find(':');
            if (colon == std::string_view::npos || colon == 0) return fields;  // body, not header
            if (fields.size() >= lim.max_header_fields) {
                cut = true;
                return fields;
            }
            start = pos;
        }
        last_end = eol;
        pos = eol + 2;
    }
    if (start != std::string_view::npos) fields.push_back(crlf.substr(start, last_end - start));
    return fields;
}

struct context {
    const std::vector<std::string>* ours;
    const key_source* keys;
    const limits* lim;
    std::size_t others = 0;
    bool limit_hit = false;
    std::vector<std::string> oversized_keys;  // "selector._domainkey.domain" of keys refused for size
};

context& context_of(DKIM* d) { return *static_cast<context*>(dkim_get_user_context(d)); }

std::string sig_domain(DKIM_SIGINFO* sig) {
    const unsigned char* d = dkim_sig_getdomain(sig);
    return d == nullptr ? std::string() : lower(reinterpret_cast<const char*>(d));
}

std::string sig_selector(DKIM_SIGINFO* sig) {
    const unsigned char* s = dkim_sig_getselector(sig);
    return s == nullptr ? std::string() : lower(reinterpret_cast<const char*>(s));
}

// Before any key is fetched: signatures of other domains, and ours past the bound, are ignored.
DKIM_CBSTAT prescreen(DKIM* d, DKIM_SIGINFO** sigs, int nsigs) {
    context& cx = context_of(d);
    std::size_t kept = 0;
    for (int i = 0; i < nsigs; ++i) {
        if (!is_ours(sig_domain(sigs[i]), *cx.ours)) {
            ++cx.others;
            dkim_sig_ignore(sigs[i]);
        } else if (kept >= cx.lim->max_signatures) {
            cx.limit_hit = true;
            dkim_sig_ignore(sigs[i]);
        } else {
            ++kept;
        }
    }
    return DKIM_CBSTAT_CONTINUE;
}

DKIM_CBSTAT key_lookup(DKIM* d, DKIM_SIGINFO* sig, u_char* buf, size_t buflen) {
    context& cx = context_of(d);
    const std::string domain = sig_domain(sig);
    const std::string selector = sig_selector(sig);
    if (!is_ours(domain, *cx.ours)) return DKIM_CBSTAT_NOTFOUND;  // prescreen ignored it already
    std::optional<std::string> record;
    for (const key_entry& k : cx.keys->keys)
        if (k.domain == domain && k.selector == selector) {
            record = k.record;
            break;
        }
    const std::string name = selector + "._domainkey." + domain;
    if (!record && cx.keys->dns_txt) record = cx.keys->dns_txt(name);
    if (!record) return DKIM_CBSTAT_NOTFOUND;
    // libopendkim's buffer is 1 KiB (a 4096-bit RSA key's record fits, an 8192-bit one does not).
    if (record->size() > cx.lim->max_key_record_bytes || record->size() + 1 > buflen) {
        cx.oversized_keys.push_back(name);
        return DKIM_CBSTAT_NOTFOUND;  // (an error here would stop dkim_eoh for every signature)
    }
    std::memcpy(buf, record->data(), record->size());
    buf[record->size()] = '\0';
    return DKIM_CBSTAT_CONTINUE;
}

std::string_view failure_reason(int sigerror) {
    switch (sigerror) {
    case DKIM_SIGERROR_BADSIG:
        return "header_hash";
    case DKIM_SIGERROR_NOKEY:
    case DKIM_SIGERROR_KEYFAIL:
        return "no_key";
    case DKIM_SIGERROR_EXPIRED:
        return "expired";
    case DKIM_SIGERROR_DNSSYNTAX:
    case DKIM_SIGERROR_MULTIREPLY:
    case DKIM_SIGERROR_KEYVERSION:
    case DKIM_SIGERROR_KEYUNKNOWNHASH:
    case DKIM_SIGERROR_KEYHASHMISMATCH:
    case DKIM_SIGERROR_NOTEMAILKEY:
    case DKIM_SIGERROR_KEYTYPEMISSING:
    case DKIM_SIGERROR_KEYTYPEUNKNOWN:
    case DKIM_SIGERROR_KEYREVOKED:
    case DKIM_SIGERROR_KEYDECODE:
    case DKIM_SIGERROR_KEYTOOSMALL:
        return "bad_key";
    default:
        return "bad_signature";
    }
}

struct lib_closer {
    void operator()(DKIM_LIB* l) const { dkim_close(l); }
};
struct handle_closer {
    void operator()(DKIM* d) const { dkim_free(d); }
};

}  // namespace

std::string_view to_string(outcome o) { return o == outcome::verified ? "verified" : "failed"; }

bool report::verified() const {
    return std::any_of(ours.begin(), ours.end(), [](const signature_check& s) { return s.result == outcome::verified; });
}

report check(std::string_view headers, std::optional<std::string_view> body, const std::vector<std::string>& our_domains,
             const key_source& keys, const limits& lim) {
    report r;
    if (headers.size() > lim.max_header_bytes) {
        headers = headers.substr(0, lim.max_header_bytes);
        const std::size_t last_line = headers.rfind('\n');  // a field cut in two is dropped
        headers = headers.substr(0, last_line == std::string_view::npos ? 0 : last_line + 1);
        r.limit_hit = true;
    }
    if (body && body->size() > lim.max_body_bytes) {
        body.reset();  // too long to hash here: the header hash is still checked
        r.limit_hit = true;
    }
    const std::string section = to_crlf(headers);
    const std::vector<std::string_view> fields = split_fields(section, lim, r.limit_hit);
    // Nothing to do (and no library handle) when no field is a DKIM-Signature.
    const bool any = std::any_of(fields.begin(), fields.end(), [](std::string_view f) {
        return f.size() > 15 && lower(f.substr(0, 15)) == "dkim-signature:";
    });
    if (!any) return r;

    std::unique_ptr<DKIM_LIB, lib_closer> lib(dkim_init(nullptr, nullptr));
    if (!lib) throw std::bad_alloc();
    dkim_set_prescreen(lib.get(), prescreen);
    dkim_set_key_lookup(lib.get(), key_lookup);
    DKIM_STAT status = DKIM_STAT_OK;
    std::unique_ptr<DKIM, handle_closer> d(
        dkim_verify(lib.get(), reinterpret_cast<const unsigned char*>("ndrguard"), nullptr, &status));
    if (!d) throw std::bad_alloc();
    context cx{&our_domains, &keys, &lim, 0, false, {}};
    dkim_set_user_context(d.get(), &cx);

    std::string field;
    for (std::string_view f : fields) {
        field.assign(f);  // libopendkim takes a mutable buffer
        dkim_header(d.get(), reinterpret_cast<u_char*>(field.data()), field.size());
    }
    status = dkim_eoh(d.get());
    if (status == DKIM_STAT_OK && body) {
        std::string b = to_crlf(*body);
        dkim_body(d.get(), reinterpret_cast<u_char*>(b.data()), b.size());
    }
    if (status == DKIM_STAT_OK) {
        bool testkey = false;
        dkim_eom(d.get(), &testkey);
    }
    r.other_signatures = cx.others;
    r.limit_hit = r.limit_hit || cx.limit_hit;

    DKIM_SIGINFO** sigs = nullptr;
    int nsigs = 0;
    if (dkim_getsiglist(d.get(), &sigs, &nsigs) != DKIM_STAT_OK) return r;
    for (int i = 0; i < nsigs; ++i) {
        const unsigned int flags = dkim_sig_getflags(sigs[i]);
        if ((flags & DKIM_SIGFLAG_IGNORE) != 0) continue;
        signature_check c;
        c.domain = sig_domain(sigs[i]);
        c.selector = sig_selector(sigs[i]);
        if (!is_ours(c.domain, our_domains)) continue;
        if ((flags & DKIM_SIGFLAG_PASSED) != 0) {
            // The header hash verified. Without the body, bh= cannot be compared (it mismatches
            // the empty body libopendkim saw); with it, it must match.
            c.body_checked = body.has_value();
            const bool body_ok = !body || dkim_sig_getbh(sigs[i]) == DKIM_SIGBH_MATCH;
            c.result = body_ok ? outcome::verified : outcome::failed;
            c.reason = body_ok ? "" : "body_hash";
        } else {
            c.result = outcome::failed;
            c.reason = failure_reason(dkim_sig_geterror(sigs[i]));
            const std::string name = c.selector + "._domainkey." + c.domain;
            if (std::find(cx.oversized_keys.begin(), cx.oversized_keys.end(), name) != cx.oversized_keys.end())
                c.reason = "bad_key";
        }
        r.ours.push_back(std::move(c));
    }
    return r;
}

}  // namespace ndrguard::evidence::dkim
