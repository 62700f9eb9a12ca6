#include "ndrguard/web/http_limits.hpp"

#include <algorithm>

namespace ndrguard::web {

request_deadlines deadlines_for(steady_time start, const http_limits& l) {
    const steady_time whole = start + l.request_timeout;
    return {std::min(start + l.header_timeout, whole), whole};
}

bool take_connection(std::size_t open, const http_limits& l) { return open < l.max_connections; }

bool take_request(std::size_t in_flight, const http_limits& l) { return in_flight < l.workers + l.waiting; }

std::chrono::milliseconds handler_deadline(std::string_view method, const http_limits& l) {
    return method == "GET" || method == "HEAD" ? l.handler_timeout : l.slow_handler_timeout;
}

}  // namespace ndrguard::web
