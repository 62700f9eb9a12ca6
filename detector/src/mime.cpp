#include "mime.hpp"

#include <iconv.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include "text.hpp"

namespace ndrguard::detector::mime {

using text::iequals;
using text::trim;

std::string_view header_section::get(std::string_view name) const {
    for (const auto& f : fields)
        if (iequals(f.name, name)) return f.value;
    return {};
}

bool header_section::has(std::string_view name) const {
    for (const auto& f : fields)
        if (iequals(f.name, name)) return true;
    return false;
}

namespace {

bool is_field_name_char(char c) { return c > 32 && c < 127 && c != ':'; }

// Length of the field name if `line` starts a header field ("Name:" or "Name :"), else 0.
std::size_t field_name_length(std::string_view line) {
    std::size_t i = 0;
    while (i < line.size() && is_field_name_char(line[i])) ++i;
    if (i == 0) return 0;
    std::size_t name_end = i;
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    return (i < line.size() && line[i] == ':') ? name_end : 0;
}

}  // namespace

namespace {

// True when `line` is "name=value" and the field above ends with ';': a parameter whose
// folding whitespace was lost.
bool continues_parameter_list(const header_section& h, std::string_view line) {
    if (h.fields.empty() || trim(h.fields.back().value).empty() || trim(h.fields.back().value).back() != ';')
        return false;
    std::size_t i = 0;
    while (i < line.size() && (text::is_alpha(line[i]) || (line[i] >= '0' && line[i] <= '9') || line[i] == '-' ||
                               line[i] == '_' || line[i] == '*'))
        ++i;
    return i > 0 && i < line.size() && line[i] == '=';
}

}  // namespace

header_section parse_header_section(std::string_view entity, const limits& lim, std::uint32_t& flags) {
    header_section h;
    std::size_t pos = 0;
    const std::size_t n = entity.size();
    // An mbox separator line, and the common "From address date" variant without a colon.
    if (entity.substr(0, 5) == "From " || entity.substr(0, 6) == ">From ") {
        std::size_t nl = entity.find('\n');
        pos = nl == std::string_view::npos ? n : nl + 1;
    }
    bool over = false;
    while (pos < n) {
        std::size_t nl = entity.find('\n', pos);
        std::size_t end = nl == std::string_view::npos ? n : nl;
        std::string_view line = entity.substr(pos, end - pos);
        std::size_t next = nl == std::string_view::npos ? n : nl + 1;
        if (line.empty()) {  // the blank line that ends the section
            h.body = entity.substr(next);
            return h;
        }
        if (end > lim.max_header_bytes && !over) {  // this line ends past the bound
            flags |= flag_header_too_large;
            over = true;
        }
        if (line[0] == ' ' || line[0] == '\t') {
            if (!over && !h.fields.empty()) {
                auto& last = h.fields.back();
                last.value = std::string_view(last.value.data(), std::size_t(entity.data() + end - last.value.data()));
            } else if (h.fields.empty()) {
                flags |= flag_malformed_header;
            }
            pos = next;
            continue;
        }
        std::size_t name_len = field_name_length(line);
        if (name_len == 0 && !over && continues_parameter_list(h, line)) {
            // "Content-Type: multipart/alternative;\nboundary=..." with the fold's space lost
            // (Verizon, Apache James): the parameter belongs to the field above.
            auto& last = h.fields.back();
            last.value = std::string_view(last.value.data(), std::size_t(entity.data() + end - last.value.data()));
            pos = next;
            continue;
        }
        if (name_len == 0) {
            // Not a field: the header ended without its blank line; this is body.
            flags |= flag_malformed_header;
            h.body = entity.substr(pos);
            return h;
        }
        if (!over) {
            if (h.fields.size() >= lim.max_header_fields) {
                flags |= flag_too_many_header_fields;
                over = true;
            } else {
                std::size_t colon = line.find(':', name_len);
                std::string_view value = line.substr(colon + 1);
                h.fields.push_back({line.substr(0, name_len), value});
            }
        }
        pos = next;
    }
    h.body = {};
    return h;
}

namespace {

// Splits "a; b=c; d=\"e;f\"" into its parameters, after the leading token.
void parse_params(std::string_view v, std::vector<std::pair<std::string, std::string>>& out) {
    std::size_t i = 0;
    while (i < v.size()) {
        while (i < v.size() && (v[i] == ';' || text::is_space(v[i]))) ++i;
        std::size_t name_start = i;
        while (i < v.size() && v[i] != '=' && v[i] != ';') ++i;
        std::string name = text::to_lower(trim(v.substr(name_start, i - name_start)));
        std::string value;
        if (i < v.size() && v[i] == '=') {
            ++i;
            while (i < v.size() && text::is_space(v[i])) ++i;
            if (i < v.size() && v[i] == '"') {
                ++i;
                while (i < v.size() && v[i] != '"') {
                    if (v[i] == '\\' && i + 1 < v.size()) ++i;
                    value.push_back(v[i]);
                    ++i;
                }
                if (i < v.size()) ++i;  // closing quote
                while (i < v.size() && v[i] != ';') ++i;
            } else {
                std::size_t vs = i;
                while (i < v.size() && v[i] != ';') ++i;
                value = std::string(trim(v.substr(vs, i - vs)));
            }
        }
        if (name.empty()) continue;
        // RFC 2231: name*=charset'lang'%XX and name*0=, name*1= continuations.
        if (std::size_t star = name.find('*'); star != std::string::npos) {
            bool extended = name.back() == '*';
            std::string base = name.substr(0, star);
            if (extended) {
                if (std::size_t q1 = value.find('\''); q1 != std::string::npos) {
                    std::size_t q2 = value.find('\'', q1 + 1);
                    if (q2 != std::string::npos && std::string_view(name).substr(star) != "*1*") value.erase(0, q2 + 1);
                }
                std::string decoded;
                for (std::size_t k = 0; k < value.size(); ++k) {
                    if (value[k] == '%' && k + 2 < value.size() + 0 && text::hex_value(value[k + 1]) >= 0 && text::hex_value(value[k + 2]) >= 0) {
                        decoded.push_back(char(text::hex_value(value[k + 1]) * 16 + text::hex_value(value[k + 2])));
                        k += 2;
                    } else {
                        decoded.push_back(value[k]);
                    }
                }
                value = std::move(decoded);
            }
            auto it = std::find_if(out.begin(), out.end(), [&](auto& p) { return p.first == base; });
            if (it != out.end()) it->second += value;
            else out.emplace_back(std::move(base), std::move(value));
            continue;
        }
        out.emplace_back(std::move(name), std::move(value));
    }
}

std::string strip_comments_simple(std::string_view v) {
    std::string out;
    int depth = 0;
    bool quoted = false;
    for (char c : v) {
        if (quoted) {
            out.push_back(c);
            if (c == '"') quoted = false;
            continue;
        }
        if (c == '"' && depth == 0) { quoted = true; out.push_back(c); continue; }
        if (c == '(') { ++depth; continue; }
        if (c == ')' && depth > 0) { --depth; continue; }
        if (depth == 0) out.push_back(c);
    }
    return out;
}

}  // namespace

content_type parse_content_type(std::string_view raw_value) {
    content_type ct;
    std::string v = strip_comments_simple(text::unfold(raw_value));
    std::string_view s = trim(v);
    std::size_t semi = s.find(';');
    std::string_view token = trim(s.substr(0, semi));
    std::size_t slash = token.find('/');
    if (slash != std::string_view::npos && slash > 0 && slash + 1 < token.size()) {
        ct.type = text::to_lower(trim(token.substr(0, slash)));
        ct.subtype = text::to_lower(trim(token.substr(slash + 1)));
    } else if (text::iequals(token, "text")) {
        ct.type = "text";  // "Content-Type: text" seen from old MTAs
    }
    if (semi != std::string_view::npos) parse_params(s.substr(semi + 1), ct.params);
    return ct;
}

std::string content_type::param(std::string_view name) const {
    for (const auto& [k, v] : params)
        if (k == name) return v;
    return {};
}

std::string header_param(std::string_view raw_value, std::string_view name) {
    std::string v = text::unfold(raw_value);
    std::size_t semi = v.find(';');
    if (semi == std::string::npos) return {};
    std::vector<std::pair<std::string, std::string>> params;
    parse_params(std::string_view(v).substr(semi + 1), params);
    for (auto& [k, val] : params)
        if (k == name) return val;
    return {};
}

// ---------------------------------------------------------------- transfer encodings

std::string decode_base64(std::string_view in, std::uint32_t& flags) {
    static const auto table = [] {
        std::array<signed char, 256> t{};
        t.fill(-1);
        const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(a[i])] = static_cast<signed char>(i);
        return t;
    }();
    std::string out;
    out.reserve(in.size() / 4 * 3 + 3);
    std::uint32_t acc = 0;
    int bits = 0;
    bool junk = false;
    for (char c : in) {
        signed char d = table[static_cast<unsigned char>(c)];
        if (d < 0) {
            if (c == '=') { bits = 0; acc = 0; continue; }  // padding: realign for concatenated blobs
            if (!text::is_space(c)) junk = true;
            continue;
        }
        acc = (acc << 6) | std::uint32_t(d);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(char((acc >> bits) & 0xff));
        }
    }
    if (junk) flags |= flag_bad_encoding;
    return out;
}

