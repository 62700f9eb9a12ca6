#include "ndrguard/smtp/client.hpp"

#include <algorithm>
#include <cctype>

namespace ndrguard::smtp {

namespace {

constexpr std::size_t max_reply_bytes = 64 * 1024;

char upper(char c) { return (c >= 'a' && c <= 'z') ? char(c - 32) : c; }

bool istarts_with(std::string_view s, std::string_view p) {
    if (s.size() < p.size()) return false;
    for (std::size_t i = 0; i < p.size(); ++i)
        if (upper(s[i]) != upper(p[i])) return false;
    return true;
}

// Keeps the MAIL FROM / RCPT TO parameters the next hop understands.
std::string offered_params(std::string_view params, bool size, bool body, bool dsn, bool utf8) {
    std::string out;
    while (!params.empty()) {
        std::size_t sp = params.find(' ');
        std::string_view p = params.substr(0, sp);
        params = sp == std::string_view::npos ? std::string_view() : params.substr(sp + 1);
        if (p.empty()) continue;
        bool keep = (size && istarts_with(p, "SIZE=")) || (body && istarts_with(p, "BODY=")) ||
                    (dsn && (istarts_with(p, "RET=") || istarts_with(p, "ENVID=") || istarts_with(p, "NOTIFY=") ||
                             istarts_with(p, "ORCPT="))) ||
                    (utf8 && istarts_with(p, "SMTPUTF8"));
        if (keep) out.append(" ").append(p);
    }
    return out;
}

bool requests_smtputf8(std::string_view params) {
    while (!params.empty()) {
        std::size_t sp = params.find(' ');
        std::string_view p = params.substr(0, sp);
        params = sp == std::string_view::npos ? std::string_view() : params.substr(sp + 1);
        if (p.size() == 8 && istarts_with(p, "SMTPUTF8")) return true;
    }
    return false;
}

}  // namespace

bool envelope_is_ascii(const transaction& t) {
    auto ascii = [](std::string_view s) { return std::all_of(s.begin(), s.end(), [](char c) { return (c & 0x80) == 0; }); };
    return ascii(t.mail_from) && std::all_of(t.recipients.begin(), t.recipients.end(), [&](const recipient& r) { return ascii(r.address); });
}

std::size_t parse_reply(std::string_view buffer, smtp_reply& out, bool& bad) {
    bad = false;
    out = smtp_reply{};
    std::size_t pos = 0;
    while (true) {
        std::size_t nl = buffer.find('\n', pos);
        if (nl == std::string_view::npos) {
            if (buffer.size() > max_reply_bytes) bad = true;
            return 0;
        }
        std::string_view line = buffer.substr(pos, nl - pos);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.size() < 3 || !std::all_of(line.begin(), line.begin() + 3, [](char c) { return c >= '0' && c <= '9'; }) ||
            (line.size() > 3 && line[3] != ' ' && line[3] != '-')) {
            bad = true;
            return 0;
        }
        int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
        if (out.code != 0 && code != out.code) {
            bad = true;
            return 0;
        }
        out.code = code;
        if (!out.text.empty()) out.text.push_back('\n');
        if (line.size() > 4) out.text.append(line.substr(4));
        pos = nl + 1;
        if (line.size() == 3 || line[3] == ' ') return pos;
        if (pos > max_reply_bytes) {
            bad = true;
            return 0;
        }
    }
}

std::string queue_id_of(const smtp_reply& r) {
    constexpr std::string_view marker = "queued as ";
    std::size_t p = r.text.find(marker);
    if (p == std::string::npos) return {};
    p += marker.size();
    std::size_t e = p;
    while (e < r.text.size() && (std::isalnum(static_cast<unsigned char>(r.text[e])) || r.text[e] == '_' || r.text[e] == '.'))
        ++e;
    return r.text.substr(p, e - p);
}

