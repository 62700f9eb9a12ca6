// The client side: reinjection of an accepted message into Postfix's second smtpd (FILTER_README,
// 127.0.0.1:10026 by default). A pure state machine like the server: feed() takes the server's
// bytes and returns what to send. One transaction at a time; after it, the connection is idle
// and start() may begin the next one (connection reuse).
//
// When the next hop offers PIPELINING (Postfix's smtpd does), XFORWARD, MAIL, every RCPT and
// DATA go in one write and their replies are read in order: one round trip instead of five.
// Otherwise commands go one at a time. Parameters are passed on only when the next hop offers the
// extension they belong to (SIZE, BODY=8BITMIME, DSN's RET/ENVID/NOTIFY/ORCPT, SMTPUTF8).
// Every recipient must be accepted; otherwise the transaction is abandoned (RSET) and the
// first refusal is the outcome, so the filter answers it for the whole message.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "ndrguard/smtp/server.hpp"

namespace ndrguard::smtp {

struct smtp_reply {
    int code = 0;            // 250, 451, ...
    std::string text;        // all lines, joined with "\n", without the codes
    bool positive() const { return code >= 200 && code < 400; }
    bool temporary() const { return code >= 400 && code < 500; }
    // The code and the first line ("550 5.1.1 no such user"); the text alone when no reply
    // came (code 0: the text says why).
    std::string summary() const {
        const std::string first = text.substr(0, text.find('\n'));
        return code ? std::to_string(code) + " " + first : first;
    }
};

// Parses one complete reply ("250-a\r\n250 b\r\n") from the front of `buffer`; returns the
// bytes it used, 0 if the reply is not complete yet. `bad` is set on a malformed line.
std::size_t parse_reply(std::string_view buffer, smtp_reply& out, bool& bad);

// "250 2.0.0 Ok: queued as 4F2A81C0031" -> "4F2A81C0031" ("" when none is named).
std::string queue_id_of(const smtp_reply& r);

// XFORWARD attribute lines, each under `max_line` bytes (Postfix reads 512-byte lines).
std::vector<std::string> xforward_lines(const std::vector<std::pair<std::string, std::string>>& attrs,
                                        std::size_t max_line = 512);

// No byte >= 0x80 in MAIL FROM or any RCPT address: what a next hop without SMTPUTF8 may take.
// A transaction whose mail_params ask for SMTPUTF8 and whose envelope is not ASCII is refused
// by start() (550 5.6.7, nothing sent) when the next hop does not offer SMTPUTF8.
bool envelope_is_ascii(const transaction& t);

// Dot-stuffs a message with CRLF line endings and appends the ".\r\n" terminator.
std::string dot_stuffed(std::string_view message);

class smtp_client_session {
public:
    enum class status { connecting, idle, busy, delivered, refused, broken, before_final_dot };

    explicit smtp_client_session(std::string helo_name) : helo_name_(std::move(helo_name)) {}

    // Begins a transaction. Allowed when the connection is new (before the greeting), idle, or
    // just finished one (delivered/refused); returns the bytes to send now (often none).
    std::string start(const transaction& txn);

    // The server's bytes; returns what to send next.
    std::string feed(std::string_view bytes);

    status state() const { return status_; }
    // The message content went out in this transaction (after it, it may be queued: never resent).
    bool content_sent() const { return content_sent_; }
    const smtp_reply& outcome() const { return outcome_; }  // after delivered/refused/broken
    std::string queue_id() const { return queue_id_of(outcome_); }
    bool reusable() const {
        return !must_close_ &&
               (status_ == status::delivered || status_ == status::refused || status_ == status::idle);
    }

    // Two-phase hand-over (quarantine releases): with this set, the content is sent without its
    // final dot and the session stops in before_final_dot, until final_dot() returns the bytes
    // that commit the message in the next hop's queue. Up to that point, closing the connection
    // leaves nothing behind.
    void hold_final_dot(bool hold) { hold_final_dot_ = hold; }
    std::string final_dot() {
        status_ = status::busy;
        return ".\r\n";
    }

    // "QUIT\r\n" for an orderly close of an idle connection.
    static std::string quit() { return "QUIT\r\n"; }

private:
    enum class step { greeting, ehlo, xforward, mail, rcpt, data, content, rset, pipelined, none };
    std::string next_command();
    std::string finish(status s, smtp_reply r);

    std::string helo_name_;
    status status_ = status::connecting;
    step step_ = step::greeting;
    std::string input_;
    smtp_reply outcome_;
    const transaction* txn_ = nullptr;
    std::vector<std::string> xforward_pending_;
    std::size_t next_rcpt_ = 0;
    bool have_ehlo_ = false;
    // What the next hop offers.
    bool offers_size_ = false, offers_8bitmime_ = false, offers_dsn_ = false, offers_smtputf8_ = false,
         offers_xforward_ = false, offers_pipelining_ = false;
    std::vector<step> awaited_;     // PIPELINING: the commands whose replies are still to come
    bool pipelined_refusal_ = false;
    bool hold_final_dot_ = false;
    bool content_sent_ = false;
    bool must_close_ = false;       // a 354 came after a refusal: the transaction can only be
                                    // abandoned by closing the connection
};

}  // namespace ndrguard::smtp
