// `ndrguard serve`: the content filter on the network. Like Postfix's own smtpd, one worker
// per connection: each session thread owns its sockets and its database connection, blocking
// I/O with socket timeouts, and the count of sessions is bounded (max_sessions; beyond it the
// client gets 421 and Postfix retries). Outbound records go through one group-commit writer.
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
