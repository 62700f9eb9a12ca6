// One SMTP transaction to the next hop for mail ndrguard itself hands to Postfix (releases,
// digests), with a hook just before the final dot: until the dot nothing can be queued, after it
// the message may be. Callers record that point so that a crash never makes them send twice.
#pragma once

#include <functional>
#include <string>

#include "ndrguard/smtp/client.hpp"

namespace ndrguard::smtp {

// Filled from the configuration (next_hop, hostname, reinject_timeout_seconds): no defaults here.
struct handover_options {
    std::string next_hop;     // host:port
    std::string hostname;     // our EHLO name
    int timeout_seconds = 0;  // per connect, read or write: a deadline, never longer
};

// What happened on the wire.
struct handover {
    enum class stage { before_dot, after_dot } reached = stage::before_dot;
    smtp_reply reply;  // code 0: none (the text says why)
};

// Blocking (a private io_context running one next_hop_connection), but every step (connect, each read and write) ends within timeout_seconds: a
// next hop that accepts and never answers is a failure (reply code 0), before the dot a clean
// one. `at_the_dot` runs just before the final dot; returning false closes the connection
// instead, which leaves nothing queued.
handover send_once(const transaction& t, const handover_options& o, const std::function<bool()>& at_the_dot);

}  // namespace ndrguard::smtp