std::string decode_quoted_printable(std::string_view in, std::uint32_t& flags) {
    std::string out;
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        char c = in[i];
        if (c != '=') { out.push_back(c); continue; }
        // Soft line break: '=' then optional trailing white space, then LF.
        std::size_t j = i + 1;
        while (j < in.size() && (in[j] == ' ' || in[j] == '\t')) ++j;
        if (j < in.size() && in[j] == '\n') { i = j; continue; }
        if (j >= in.size()) { i = j; continue; }
        if (i + 2 < in.size() + 0 && text::hex_value(in[i + 1]) >= 0 && text::hex_value(in[i + 2]) >= 0) {
            out.push_back(char(text::hex_value(in[i + 1]) * 16 + text::hex_value(in[i + 2])));
            i += 2;
            continue;
        }
        flags |= flag_bad_encoding;
        out.push_back(c);
    }
    return out;
}

// ---------------------------------------------------------------- charsets and RFC 2047

namespace {


// windows-1252's 0x80-0x9f block; the rest is ISO-8859-1.
constexpr std::uint16_t cp1252_high[32] = {
    0x20AC, 0x81, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x8D, 0x017D, 0x8F,
    0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D, 0x017E, 0x0178};

std::string normalize_charset(std::string_view cs) {
    std::string c = text::to_lower(trim(cs));
    if (std::size_t star = c.find('*'); star != std::string::npos) c.resize(star);  // RFC 2231 language
    return c;
}

}  // namespace

