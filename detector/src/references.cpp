#include "references.hpp"

#include <algorithm>

#include "text.hpp"

namespace ndrguard::detector {

std::string normalize_message_id(std::string_view raw) {
    // Drop comments and folding, then take the first <...> (or the bare token holding an '@').
    std::string s;
    s.reserve(raw.size());
    int depth = 0;
    bool in_angle = false;
    bool in_quotes = false;  // a quoted local part keeps its spaces
    for (char c : raw) {
        if (c == '"' && in_angle) in_quotes = !in_quotes;
        if (in_quotes) {
            if (c != '\r' && c != '\n') s.push_back(c);
            continue;
        }
        if (c == '<') in_angle = true;
        if (c == '>') in_angle = false;
        if (!in_angle) {
            if (c == '(') { ++depth; continue; }
            if (c == ')' && depth > 0) { --depth; continue; }
        }
        if (depth > 0) continue;
        if (c == '\r' || c == '\n' || c == '\t' || c == ' ') {
            if (in_angle) continue;  // folding inside the brackets
            s.push_back(' ');
            continue;
        }
        s.push_back(c);
    }
    std::string_view v = text::trim(s);
    std::string_view id;
    bool bare = false;  // no '<': the whole value is the id
    if (std::size_t lt = v.find('<'); lt != std::string_view::npos) {
        std::size_t gt = v.find('>', lt + 1);
        id = v.substr(lt + 1, gt == std::string_view::npos ? std::string_view::npos : gt - lt - 1);
    } else if (std::size_t at = v.find('@'); at != std::string_view::npos) {
        std::size_t b = v.rfind(' ', at);
        b = b == std::string_view::npos ? 0 : b + 1;
        std::size_t e = v.find_first_of(" ;,", at);
        id = v.substr(b, e == std::string_view::npos ? std::string_view::npos : e - b);
    } else {
        id = v;
        bare = true;
    }
    id = text::trim(id);
    while (!id.empty() && (id.back() == '.' || id.back() == ',' || id.back() == ';')) id.remove_suffix(1);
    if (id.size() < 3 || id.size() > 998) return {};
    std::size_t at = id.rfind('@');
    if (at == std::string_view::npos) {
        // Broken mailers write ids without a domain ("<8A61...example.jp>", "20140913142357").
        // Kept verbatim when they are one token long enough not to be a word; the sent log
        // normalises its side with this same function, so such ids still match.
        if (id.size() < 8 || id.find_first_of(" <>\"\\()") != std::string_view::npos) return {};
        if (bare && id.find_first_of("0123456789") == std::string_view::npos)
            return {};  // a bare word, not a bracket-less id
        return std::string(id);
    }
    if (at == 0 || at + 1 == id.size()) return {};
    // A quoted local part ("a b"@x) is kept verbatim apart from the brackets.
    std::string out(id.substr(0, at + 1));
    text::append_lower(out, id.substr(at + 1));
    if (out.find_first_of("<>\"\\") != std::string::npos && out.front() != '"') return {};
    return out;
}

}  // namespace ndrguard::detector

