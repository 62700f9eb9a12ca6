// Where a next hop or a listener is: "host:port" as Postfix writes it (FILTER_README's
// 127.0.0.1:10026), an IPv6 address in brackets ("[::1]:10026").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace ndrguard::smtp {

// "127.0.0.1:10026" -> {"127.0.0.1", 10026}; "[::1]:25" -> {"::1", 25}; nullopt without a port
// in 1..65535 or with a bare IPv6 address.
std::optional<std::pair<std::string, std::uint16_t>> split_host_port(std::string_view value);

}  // namespace ndrguard::smtp
