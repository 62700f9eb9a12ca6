// Encodings for mail ndrguard writes itself (the digest). Pure.
#pragma once

#include <string>
#include <string_view>

namespace ndrguard::digest {

// An unstructured header value (Subject:, a display name) as RFC 2047 encoded words when it is not
// plain printable ASCII: "=?UTF-8?Q?...?=" words of at most 75 characters, never splitting a UTF-8
// sequence, joined by CRLF SP (header folding). `first_line_used`: how many characters of the
// first line the field name already takes ("Subject: " = 9). Invalid UTF-8 is replaced by U+FFFD.
std::string encode_header_text(std::string_view utf8, std::size_t first_line_used = 0);

// The text with every byte that does not begin a valid UTF-8 sequence replaced by U+FFFD: what
// encode_header_text encodes.
std::string valid_utf8(std::string_view bytes);

// A body as quoted-printable (RFC 2045): CRLF line ends for \n, lines of at most 76 characters
// with soft breaks, trailing blanks encoded, a line-initial "From " encoded (mbox safety).
std::string quoted_printable(std::string_view text);

}  // namespace ndrguard::digest
