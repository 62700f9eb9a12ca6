#include "ndrguard/smtp/server.hpp"

#include "ndrguard/detector/ascii.hpp"

#include <algorithm>

#include "ndrguard/detector/utf8.hpp"
#include "ndrguard/smtp/replies.hpp"

namespace ndrguard::smtp {

namespace {

using detector::ascii::iequals;

bool istarts_with(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

std::string reply(std::string_view text) { return std::string(text) + "\r\n"; }

// "FROM:<a@b> SIZE=1" after the verb -> address and parameters. The brackets may be
// preceded by spaces (some clients) and may be missing (bare address, as Postfix allows).
bool parse_path(std::string_view arg, std::string_view keyword, std::string& address, std::string& params) {
    arg = trim(arg);
    if (!istarts_with(arg, keyword)) return false;
    arg = trim(arg.substr(keyword.size()));
    if (arg.empty()) return false;
    if (arg.front() == '<') {
        std::size_t gt = arg.find('>');
        if (gt == std::string_view::npos) return false;
        address.assign(arg.substr(1, gt - 1));
        params.assign(trim(arg.substr(gt + 1)));
    } else {
        std::size_t sp = arg.find(' ');
        address.assign(arg.substr(0, sp));
        params.assign(sp == std::string_view::npos ? std::string_view() : trim(arg.substr(sp + 1)));
    }
    return address.find_first_of("<> \t\r\n") == std::string::npos;
}

// The SIZE=n parameter of MAIL FROM, if any and well-formed.
bool declared_size(std::string_view params, std::size_t& size) {
    while (!params.empty()) {
        std::size_t sp = params.find(' ');
        std::string_view p = params.substr(0, sp);
        params = sp == std::string_view::npos ? std::string_view() : trim(params.substr(sp + 1));
        if (!istarts_with(p, "SIZE=")) continue;
        std::string_view digits = p.substr(5);
        if (digits.empty() || digits.size() > 18) return false;
        size = 0;
        for (char c : digits) {
            if (c < '0' || c > '9') return false;
            size = size * 10 + std::size_t(c - '0');
        }
        return true;
    }
    return false;
}

}  // namespace

bool well_formed_address(std::string_view address) {
    return detector::valid_utf8(address) && address.find('\0') == std::string_view::npos;
}

namespace {

// The attributes of Postfix's XFORWARD_README.
constexpr std::string_view xforward_names[] = {"NAME", "ADDR", "PORT", "PROTO", "HELO", "IDENT", "SOURCE"};

}  // namespace

smtp_server_session::smtp_server_session(std::string hostname, server_limits limits)
    : hostname_(std::move(hostname)), limits_(limits) {}

std::string smtp_server_session::greeting() const { return reply(render(reply_id::greeting, hostname_)); }

void smtp_server_session::reset_transaction() {
    have_mail_ = false;
    message_too_big_ = false;
    drop_reply_.clear();
    txn_.mail_from.clear();
    txn_.mail_params.clear();
    txn_.recipients.clear();
    txn_.message.clear();
    if (txn_.message.capacity() > (1u << 20)) txn_.message.shrink_to_fit();  // give a big buffer back
}

void smtp_server_session::drop_message(std::string reply_line) {
    if (state_ != state::data) return;
    message_too_big_ = true;
    drop_reply_ = std::move(reply_line);
    txn_.message.clear();
    txn_.message.shrink_to_fit();  // (moving an empty string in would keep the buffer)
}

// Room for `more` bytes: grown by a quarter at a time, not doubled, so that a large message
// holds at most a quarter more than its size (content_bytes() is what it is charged).
// (A new string: libstdc++'s reserve() would double the capacity anyway.)
static void reserve_for(std::string& s, std::size_t more) {
    if (s.size() + more <= s.capacity()) return;
    std::string bigger;
    bigger.reserve(std::max(s.size() + more, s.size() + std::max<std::size_t>(s.size() / 4, 64u << 10)));
    bigger.append(s);
    s.swap(bigger);
}

std::string smtp_server_session::feed(std::string_view bytes) {
    if (state_ == state::closed) return {};
    if (state_ == state::deciding) {
        // Held until complete(); a client that pipelines more than this is not a Postfix.
        if (input_.size() + bytes.size() > limits_.max_pending_bytes) overflow_ = true;
        else input_.append(bytes);
        return {};
    }
    input_.append(bytes);
    return process();
}

std::string smtp_server_session::complete(std::string_view answer) {
    if (state_ != state::deciding) return {};
    std::string out = reply(answer);
    reset_transaction();
    state_ = state::command;
    if (overflow_) {
        state_ = state::closed;
        return out + reply(render(reply_id::too_much_pipelined_input, hostname_));
    }
    return out + process();
}

std::string smtp_server_session::process() {
    std::string out;
    while (state_ == state::command || state_ == state::data) {
        std::size_t nl = input_.find('\n', consumed_);
        if (nl == std::string::npos) {
            std::size_t pending = input_.size() - consumed_;
            if (state_ == state::command && discarding_line_) {
                consumed_ = input_.size();  // still inside the over-long line answered already
            } else if (state_ == state::command && pending > limits_.max_line_bytes) {
                // No end in sight: answer now, then skip to the end of this line.
                out += reply(render(reply_id::line_too_long));
                discarding_line_ = true;
                consumed_ = input_.size();
                if (++errors_ > limits_.max_errors) break;
            } else if (state_ == state::data && pending > limits_.max_line_bytes) {
                // A long data line is content, not a command: take what we have as the
                // middle of the line so the buffer stays bounded. A CR at the end stays unread:
                // it may be the first half of the line's CRLF (taken now, the LF of the next
                // read would end the line with an extra CR).
                std::string_view chunk(input_.data() + consumed_, pending);
                if (chunk.back() == '\r') chunk.remove_suffix(1);
                consumed_ += chunk.size();
                if (!data_mid_line_ && chunk.front() == '.') chunk.remove_prefix(1);
                append_content(chunk, false);
                data_mid_line_ = true;
            }
            break;
        }
        std::string_view line(input_.data() + consumed_, nl - consumed_);
        consumed_ = nl + 1;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (state_ == state::command) {
            if (discarding_line_) {
                discarding_line_ = false;
                continue;
            }
            if (line.size() + 2 > limits_.max_line_bytes) {
                out += reply(render(reply_id::line_too_long));
                ++errors_;
            } else {
                out += handle_command(line);
            }
            if (errors_ > limits_.max_errors && state_ != state::closed) break;
        } else {
            out += handle_data_line(line);
        }
    }
    if (errors_ > limits_.max_errors && state_ != state::closed) {
        out += reply(render(reply_id::too_many_errors, hostname_));
        state_ = state::closed;
    }
    // Drop what was read, keeping the buffer as small as the unread part.
    input_.erase(0, consumed_);
    consumed_ = 0;
    return out;
}

// `text` is content without its line end; a CR in it is a bare CR (the CR of a CRLF was
// taken off), written as CRLF as a bare LF is: the message has no bare CR or LF, whatever the
// client sent (a bare CR is a line end to some readers and not to others, DKIM included). It
// is content only: what follows it is never read as a dot or an end of data.
void smtp_server_session::append_content(std::string_view text, bool end_of_line) {
    if (message_too_big_) return;
    const std::size_t bare_crs = static_cast<std::size_t>(std::count(text.begin(), text.end(), '\r'));
    if (txn_.message.size() + text.size() + bare_crs + (end_of_line ? 2 : 0) > limits_.max_message_bytes) {
        message_too_big_ = true;
        txn_.message.clear();
        txn_.message.shrink_to_fit();
        return;
    }
    reserve_for(txn_.message, text.size() + bare_crs + 2);
    if (bare_crs == 0) {
        txn_.message.append(text);
    } else {
        for (char c : text) {
            txn_.message.push_back(c);
            if (c == '\r') txn_.message.push_back('\n');
        }
    }
    if (end_of_line) txn_.message.append("\r\n");
}

std::string smtp_server_session::handle_data_line(std::string_view line) {
    if (data_mid_line_) {  // the end of a line whose start was taken already
        data_mid_line_ = false;
        append_content(line, true);
        return {};
    }
    if (line == ".") {
        if (message_too_big_) {
            std::string answer = drop_reply_.empty() ? render(reply_id::message_too_big) : drop_reply_;
            reset_transaction();
            state_ = state::command;
            return reply(answer);
        }
        state_ = state::deciding;
        return {};
    }
    if (!line.empty() && line.front() == '.') line.remove_prefix(1);  // RFC 5321 4.5.2
    append_content(line, true);
    return {};
}

std::string smtp_server_session::handle_command(std::string_view line) {
    std::size_t sp = line.find(' ');
    std::string_view verb = line.substr(0, sp);
    std::string_view arg = sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);
    auto bad = [&](std::string_view text) {
        ++errors_;
        return reply(text);
    };

