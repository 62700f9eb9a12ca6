// Postfix's SMTPD access policy delegation protocol (SMTPD_POLICY_README), the server's side of
// the bytes: a request is "name=value" lines ended by an empty line; the answer is
// "action=...", then an empty line. Pure: bytes in, requests out, no sockets.
//
// Every byte is hostile: a line is at most max_line_bytes (the partial line is all that is held
// between reads), a request at most max_attributes lines and max_request_bytes. Anything else is
// an error, and SMTPD_POLICY_README says what to do then: "In case of trouble the policy server
// must not send a reply. Instead the server must log a warning and disconnect." (Postfix then
// retries, and past its try limit uses default_action: DUNNO in deploy/postfix.)
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace ndrguard::policy {

struct request_limits {
    std::size_t max_line_bytes = 4096;      // one "name=value" line, its newline included
    std::size_t max_attributes = 100;       // lines in one request (Postfix 3.7 sends about 30)
    std::size_t max_request_bytes = 65536;  // one request, its empty line included
};

enum class request_error {
    none,
    line_too_long,        // a line over max_line_bytes
    too_many_attributes,  // over max_attributes lines
    request_too_large,    // over max_request_bytes
    malformed_line,       // no '=', or an empty name
    nul_byte,             // a NUL anywhere
    repeated_attribute,   // one of the names below twice
    empty_request,        // an empty line with no attribute before it
};
std::string_view to_string(request_error e);

// The attributes ndrguard reads; the others are counted and skipped.
struct policy_request {
    std::string request;         // "smtpd_access_policy"
    std::string protocol_state;  // "RCPT", "DATA", ...
    std::string queue_id;        // often empty at RCPT (the queue file comes later)
    std::string sender;          // "" for the null sender <>
    std::string recipient;       // as the client gave it, without <>
    std::string client_address;  // "203.0.113.5", "2001:db8::1"
    std::string client_name;     // "unknown" when it has none
    std::string helo_name;
    std::string instance;        // the same for every request of one message
    bool has_sender = false, has_recipient = false, has_request = false;
    std::size_t attributes = 0;  // lines, known or not
};

// One connection's reader: feed() the bytes as they come, in any pieces.
class request_reader {
public:
    explicit request_reader(request_limits limits = {}) : limits_(limits) {}

    // Appends every request the bytes complete to `out`. Returns false once the input is in
    // error (error() says why); nothing more is read then.
    bool feed(std::string_view bytes, std::vector<policy_request>& out);

    request_error error() const { return error_; }
    // Some bytes of a request that is not finished are held (a request timer runs).
    bool in_request() const { return request_bytes_ > 0; }
    std::size_t held_bytes() const { return line_.size(); }

private:
    bool fail(request_error e) {
        error_ = e;
        line_.clear();
        return false;
    }
    bool end_line();  // line_ holds a complete line (no newline)

    request_limits limits_;
    request_error error_ = request_error::none;
    std::string line_;                // the line being read, at most max_line_bytes
    std::size_t request_bytes_ = 0;   // of the request being read
    policy_request current_;
    std::vector<policy_request>* out_ = nullptr;
};

}  // namespace ndrguard::policy