namespace ndrguard::detector::refs {

using text::trim;

bool unique_list::add(std::string value) {
    if (value.empty()) return false;
    if (std::find(out_.begin(), out_.end(), value) != out_.end()) return false;
    if (out_.size() >= max_) {
        flags_ |= flag_too_many_references;
        return false;
    }
    out_.push_back(std::move(value));
    return true;
}

std::vector<std::string> message_ids_in(std::string_view value) {
    std::vector<std::string> ids;
    std::size_t pos = 0;
    while (true) {
        std::size_t lt = value.find('<', pos);
        if (lt == std::string_view::npos) break;
        std::size_t gt = value.find('>', lt + 1);
        if (gt == std::string_view::npos) break;
        std::string id = normalize_message_id(value.substr(lt, gt - lt + 1));
        if (!id.empty() && std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(std::move(id));
        pos = gt + 1;
    }
    if (ids.empty()) {
        std::string id = normalize_message_id(value);
        if (!id.empty()) ids.push_back(std::move(id));
    }
    return ids;
}

namespace {

bool looks_like_hostname(std::string_view h) {
    if (h.size() < 3 || h.size() > 253 || h.find('.') == std::string_view::npos) return false;
    bool has_alpha = false;
    for (char c : h) {
        if (text::is_alpha(c)) has_alpha = true;
        else if (!(text::is_digit(c) || c == '-' || c == '.' || c == '_')) return false;
    }
    return has_alpha && h.front() != '.' && h.front() != '-';
}

}  // namespace

std::vector<std::string> received_hosts(std::string_view received_value) {
    std::vector<std::string> hosts;
    std::string v = text::unfold(received_value);
    // Only the part before ';' (the date follows it).
    std::string_view s(v);
    if (std::size_t semi = s.rfind(';'); semi != std::string_view::npos) s = s.substr(0, semi);
    std::size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && text::is_space(s[i])) ++i;
        std::size_t b = i;
        while (i < s.size() && !text::is_space(s[i])) ++i;
        std::string_view word = s.substr(b, i - b);
        if (!(text::iequals(word, "from") || text::iequals(word, "by"))) continue;
        while (i < s.size() && text::is_space(s[i])) ++i;
        std::size_t hb = i;
        while (i < s.size() && !text::is_space(s[i]) && s[i] != '(' && s[i] != ';') ++i;
        std::string_view host = s.substr(hb, i - hb);
        while (!host.empty() && (host.front() == '[' || host.front() == '<')) host.remove_prefix(1);
        while (!host.empty() && (host.back() == ']' || host.back() == '>' || host.back() == '.' || host.back() == ','))
            host.remove_suffix(1);
        if (looks_like_hostname(host)) {
            std::string h = text::to_lower(host);
            if (std::find(hosts.begin(), hosts.end(), h) == hosts.end()) hosts.push_back(std::move(h));
        }
    }
    return hosts;
}

std::string_view strip_type_prefix(std::string_view value) {
    value = trim(value);
    std::size_t semi = value.find(';');
    if (semi != std::string_view::npos && semi < 16) {
        std::string_view type = trim(value.substr(0, semi));
        bool is_type = !type.empty() && std::all_of(type.begin(), type.end(), [](char c) {
            return text::is_alpha(c) || text::is_digit(c) || c == '-';
        });
        if (is_type) return trim(value.substr(semi + 1));
    }
    return value;
}

std::string status_code_in(std::string_view s) {
    // class "." subject "." detail, RFC 3463: [245].\d{1,3}.\d{1,3}, not inside a longer number.
    for (std::size_t i = 0; i + 4 < s.size(); ++i) {
        char c = s[i];
        if (c != '2' && c != '4' && c != '5') continue;
        if (i > 0 && (text::is_digit(s[i - 1]) || s[i - 1] == '.')) continue;
        if (s[i + 1] != '.') continue;
        std::size_t j = i + 2, d1 = 0;
        while (j < s.size() && text::is_digit(s[j]) && d1 < 4) { ++j; ++d1; }
        if (d1 == 0 || d1 > 3 || j >= s.size() || s[j] != '.') continue;
        std::size_t k = j + 1, d2 = 0;
        while (k < s.size() && text::is_digit(s[k]) && d2 < 4) { ++k; ++d2; }
        if (d2 == 0 || d2 > 3) continue;
        if (k < s.size() && (text::is_digit(s[k]) || (s[k] == '.' && k + 1 < s.size() && text::is_digit(s[k + 1])))) continue;
        return std::string(s.substr(i, k - i));
    }
    return {};
}

recipient_action parse_action(std::string_view value) {
    std::string_view v = trim(value);
    if (std::size_t sp = v.find_first_of(" \t("); sp != std::string_view::npos) v = v.substr(0, sp);
    if (text::iequals(v, "failed") || text::iequals(v, "failure")) return recipient_action::failed;
    if (text::iequals(v, "delayed")) return recipient_action::delayed;
    if (text::iequals(v, "delivered")) return recipient_action::delivered;
    if (text::iequals(v, "relayed")) return recipient_action::relayed;
    if (text::iequals(v, "expanded")) return recipient_action::expanded;
    return recipient_action::unknown;
}

