#include "ndrguard/smtp/address.hpp"

#include <charconv>

namespace ndrguard::smtp {

std::optional<std::pair<std::string, std::uint16_t>> split_host_port(std::string_view value) {
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t' || value.front() == '\r')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t' || value.back() == '\r')) value.remove_suffix(1);
    std::string host;
    std::string_view port;
    if (!value.empty() && value.front() == '[') {
        std::size_t close = value.find(']');
        if (close == std::string_view::npos || close + 1 >= value.size() || value[close + 1] != ':') return std::nullopt;
        host = std::string(value.substr(1, close - 1));
        port = value.substr(close + 2);
    } else {
        std::size_t colon = value.rfind(':');
        if (colon == std::string_view::npos || value.find(':') != colon) return std::nullopt;
        host = std::string(value.substr(0, colon));
        port = value.substr(colon + 1);
    }
    std::uint16_t p = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (host.empty() || ec != std::errc() || end != port.data() + port.size() || p == 0) return std::nullopt;
    return std::make_pair(host, p);
}

}  // namespace ndrguard::smtp
