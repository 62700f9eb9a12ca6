// The bounds of the HTTP listener (http_server.hpp), and its decisions as pure functions: when
// each read must end, whether a connection or a request is taken, how long a handler may take.
#pragma once

#include <chrono>
#include <cstddef>
#include <string_view>

namespace ndrguard::web {

struct http_limits {
    using ms = std::chrono::milliseconds;
    ms header_timeout{10000};     // the request header, from the connection or the request's first byte
    ms request_timeout{30000};    // the whole request, body included; and, again, writing the response
    ms keepalive_timeout{15000};  // idle between two requests of a connection
    ms handler_timeout{10500};    // GET and HEAD: the answer, else a 503 from the listener
    ms slow_handler_timeout{10500};  // other methods (a release talks to the next hop too)
    std::size_t max_connections = 256;  // open at once; beyond: 503 and closed
    std::size_t workers = 8;            // handlers running at once
    std::size_t waiting = 32;           // requests waiting for a worker; beyond: 503 "busy" at once
    std::size_t max_header_bytes = 8 * 1024;
    std::size_t max_body_bytes = 16 * 1024;
    int max_requests_per_connection = 100;
};

using steady_time = std::chrono::steady_clock::time_point;

// When the header and the whole request starting at `start` must have arrived (the header's
// deadline is never after the request's).
struct request_deadlines {
    steady_time header, whole;
};
request_deadlines deadlines_for(steady_time start, const http_limits& l);

// A new connection when `open` are open: taken, or refused with a 503.
bool take_connection(std::size_t open, const http_limits& l);

// A request when `in_flight` are running or waiting for a worker (those past their deadline
// included: they still hold a worker): taken, or answered 503 "busy".
bool take_request(std::size_t in_flight, const http_limits& l);

// How long the handler of a request with this method may take.
std::chrono::milliseconds handler_deadline(std::string_view method, const http_limits& l);

}  // namespace ndrguard::web