delivery_status parse_delivery_status(std::string_view body, const limits& lim, std::uint32_t& flags) {
    delivery_status ds;
    // Fields may be folded; the blocks are header sections, so read them as one long section
    // by skipping blank lines.
    text::line_reader lines(body);
    std::string_view line;
    std::string name, value;
    auto commit = [&]() {
        if (name.empty()) return;
        std::string v = text::unfold(value);
        std::string_view val = trim(v);
        recipient_report* cur = ds.recipients.empty() ? nullptr : &ds.recipients.back();
        if (name == "reporting-mta") {
            if (ds.reporting_mta.empty()) ds.reporting_mta = std::string(strip_type_prefix(val));
        } else if (name == "arrival-date") {
            if (ds.arrival_date.empty()) ds.arrival_date = std::string(val);
        } else if (name == "original-envelope-id") {
            if (ds.original_envelope_id.empty()) ds.original_envelope_id = std::string(val);
        } else if (name == "original-message-id" || name == "x-original-message-id") {
            if (ds.original_message_id.empty()) ds.original_message_id = normalize_message_id(val);
        } else if (name == "final-recipient" || name == "original-recipient" || name == "x-actual-recipient") {
            std::string addr = text::extract_address(strip_type_prefix(val));
            bool final = name == "final-recipient";
            // A new block starts at a Final-Recipient when the current one has one already,
            // and at an Original-Recipient that follows a complete block.
            bool start_new = cur == nullptr || (final && !cur->address.empty()) ||
                             (!final && (!cur->original_address.empty() || !cur->address.empty()) &&
                              cur->action != recipient_action::unknown);
            if (start_new) {
                if (ds.recipients.size() >= lim.max_references) {
                    flags |= flag_too_many_references;
                    name.clear();
                    return;
                }
                ds.recipients.emplace_back();
                cur = &ds.recipients.back();
            }
            if (final || name == "x-actual-recipient") {
                if (cur->address.empty()) cur->address = addr;
            } else {
                cur->original_address = addr;
            }
        } else if (cur != nullptr) {
            if (name == "action") cur->action = parse_action(val);
            else if (name == "status") cur->status = status_code_in(val);
            else if (name == "diagnostic-code") cur->diagnostic = std::string(strip_type_prefix(val));
            else if (name == "remote-mta") cur->remote_mta = std::string(strip_type_prefix(val));
        }
        name.clear();
    };
    while (lines.next(line)) {
        if (line.empty() || trim(line).empty()) {
            commit();
            continue;
        }
        if ((line[0] == ' ' || line[0] == '\t') && !name.empty()) {
            value.push_back('\n');
            value.append(line);
            continue;
        }
        std::size_t colon = line.find(':');
        if (colon == std::string_view::npos || colon == 0) continue;
        std::string_view n = trim(line.substr(0, colon));
        if (n.find(' ') != std::string_view::npos) continue;
        commit();
        name = text::to_lower(n);
        value.assign(line.substr(colon + 1));
    }
    commit();
    // Drop empty blocks (an Original-Recipient with nothing else).
    ds.recipients.erase(std::remove_if(ds.recipients.begin(), ds.recipients.end(),
                                       [](const recipient_report& r) { return r.address.empty() && r.original_address.empty(); }),
                        ds.recipients.end());
    for (auto& r : ds.recipients)
        if (r.address.empty()) r.address = r.original_address;
    return ds;
}

std::string_view quoted_block::get(std::string_view name) const {
    for (const auto& [n, v] : fields)
        if (text::iequals(n, name)) return v;
    return {};
}