std::vector<std::string> xforward_lines(const std::vector<std::pair<std::string, std::string>>& attrs,
                                        std::size_t max_line) {
    std::vector<std::string> lines;
    std::string cur;
    for (const auto& [name, value] : attrs) {
        std::string item = name + "=" + value;
        if (item.size() + 11 > max_line) continue;  // cannot fit even alone: dropped, not split
        if (!cur.empty() && cur.size() + 1 + item.size() + 2 > max_line) {
            lines.push_back(cur + "\r\n");
            cur.clear();
        }
        cur += cur.empty() ? "XFORWARD " + item : " " + item;
    }
    if (!cur.empty()) lines.push_back(cur + "\r\n");
    return lines;
}

std::string dot_stuffed(std::string_view message) {
    std::string out;
    out.reserve(message.size() + message.size() / 64 + 8);
    bool line_start = true;
    for (std::size_t i = 0; i < message.size(); ++i) {
        char c = message[i];
        if (line_start && c == '.') out.push_back('.');
        if (c == '\n' && (out.empty() || out.back() != '\r')) out.push_back('\r');  // bare LF -> CRLF
        out.push_back(c);
        line_start = c == '\n';
    }
    if (!line_start) out.append("\r\n");
    out.append(".\r\n");
    return out;
}

std::string smtp_client_session::start(const transaction& txn) {
    txn_ = &txn;
    next_rcpt_ = 0;
    outcome_ = {};
    content_sent_ = false;
    if (status_ == status::connecting) return {};  // the greeting comes first
    if (status_ == status::broken || status_ == status::busy) return {};
    // Postfix's rule: a sender that asked for SMTPUTF8 with a non-ASCII address gets it or
    // nothing; the address is never sent to a next hop that cannot take it (nothing sent yet,
    // so the connection stays usable).
    if (!offers_smtputf8_ && requests_smtputf8(txn.mail_params) && !envelope_is_ascii(txn))
        return finish(status::refused, {550, "5.6.7 SMTPUTF8 is required, but was not offered by the next hop"});
    status_ = status::busy;
    xforward_pending_ = offers_xforward_ ? xforward_lines(txn.xforward) : std::vector<std::string>{};
    if (offers_pipelining_ && !txn.recipients.empty()) {
        // The whole envelope in one write; the replies come back in this order.
        std::string batch;
        awaited_.clear();
        pipelined_refusal_ = false;
        for (auto& line : xforward_pending_) {
            batch += line;
            awaited_.push_back(step::xforward);
        }
        xforward_pending_.clear();
        step_ = step::mail;
        batch += next_command();
        awaited_.push_back(step::mail);
        step_ = step::rcpt;
        for (next_rcpt_ = 0; next_rcpt_ < txn.recipients.size(); ++next_rcpt_) {
            batch += next_command();
            awaited_.push_back(step::rcpt);
        }
        step_ = step::data;
        batch += next_command();
        awaited_.push_back(step::data);
        step_ = step::pipelined;
        return batch;
    }
    step_ = xforward_pending_.empty() ? step::mail : step::xforward;
    return next_command();
}

std::string smtp_client_session::next_command() {
    const transaction& t = *txn_;
    switch (step_) {
        case step::ehlo: return "EHLO " + helo_name_ + "\r\n";
        case step::xforward: {
            std::string line = xforward_pending_.front();
            xforward_pending_.erase(xforward_pending_.begin());
            return line;
        }
        case step::mail:
            return "MAIL FROM:<" + t.mail_from + ">" +
                   offered_params(t.mail_params, offers_size_, offers_8bitmime_, offers_dsn_, offers_smtputf8_) + "\r\n";
        case step::rcpt: {
            const recipient& r = t.recipients[next_rcpt_];
            return "RCPT TO:<" + r.address + ">" + offered_params(r.params, false, false, offers_dsn_, false) + "\r\n";
        }
        case step::data: return "DATA\r\n";
        case step::content: {
            std::string content = dot_stuffed(t.message);
            content_sent_ = true;
            if (hold_final_dot_) {
                content.resize(content.size() - 3);  // ".\r\n": sent by final_dot()
                status_ = status::before_final_dot;
            }
            return content;
        }
        case step::rset: return "RSET\r\n";
        default: return {};
    }
}