    if (iequals(verb, "EHLO") || iequals(verb, "HELO")) {
        if (trim(arg).empty()) return bad(render(iequals(verb, "EHLO") ? reply_id::ehlo_syntax : reply_id::helo_syntax));
        reset_transaction();
        have_helo_ = true;
        txn_.helo.assign(trim(arg));
        txn_.esmtp = iequals(verb, "EHLO");
        if (!txn_.esmtp) return reply(render(reply_id::helo_ok, hostname_));
        // SMTPUTF8 (RFC 6531): Postfix hands a UTF-8 envelope only to a filter that offers it;
        // addresses pass through byte for byte, the parameter on to a next hop that offers it.
        return std::to_string(reply_of(reply_id::ehlo_ok).code) + "-" + hostname_ + "\r\n250-PIPELINING\r\n250-SIZE " + std::to_string(limits_.max_message_bytes) +
               "\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n"
               "250 XFORWARD NAME ADDR PROTO HELO SOURCE PORT IDENT\r\n";
    }
    if (iequals(verb, "MAIL")) {
        if (!have_helo_) return bad(render(reply_id::need_helo));
        if (have_mail_) return bad(render(reply_id::nested_mail));
        std::string address, params;
        if (!parse_path(arg, "FROM:", address, params)) return bad(render(reply_id::mail_syntax));
        std::size_t size = 0;
        if (declared_size(params, size) && size > limits_.max_message_bytes)
            return reply(render(reply_id::size_exceeds_limit));
        txn_.mail_from = std::move(address);
        txn_.mail_params = std::move(params);
        have_mail_ = true;
        return reply(render(reply_id::mail_ok));
    }
    if (iequals(verb, "RCPT")) {
        if (!have_mail_) return bad(render(reply_id::need_mail));
        std::string address, params;
        if (!parse_path(arg, "TO:", address, params)) return bad(render(reply_id::rcpt_syntax));
        if (address.empty()) return bad(render(reply_id::bad_recipient_address));
        if (limits_.refuse_malformed_recipients && !well_formed_address(address))
            return bad(render(reply_id::bad_recipient_address));  // Postfix's, for a malformed address
        if (txn_.recipients.size() >= limits_.max_recipients) return reply(render(reply_id::too_many_recipients));
        txn_.recipients.push_back({std::move(address), std::move(params)});
        return reply(render(reply_id::rcpt_ok));
    }
    if (iequals(verb, "DATA")) {
        if (!trim(arg).empty()) return bad(render(reply_id::data_syntax));
        if (!have_mail_) return bad(render(reply_id::need_mail));
        if (txn_.recipients.empty()) return bad(render(reply_id::need_rcpt));
        state_ = state::data;
        return reply(render(reply_id::data_go_ahead));
    }
    if (iequals(verb, "RSET")) {
        reset_transaction();
        return reply(render(reply_id::ok));
    }
    if (iequals(verb, "NOOP")) return reply(render(reply_id::ok));
    if (iequals(verb, "QUIT")) {
        state_ = state::closed;
        return reply(render(reply_id::bye));
    }
    if (iequals(verb, "XFORWARD")) {
        if (have_mail_) return bad(render(reply_id::xforward_in_transaction));
        std::string_view rest = trim(arg);
        if (rest.empty()) return bad(render(reply_id::xforward_syntax));
        std::vector<std::pair<std::string, std::string>> attrs;
        while (!rest.empty()) {
            std::size_t end = rest.find(' ');
            std::string_view item = rest.substr(0, end);
            rest = end == std::string_view::npos ? std::string_view() : trim(rest.substr(end + 1));
            std::size_t eq = item.find('=');
            std::string_view name = item.substr(0, eq);
            if (eq == std::string_view::npos ||
                std::none_of(std::begin(xforward_names), std::end(xforward_names), [&](std::string_view n) { return iequals(n, name); }))
                return bad(render(reply_id::xforward_bad_attribute, {}, name.substr(0, 64)));
            std::string upper(name);
            for (char& c : upper) c = (c >= 'a' && c <= 'z') ? char(c - 32) : c;
            attrs.emplace_back(std::move(upper), std::string(item.substr(eq + 1)));
        }
        for (auto& attr : attrs) {
            auto it = std::find_if(txn_.xforward.begin(), txn_.xforward.end(),
                                   [&](const auto& kv) { return kv.first == attr.first; });
            if (it != txn_.xforward.end()) it->second = std::move(attr.second);
            else txn_.xforward.push_back(std::move(attr));
        }
        return reply(render(reply_id::ok));
    }
    if (iequals(verb, "VRFY")) return reply(render(reply_id::vrfy_disabled));
    if (trim(line).empty()) return bad(render(reply_id::bad_syntax));
    return bad(render(reply_id::unknown_command));
}

}  // namespace ndrguard::smtp
