// The HTTP listener of the release pages (Boost.Beast, blocking, one thread per connection up
// to a bound: release links are clicked by people, a few a minute). Requests are bounded (8 KB
// of headers, 16 KB of body, 30 s per read), every response carries headers that keep pages
// out of caches and frames and forbid scripts.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "ndrguard/web/routes.hpp"

namespace ndrguard::web {

class http_server {
public:
    using handler = std::function<http_response(const http_request&)>;
    http_server(std::string listen, handler h, std::size_t max_connections = 32);
    ~http_server();
    void bind();  // throws std::runtime_error with the reason
    void run();   // accepts until stop(); returns when every connection has ended
    void stop();  // from any thread

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace ndrguard::web