std::string to_utf8(std::string_view bytes, std::string_view charset) {
    std::string cs = normalize_charset(charset);
    bool ascii = std::all_of(bytes.begin(), bytes.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
    if (cs.empty() || cs == "utf-8" || cs == "utf8" || cs == "us-ascii" || cs == "ascii" ||
        (ascii && cs.find("iso-2022") == std::string::npos && cs.find("utf-16") == std::string::npos &&
         cs.find("utf-7") == std::string::npos))
        return std::string(bytes);
    if (cs == "iso-8859-1" || cs == "latin1" || cs == "windows-1252" || cs == "cp1252") {
        std::string out;
        out.reserve(bytes.size() + bytes.size() / 4);
        for (char ch : bytes) {
            auto b = static_cast<unsigned char>(ch);
            if (b >= 0x80 && b < 0xa0 && cs != "iso-8859-1" && cs != "latin1") text::append_utf8(out, cp1252_high[b - 0x80]);
            else text::append_utf8(out, b);
        }
        return out;
    }
    iconv_t cd = iconv_open("UTF-8", cs.c_str());
    if (cd == reinterpret_cast<iconv_t>(-1)) return std::string(bytes);
    std::string out(bytes.size() * 4 + 16, '\0');
    char* in_ptr = const_cast<char*>(bytes.data());
    std::size_t in_left = bytes.size();
    char* out_ptr = out.data();
    std::size_t out_left = out.size();
    while (in_left > 0) {
        if (iconv(cd, &in_ptr, &in_left, &out_ptr, &out_left) != static_cast<std::size_t>(-1)) break;
        if (errno == E2BIG || in_left == 0) break;
        // Invalid or incomplete sequence: replace one byte and go on.
        ++in_ptr;
        --in_left;
        if (out_left >= 3) {
            std::memcpy(out_ptr, "\xef\xbf\xbd", 3);
            out_ptr += 3;
            out_left -= 3;
        }
    }
    iconv(cd, nullptr, nullptr, &out_ptr, &out_left);  // flush shift state (ISO-2022-JP)
    iconv_close(cd);
    out.resize(out.size() - out_left);
    return out;
}

std::string decode_rfc2047(std::string_view value) {
    std::string in = text::unfold(value);
    if (in.find("=?") == std::string::npos) return in;
    std::string out;
    std::size_t i = 0;
    bool last_was_word = false;
    std::size_t pending_space_start = std::string::npos;
    while (i < in.size()) {
        std::size_t start = in.find("=?", i);
        if (start == std::string::npos) {
            out.append(in, i, std::string::npos);
            break;
        }
        // =?charset?enc?text?=
        std::size_t q1 = in.find('?', start + 2);
        std::size_t q2 = q1 == std::string::npos ? q1 : in.find('?', q1 + 1);
        std::size_t end = q2 == std::string::npos ? q2 : in.find("?=", q2 + 1);
        if (end == std::string::npos || q2 != q1 + 2) {
            out.append(in, i, start + 2 - i);
            i = start + 2;
            last_was_word = false;
            continue;
        }
        std::string_view between(in.data() + i, start - i);
        // White space between two adjacent encoded words is dropped (RFC 2047 6.2).
        bool only_space = std::all_of(between.begin(), between.end(), [](char c) { return c == ' ' || c == '\t'; });
        if (!(last_was_word && only_space)) out.append(between);
        (void)pending_space_start;
        std::string_view charset(in.data() + start + 2, q1 - start - 2);
        char enc = text::lower(in[q1 + 1]);
        std::string_view payload(in.data() + q2 + 1, end - q2 - 1);
        std::uint32_t ignored = 0;
        std::string raw;
        if (enc == 'b') {
            raw = decode_base64(payload, ignored);
        } else if (enc == 'q') {
            std::string q(payload);
            std::replace(q.begin(), q.end(), '_', ' ');
            raw = decode_quoted_printable(q, ignored);
        } else {
            out.append(in, start, end + 2 - start);
            i = end + 2;
            last_was_word = false;
            continue;
        }
        out += to_utf8(raw, charset);
        i = end + 2;
        last_was_word = true;
    }
    return out;
}

std::string html_to_text(std::string_view html) {
    std::string out;
    out.reserve(html.size());
    std::size_t i = 0;
    while (i < html.size()) {
        char c = html[i];
        if (c == '<') {
            std::size_t end = html.find('>', i + 1);
            if (end == std::string_view::npos) break;
            std::string_view tag = html.substr(i + 1, end - i - 1);
            if (!tag.empty() && tag[0] == '/') tag.remove_prefix(1);
            auto is = [&](std::string_view t) {
                return text::istarts_with(tag, t) && (tag.size() == t.size() || !text::is_alpha(tag[t.size()]));
            };
            if (is("br") || is("p") || is("div") || is("tr") || is("li") || is("h1") || is("h2") || is("h3") ||
                is("pre") || is("table"))
                out.push_back('\n');
            // Skip style and script bodies: they are not text.
            if (is("style") || is("script")) {
                std::string closing = std::string("</") + text::to_lower(tag.substr(0, is("style") ? 5 : 6));
                std::size_t close = text::ifind(html, closing, end + 1);
                end = close == std::string_view::npos ? html.size() - 1 : html.find('>', close);
                if (end == std::string_view::npos) break;
            }
            i = end + 1;
            continue;
        }
        if (c == '&') {
            static const std::pair<std::string_view, std::string_view> entities[] = {
                {"&lt;", "<"}, {"&gt;", ">"}, {"&amp;", "&"}, {"&quot;", "\""}, {"&nbsp;", " "}, {"&#39;", "'"}, {"&#64;", "@"}};
            bool matched = false;
            for (auto& [name, repl] : entities) {
                if (text::istarts_with(html.substr(i), name)) {
                    out.append(repl);
                    i += name.size();
                    matched = true;
                    break;
                }
            }
            if (matched) continue;
        }
        out.push_back(c);
        ++i;
    }
    return out;
}

// ---------------------------------------------------------------- the walk

mime_document::mime_document(std::string_view message, const limits& lim) : lim_(lim) { walk(message); }

std::string_view mime_document::keep(std::string s) {
    arena_.push_back(std::move(s));
    return arena_.back();
}

std::string_view mime_document::decoded_body(const entity& e) {
    if (e.transfer_encoding != "base64" && e.transfer_encoding != "quoted-printable") return e.raw_body;
    if (decoded_total_ >= lim_.max_decoded_bytes) {
        flags_ |= flag_truncated;
        return {};
    }
    std::string_view in = e.raw_body;
    if (in.size() > lim_.max_decoded_bytes - decoded_total_) {
        in = in.substr(0, lim_.max_decoded_bytes - decoded_total_);
        flags_ |= flag_truncated;
    }
    std::string out = e.transfer_encoding == "base64" ? decode_base64(in, flags_) : decode_quoted_printable(in, flags_);
    decoded_total_ += out.size();
    // Decoded text may carry CRLF of its own; the parsers want LF only.
    if (out.find('\r') != std::string::npos) {
        std::string lf;
        lf.reserve(out.size());
        for (std::size_t i = 0; i < out.size(); ++i) {
            if (out[i] == '\r') {
                lf.push_back('\n');
                if (i + 1 < out.size() && out[i + 1] == '\n') ++i;
            } else {
                lf.push_back(out[i]);
            }
        }
        out.swap(lf);
    }
    return keep(std::move(out));
}

void mime_document::split_multipart(int index, std::string_view body, const std::string& boundary,
                                    std::vector<std::pair<std::string_view, int>>& children) {
    const std::string delim = "--" + boundary;
    std::size_t pos = 0;
    std::size_t part_start = std::string_view::npos;
    bool closed = false;
    auto find_delimiter = [&](std::size_t from, std::size_t& line_start, std::size_t& after) -> bool {
        while (true) {
            std::size_t hit;
            if (from == 0 && body.substr(0, delim.size()) == delim) hit = 0;
            else {
                std::size_t nl = body.find("\n" + delim, from == 0 ? 0 : from - 1);
                if (nl == std::string_view::npos) return false;
                hit = nl + 1;
            }
            std::size_t e = hit + delim.size();
            // A delimiter line is the boundary, optionally "--", then only white space.
            std::size_t k = e;
            if (body.substr(k, 2) == "--") k += 2;
            std::size_t ws = k;
            while (ws < body.size() && (body[ws] == ' ' || body[ws] == '\t')) ++ws;
            if (ws >= body.size() || body[ws] == '\n') {
                line_start = hit;
                after = ws;
                return true;
            }
            from = e;
        }
    };
    std::size_t line_start = 0, after = 0;
    while (find_delimiter(pos, line_start, after)) {
        bool is_close = body.substr(line_start + delim.size(), 2) == "--";
        if (part_start != std::string_view::npos) {
            // The LF before the delimiter belongs to the delimiter.
            std::size_t end = line_start > 0 ? line_start - 1 : 0;
            if (end < part_start) end = part_start;
            children.emplace_back(body.substr(part_start, end - part_start), index);
        }
        pos = after < body.size() ? after + 1 : body.size();
        if (is_close) {
            closed = true;
            break;
        }
        part_start = pos;
    }
    if (!closed) {
        flags_ |= flag_unterminated_multipart;
        if (part_start != std::string_view::npos && part_start < body.size())
            children.emplace_back(body.substr(part_start), index);
    }
}

void mime_document::walk(std::string_view message) {
    struct pending {
        std::string_view bytes;
        int parent;
        int depth;
        int message_level;
    };
    std::vector<pending> stack{{message, -1, 0, 0}};
    std::vector<std::pair<std::string_view, int>> children;
    while (!stack.empty()) {
        pending p = stack.back();
        stack.pop_back();
        if (entities_.size() >= lim_.max_mime_parts) {
            flags_ |= flag_too_many_parts;
            break;
        }
        entity e;
        e.parent = p.parent;
        e.depth = p.depth;
        e.message_level = p.message_level;
        e.headers = parse_header_section(p.bytes, lim_, flags_);
        if (std::string_view ct = e.headers.get("content-type"); !ct.empty()) {
            e.type = parse_content_type(ct);
        } else if (p.parent >= 0 && entities_[std::size_t(p.parent)].type.is("multipart", "digest")) {
            e.type.type = "message";  // RFC 2046 5.1.5: the digest default
            e.type.subtype = "rfc822";
        }
        e.transfer_encoding = text::to_lower(trim(text::unfold(e.headers.get("content-transfer-encoding"))));
        if (e.transfer_encoding == "7bit" || e.transfer_encoding == "8bit" || e.transfer_encoding == "binary")
            e.transfer_encoding.clear();
        std::string_view disposition = e.headers.get("content-disposition");
        e.attachment = text::istarts_with(trim(disposition), "attachment");
        e.filename = header_param(disposition, "filename");
        if (e.filename.empty()) e.filename = e.type.param("name");
        e.raw_body = e.headers.body;
        const int index = int(entities_.size());
        entities_.push_back(std::move(e));
        const entity& cur = entities_.back();

        // Parts of a returned original are not walked: only its header matters to us, and
        // skipping its attachments keeps the cost of a bounce independent of their size.
        if (cur.message_level >= 2 || (cur.message_level == 1 && cur.type.type == "multipart")) continue;

        bool is_message = cur.type.type == "message" &&
                          (cur.type.subtype == "rfc822" || cur.type.subtype == "global" || cur.type.subtype == "partial" ||
                           cur.type.subtype == "news");
        bool is_eml = !is_message && text::iends_with(cur.filename, ".eml") && cur.type.type != "multipart";
        if (cur.type.type == "multipart") {
            if (p.depth + 1 > int(lim_.max_mime_depth)) {
                flags_ |= flag_mime_too_deep;
                continue;
            }
            std::string boundary = cur.type.param("boundary");
            if (boundary.empty() || boundary.size() > 200) {
                flags_ |= flag_missing_boundary;
                continue;
            }
            children.clear();
            split_multipart(index, cur.raw_body, boundary, children);
            for (auto it = children.rbegin(); it != children.rend(); ++it)
                stack.push_back({it->first, index, p.depth + 1, p.message_level});
        } else if (is_message || is_eml) {
            if (p.depth + 1 > int(lim_.max_mime_depth)) {
                flags_ |= flag_mime_too_deep;
                continue;
            }
            std::string_view inner = decoded_body(entities_[std::size_t(index)]);
            if (!inner.empty()) stack.push_back({inner, index, p.depth + 1, p.message_level + 1});
        }
    }
}

}  // namespace ndrguard::detector::mime
