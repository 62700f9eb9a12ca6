// Query strings of the admin API (hostile input, parsed with bounds and no allocation beyond the
// input's size) and HTML escaping for the pages and the digest. Pure.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace ndrguard::web {

// "a%40b.c+d" -> "a@b.c d"; false on a malformed escape.
bool url_decode(std::string_view in, std::string& out);

// The value of `name` in "a=1&b=2" (decoded), "" for a bare "b", nothing when absent or malformed.
std::optional<std::string> query_value(std::string_view query, std::string_view name);

// Whether `name` is there with a value that does not decode ("mailbox=%zz"): a caller refuses
// the request rather than take the value as absent.
bool query_value_malformed(std::string_view query, std::string_view name);

// & < > " ' as entities: safe in element text and in quoted attribute values.
std::string html_escape(std::string_view text);

}  // namespace ndrguard::web
