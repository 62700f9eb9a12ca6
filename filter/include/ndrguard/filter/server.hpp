// `ndrguard serve`: the content filter on the network. Like Postfix's own smtpd, one worker
// per connection at a time: blocking I/O with socket timeouts, workers kept for reuse (idle ones
// end after a minute), the count of sessions bounded (max_sessions; beyond it the client gets
// 421 and Postfix retries). Database and next-hop connections are pooled across sessions;
// outbound records go through one group-commit writer.
//
// Every message gets exactly one answer, and 250 only after the next hop answered 250 (and,
// for outbound mail, the sent log committed); any internal failure answers 451 so Postfix
// keeps the message.
#pragma once

#include <atomic>
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>

#include "ndrguard/filter/config.hpp"

namespace ndrguard::filter {

class filter_server {
public:
    filter_server(serve_config cfg, std::ostream& log);
    ~filter_server();

    // Binds the listening socket (throws std::runtime_error with the reason on failure).
    void bind();
    // Accepts until stop(); returns when every session has ended (or after a grace period).
    void run();
    // Callable from any thread (a signal handler thread): stops accepting.
    void stop();

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace ndrguard::filter
