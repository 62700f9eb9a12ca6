// The HTTP listener of the release pages and of /metrics (Boost.Beast, asynchronous, one I/O
// thread). Idle and slow clients hold no thread: every read and write has a deadline (the
// request header, the whole request, the response, the idle time between keep-alive requests),
// and a connection that sends nothing is closed when its deadline passes. The handler (which
// may block on PostgreSQL or on a next hop) runs on a small pool of worker threads; one that
// does not answer within its deadline gets a 503 from the listener itself (the worker finishes
// later on its own and its answer is dropped). Beyond max_connections a connection gets a 503
// and is closed at once; beyond the workers a request gets a 503 "busy" at once.
// Requests are bounded (8 KB of headers, 16 KB of body, 100 per connection); every response
// carries headers that keep pages out of caches and frames and forbid scripts.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "ndrguard/web/http_limits.hpp"
#include "ndrguard/web/routes.hpp"

namespace ndrguard::web {

class http_server {
public:
    using handler = std::function<http_response(const http_request&)>;
    using logger = std::function<void(std::string_view line)>;  // one key=value line, any thread
    http_server(std::string listen, handler h, http_limits limits = {}, logger log = {});
    ~http_server();
    void bind();  // throws std::runtime_error with the reason
    void run();   // serves on the calling thread until stop(); returns when every worker has ended
    void stop();  // from any thread

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace ndrguard::web