namespace {

struct line_shape {
    std::string_view content;  // after quote markers and indentation
    std::size_t indent = 0;
    std::size_t name_len = 0;  // > 0 when the line starts a header field
};

line_shape shape_of(std::string_view line) {
    line_shape s;
    std::size_t i = 0;
    // Quote markers ("> ", "| ") and indentation.
    while (i < line.size() && (line[i] == '>' || line[i] == '|' || line[i] == ' ' || line[i] == '\t')) ++i;
    s.indent = i;
    s.content = line.substr(i);
    std::size_t k = 0;
    while (k < s.content.size() && (text::is_alpha(s.content[k]) || text::is_digit(s.content[k]) || s.content[k] == '-' ||
                                    s.content[k] == '_'))
        ++k;
    if (k > 0 && k < 64 && k < s.content.size() && s.content[k] == ':' && text::is_alpha(s.content[0]) &&
        (k + 1 == s.content.size() || s.content[k + 1] == ' ' || s.content[k + 1] == '\t' || s.content[k + 1] == '<'))
        s.name_len = k;
    return s;
}

// Field names that tell a quoted header block from prose with a colon in it.
bool is_message_header_name(std::string_view n) {
    static constexpr std::string_view known[] = {
        "message-id", "received", "from", "to", "subject", "date", "return-path", "cc", "reply-to", "sender",
        "mime-version", "content-type", "x-mailer", "references", "in-reply-to", "delivered-to", "x-original-to",
        "dkim-signature", "user-agent", "content-transfer-encoding", "x-originating-ip", "thread-topic", "thread-index"};
    for (auto k : known)
        if (text::iequals(n, k)) return true;
    return false;
}

}  // namespace

std::vector<quoted_block> quoted_header_blocks(std::string_view text_body, std::size_t max_blocks) {
    std::vector<quoted_block> blocks;
    quoted_block cur;
    std::size_t known_fields = 0;
    bool has_id_or_received = false;
    std::string_view cur_name;
    std::string cur_value;
    std::size_t field_indent = 0;
    auto commit_field = [&]() {
        if (!cur_name.empty()) cur.fields.emplace_back(cur_name, text::unfold(cur_value));
        cur_name = {};
        cur_value.clear();
    };
    auto close_block = [&]() {
        commit_field();
        // Two known header fields, one of them an id or a Received line, make a quoted header.
        // A lone Message-ID line counts too: in a bounce's text it names the original.
        bool has_id = !cur.get("message-id").empty();
        if (((known_fields >= 2 && has_id_or_received) || has_id) && blocks.size() < max_blocks)
            blocks.push_back(std::move(cur));
        cur = quoted_block{};
        known_fields = 0;
        has_id_or_received = false;
    };
    std::size_t offset = 0;
    text::line_reader lines(text_body);
    std::string_view line;
    while (lines.next(line)) {
        std::size_t line_offset = offset;
        offset += line.size() + 1;
        line_shape s = shape_of(line);
        if (s.content.empty()) {
            close_block();
            continue;
        }
        if (s.name_len > 0) {
            std::string_view n = s.content.substr(0, s.name_len);
            bool known = is_message_header_name(n);
            if (cur.fields.empty() && cur_name.empty() && !known) continue;  // prose, not a header block
            commit_field();
            if (cur.fields.empty()) cur.offset = line_offset;
            cur_name = n;
            cur_value.assign(s.content.substr(s.name_len + 1));
            field_indent = s.indent;
            if (known) ++known_fields;
            if (text::iequals(n, "message-id") || text::iequals(n, "received")) has_id_or_received = true;
            continue;
        }
        // A continuation is indented deeper than its field (or, for unindented blocks, at all).
        if (!cur_name.empty() && s.indent > field_indent) {
            cur_value.push_back('\n');
            cur_value.push_back(' ');
            cur_value.append(s.content);
            continue;
        }
        // Message-ID on its own line after an empty "Message-ID:" (some MTAs wrap that way).
        if (!cur_name.empty() && trim(cur_value).empty() && s.content.front() == '<') {
            cur_value.append(s.content);
            continue;
        }
        close_block();
    }
    close_block();
    return blocks;
}

}  // namespace ndrguard::detector::refs
