// A small, iterative MIME splitter: just enough structure to read bounces.
//
// Why not mimetic: Debian's mimetic 0.9.8 has a use-after-free on `To: group:` headers, a
// length_error abort on a 28-byte multipart, unbounded recursion on nested message/rfc822 and
// a quadratic path on long header lines (../shared/notes/libraries.md, section 3). Postfix and
// OpenSMTPD split MIME with small state machines of their own; so does this file.
//
// Contract: input is LF-normalised. Everything returned is a view into the input or into the
// arena of the `mime_document` (which must outlive the views). No recursion: parts are walked
// with an explicit stack bounded by limits::max_mime_depth and limits::max_mime_parts.
// Boundaries are matched only at the start of a line (RFC 2046 5.1.1).
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ndrguard/detector/detector.hpp"

namespace ndrguard::detector::mime {

struct header_field {
    std::string_view name;
    std::string_view value;  // raw, may contain folded line breaks; see text::unfold
};

struct header_section {
    std::vector<header_field> fields;
    std::string_view body;  // everything after the blank line that ends the section

    // First field of that name (case-insensitive), or an empty view.
    std::string_view get(std::string_view name) const;
    bool has(std::string_view name) const;
};

// Parses one header section. A leading mbox "From " line is skipped. A line that is neither a
// field nor a continuation ends the section early (flag_malformed_header): such text is body.
header_section parse_header_section(std::string_view entity, const limits& lim, std::uint32_t& flags);

struct content_type {
    std::string type = "text";  // lower case
    std::string subtype = "plain";
    std::vector<std::pair<std::string, std::string>> params;  // names lower case, values raw
    std::string param(std::string_view name) const;           // "" when absent
    bool is(std::string_view t, std::string_view st) const { return type == t && subtype == st; }
};
content_type parse_content_type(std::string_view raw_value);

// Reads a parameter of a Content-Disposition-like value ("attachment; filename=x.eml").
std::string header_param(std::string_view raw_value, std::string_view name);

struct entity {
    int parent = -1;
    int depth = 0;            // multipart/message nesting below the top
    int message_level = 0;    // how many message/rfc822 boundaries lie above this entity
    header_section headers;
    content_type type;
    std::string transfer_encoding;  // lower case, "" for 7bit/8bit/binary
    std::string filename;           // Content-Disposition filename or Content-Type name
    bool attachment = false;
    std::string_view raw_body;      // still transfer-encoded
};

class mime_document {
public:
    mime_document(std::string_view message, const limits& lim);

    const std::vector<entity>& entities() const { return entities_; }
    std::uint32_t flags() const { return flags_; }

    // The entity's body with its Content-Transfer-Encoding undone (a view into the message or
    // the arena). Bounded in total by limits::max_decoded_bytes.
    std::string_view decoded_body(const entity& e);

    // A string owned by the document, for views that must live as long as it.
    std::string_view keep(std::string s);

private:
    void walk(std::string_view message);
    void split_multipart(int index, std::string_view body, const std::string& boundary,
                         std::vector<std::pair<std::string_view, int>>& children);

    const limits& lim_;
    std::vector<entity> entities_;
    std::deque<std::string> arena_;
    std::size_t decoded_total_ = 0;
    std::uint32_t flags_ = 0;
};

// Content-Transfer-Encoding decoders; lenient, they set flag_bad_encoding on junk.
std::string decode_base64(std::string_view in, std::uint32_t& flags);
std::string decode_quoted_printable(std::string_view in, std::uint32_t& flags);

// RFC 2047 encoded words in a header value -> UTF-8. Unknown charsets keep the raw word.
std::string decode_rfc2047(std::string_view value);

// Converts text in `charset` to UTF-8 (us-ascii, utf-8, iso-8859-1 and windows-1252 natively,
// others through iconv). Returns the input unchanged when the charset is unknown.
std::string to_utf8(std::string_view bytes, std::string_view charset);

// Rough text of an HTML body: tags dropped, <br>/<p>/<div>/<tr> as line breaks, the common
// entities decoded. Enough to find phrases and quoted headers in HTML-only bounces.
std::string html_to_text(std::string_view html);

}  // namespace ndrguard::detector::mime
