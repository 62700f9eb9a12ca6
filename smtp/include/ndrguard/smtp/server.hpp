// The server side of the filter's SMTP: a pure state machine (bytes in, reply bytes out), so
// that every protocol path is unit-tested and fuzzed without a socket. The Asio layer only
// moves bytes and timers.
//
// The content filter decides after DATA, for the whole transaction: when a message is
// complete, feed() stops, message() holds it, and the caller answers with complete(reply).
// Input that arrives meanwhile (a pipelined QUIT) is kept, bounded, and read on complete().
//
// Replies follow Postfix's smtpd where the RFCs leave a choice (codes in the comments of
// smtp_server.cpp). Limits: server_limits; each one hit gets its own reply, never a crash.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ndrguard::smtp {

struct server_limits {
    std::size_t max_line_bytes = 2048;             // a command line, CRLF included
    std::size_t max_message_bytes = 50u << 20;     // after dot-unstuffing; 552 5.3.4 beyond
    std::size_t max_recipients = 1000;             // 452 4.5.3 beyond
    std::size_t max_pending_bytes = 64u << 10;     // input held while a message waits for complete()
    std::size_t max_errors = 20;                   // bad commands before 421 and close
    // An RCPT address that is not well-formed UTF-8 (or holds NUL) can never be a mailbox key:
    // refused with Postfix's 501 5.1.3 when true (before queue, where the refusal reaches the
    // sender); when false it is accepted and the filter passes it on unfiltered (after queue,
    // where a 5xx would make Postfix bounce).
    bool refuse_malformed_recipients = false;
};

struct recipient {
    std::string address;  // between the angle brackets, as given (raw bytes; UTF-8 for SMTPUTF8)
    std::string params;   // ESMTP parameters (NOTIFY=, ORCPT=) verbatim, to pass on
};

struct transaction {
    std::string helo;                     // EHLO/HELO argument
    bool esmtp = false;                   // EHLO (not HELO)
    std::string mail_from;                // "" for the null sender <>
    std::string mail_params;              // SIZE=, BODY=, RET=, ENVID=, SMTPUTF8 verbatim
    std::vector<recipient> recipients;
    std::vector<std::pair<std::string, std::string>> xforward;  // NAME, ADDR, IDENT (queue id)...
    std::string message;                  // the content, CRLF line endings, dots unstuffed
};

// Well-formed UTF-8 without NUL: what an address must be to become a mailbox key.
bool well_formed_address(std::string_view address);

class smtp_server_session {
public:
    smtp_server_session(std::string hostname, server_limits limits = {});

    // "220 host ESMTP ndrguard\r\n": what to send when the connection opens.
    std::string greeting() const;

    // Reads client bytes; returns the replies to send (possibly several, for pipelined
    // commands). Stops reading when a message is complete (has_message()) or the session closed.
    std::string feed(std::string_view bytes);

    bool has_message() const { return state_ == state::deciding; }
    const transaction& message() const { return txn_; }

    // The answer for the message, one reply line without CRLF ("250 2.0.0 Ok: queued as X").
    // Resets the transaction (HELO and XFORWARD attributes stay) and reads held input.
    std::string complete(std::string_view reply);

    // True after QUIT or a fatal error: send what feed() returned, then close.
    bool closed() const { return state_ == state::closed; }

    // Memory accounting of the caller (max_message_memory_mb). The bytes allocated for the
    // message in progress (or the one awaiting complete()); 0 between messages.
    std::size_t content_bytes() const { return txn_.message.capacity(); }
    // Ends the message in progress: its content is freed now, the rest of its DATA is read
    // and dropped, and the final dot is answered with `reply` (one line, no CRLF).
    void drop_message(std::string reply);
    // The complete message's content, moved out (message().message is then empty): the
    // caller keeps the only copy until complete().
    std::string take_content() { return std::move(txn_.message); }

private:
    enum class state { command, data, deciding, closed };
    std::string handle_command(std::string_view line);
    std::string handle_data_line(std::string_view line);
    std::string process();  // consume buffered input as far as the state allows
    void append_content(std::string_view text, bool end_of_line);
    void reset_transaction();

    std::string hostname_;
    server_limits limits_;
    state state_ = state::command;
    std::string input_;             // bytes received and not yet erased
    std::size_t consumed_ = 0;      // how much of input_ has been read
    bool discarding_line_ = false;  // inside an over-long command line
    bool data_mid_line_ = false;    // DATA: the start of the current line was taken already
    bool overflow_ = false;         // too much input while a message waited for complete()
    bool have_helo_ = false;
    bool have_mail_ = false;
    bool message_too_big_ = false;
    std::string drop_reply_;  // the answer to a dropped message's final dot (drop_message)
    std::size_t errors_ = 0;
    transaction txn_;
};

}  // namespace ndrguard::smtp