std::string smtp_client_session::finish(status s, smtp_reply r) {
    status_ = s;
    outcome_ = std::move(r);
    step_ = step::none;
    return {};
}

std::string smtp_client_session::feed(std::string_view bytes) {
    input_.append(bytes);
    std::string out;
    // A refusal inside the transaction: remember it, and RSET so the connection stays usable.
    auto refuse = [&](const smtp_reply& r) {
        outcome_ = r;
        step_ = step::rset;
        out += next_command();
    };
    while (true) {
        smtp_reply r;
        bool bad = false;
        std::size_t used = parse_reply(input_, r, bad);
        if (bad) {
            finish(status::broken, smtp_reply{451, "4.3.0 malformed reply from the next hop"});
            return out;
        }
        if (used == 0) return out;
        input_.erase(0, used);

        switch (step_) {
            case step::greeting:
                if (r.code != 220) return out + finish(status::broken, r);
                step_ = step::ehlo;
                out += next_command();
                break;
            case step::ehlo: {
                if (r.code != 250) return out + finish(status::broken, r);
                have_ehlo_ = true;
                std::size_t p = 0;
                while (p <= r.text.size()) {  // one extension keyword per line
                    std::size_t e = r.text.find('\n', p);
                    std::string_view kw = std::string_view(r.text).substr(p, e == std::string::npos ? std::string::npos : e - p);
                    if (istarts_with(kw, "SIZE")) offers_size_ = true;
                    if (istarts_with(kw, "8BITMIME")) offers_8bitmime_ = true;
                    if (istarts_with(kw, "DSN")) offers_dsn_ = true;
                    if (istarts_with(kw, "SMTPUTF8")) offers_smtputf8_ = true;
                    if (istarts_with(kw, "XFORWARD")) offers_xforward_ = true;
                    if (istarts_with(kw, "PIPELINING")) offers_pipelining_ = true;
                    if (e == std::string::npos) break;
                    p = e + 1;
                }
                status_ = status::idle;
                if (txn_ != nullptr) out += start(*txn_);
                break;
            }
            case step::xforward:
                if (r.code != 250) return out + finish(status::broken, r);
                step_ = xforward_pending_.empty() ? step::mail : step::xforward;
                out += next_command();
                break;
            case step::mail:
                if (r.code != 250) {
                    refuse(r);
                    break;
                }
                step_ = step::rcpt;
                out += next_command();
                break;
            case step::rcpt:
                if (r.code != 250 && r.code != 251) {
                    refuse(r);
                    break;
                }
                if (++next_rcpt_ == txn_->recipients.size()) step_ = step::data;
                out += next_command();
                break;
            case step::data:
                if (r.code != 354) {
                    refuse(r);
                    break;
                }
                step_ = step::content;
                out += next_command();
                break;
            case step::pipelined: {
                step expected = awaited_.front();
                awaited_.erase(awaited_.begin());
                bool ok = expected == step::data ? r.code == 354
                          : expected == step::rcpt ? (r.code == 250 || r.code == 251)
                                                    : r.code == 250;
                if (!ok && !pipelined_refusal_) {
                    pipelined_refusal_ = true;
                    outcome_ = r;
                }
                if (!awaited_.empty()) break;
                if (!pipelined_refusal_) {
                    step_ = step::content;
                    out += next_command();
                } else if (r.code == 354) {
                    // DATA was accepted after a refusal: the only clean way out is to hang up.
                    must_close_ = true;
                    return out + finish(status::refused, outcome_);
                } else {
                    step_ = step::rset;
                    out += next_command();
                }
                break;
            }
            case step::content:
                return out + finish(r.code == 250 ? status::delivered : status::refused, r);
            case step::rset: {
                smtp_reply refusal = outcome_;
                if (r.code != 250) return out + finish(status::broken, refusal);
                return out + finish(status::refused, refusal);
            }
            default:
                return out + finish(status::broken, smtp_reply{451, "4.3.0 unexpected reply from the next hop"});
        }
    }
}

}  // namespace ndrguard::smtp
