#include "ndrguard/smtp/replies.hpp"

#include <array>

namespace ndrguard::smtp {

namespace {

using enum reply_id;

// Codes and texts follow Postfix's smtpd where the RFCs leave a choice.
constexpr std::array<reply_entry, 44> table{{
    {greeting, "greeting", 220, "", "{host} ESMTP ndrguard", "a client connects"},
    {helo_ok, "helo_ok", 250, "", "{host}", "HELO"},
    {ehlo_ok, "ehlo_ok", 250, "", "{host}", "EHLO (first line; the extensions follow as 250- lines)"},
    {mail_ok, "mail_ok", 250, "2.1.0", "Ok", "MAIL FROM accepted"},
    {rcpt_ok, "rcpt_ok", 250, "2.1.5", "Ok", "RCPT TO accepted"},
    {data_go_ahead, "data_go_ahead", 354, "", "End data with <CR><LF>.<CR><LF>", "DATA"},
    {ok, "ok", 250, "2.0.0", "Ok", "RSET, NOOP, XFORWARD"},
    {bye, "bye", 221, "2.0.0", "Bye", "QUIT"},
    {ehlo_syntax, "ehlo_syntax", 501, "5.5.4", "Syntax: EHLO hostname", "EHLO without a name"},
    {helo_syntax, "helo_syntax", 501, "", "Syntax: HELO hostname", "HELO without a name (Postfix's, no enhanced code)"},
    {mail_syntax, "mail_syntax", 501, "5.5.4", "Syntax: MAIL FROM:<address>", "MAIL without a path"},
    {rcpt_syntax, "rcpt_syntax", 501, "5.5.4", "Syntax: RCPT TO:<address>", "RCPT without a path"},
    {bad_recipient_address, "bad_recipient_address", 501, "5.1.3", "Bad recipient address syntax",
     "RCPT TO:<>; before queue also an address that is not UTF-8 (never a mailbox key)"},
    {data_syntax, "data_syntax", 501, "5.5.4", "Syntax: DATA", "DATA with an argument"},
    {xforward_syntax, "xforward_syntax", 501, "5.5.4", "Syntax: XFORWARD attribute=value...", "XFORWARD without attributes"},
    {xforward_bad_attribute, "xforward_bad_attribute", 501, "5.5.4", "Bad XFORWARD attribute name: {detail}",
     "XFORWARD with an attribute Postfix does not send"},
    {need_helo, "need_helo", 503, "5.5.1", "Error: send HELO/EHLO first", "MAIL before HELO/EHLO"},
    {nested_mail, "nested_mail", 503, "5.5.1", "Error: nested MAIL command", "MAIL inside a transaction"},
    {need_mail, "need_mail", 503, "5.5.1", "Error: need MAIL command", "RCPT or DATA before MAIL"},
    {need_rcpt, "need_rcpt", 503, "5.5.1", "Error: need RCPT command", "DATA without a recipient"},
    {xforward_in_transaction, "xforward_in_transaction", 503, "5.5.1", "Error: MAIL transaction in progress",
     "XFORWARD inside a transaction"},
    {vrfy_disabled, "vrfy_disabled", 502, "5.5.1", "VRFY command is disabled", "VRFY"},
    {bad_syntax, "bad_syntax", 500, "5.5.2", "Error: bad syntax", "an empty command line"},
    {unknown_command, "unknown_command", 500, "5.5.2", "Error: command not recognized", "any other command"},
    {line_too_long, "line_too_long", 500, "5.5.2", "Error: line too long", "a command line over max_line_bytes"},
    {size_exceeds_limit, "size_exceeds_limit", 552, "5.3.4", "Message size exceeds fixed limit",
     "MAIL FROM with SIZE= over max_message_bytes"},
    {message_too_big, "message_too_big", 552, "5.3.4", "Error: message file too big",
     "the final dot of a message over max_message_bytes"},
    {too_many_recipients, "too_many_recipients", 452, "4.5.3", "Error: too many recipients", "RCPT beyond max_recipients"},
    {too_much_pipelined_input, "too_much_pipelined_input", 421, "4.7.0", "{host} Error: too much pipelined input",
     "over max_pending_bytes sent while a message was decided; then closed"},
    {too_many_errors, "too_many_errors", 421, "4.7.0", "{host} Error: too many errors", "over max_errors bad commands; then closed"},
    {service_busy, "service_busy", 421, "4.3.2", "{host} Service busy, try again later",
     "a connection beyond max_sessions; then closed"},
    {session_too_long, "session_too_long", 421, "4.4.2", "{host} Error: session too long",
     "a session older than session_timeout_seconds; then closed"},
    {idle_timeout, "idle_timeout", 421, "4.4.2", "{host} Error: timeout exceeded",
     "no input for idle_timeout_seconds; then closed"},
    {insufficient_storage, "insufficient_storage", 452, "4.3.1", "Insufficient system storage",
     "the final dot of a message that would take the sessions past max_message_memory_mb"},
    {queued, "queued", 250, "2.0.0", "Ok: queued as {detail}", "the next hop took the message (its queue id)"},
    {held_in_quarantine, "held_in_quarantine", 250, "2.0.0", "Ok: held in quarantine as {detail}",
     "every recipient's copy held (the first quarantine id)"},
    {dropped_quarantine_full, "dropped_quarantine_full", 250, "2.0.0", "Ok: dropped (forged bounce, mailbox quarantine full)",
     "nothing delivered or held: the mailboxes' quarantine caps were reached"},
    {backscatter_rejected, "backscatter_rejected", 550, "5.7.1", "Error: bounce of a message not sent from here (backscatter)",
     "every recipient's verdict is reject (null sender after queue, or before queue)"},
    {sent_log_unavailable, "sent_log_unavailable", 451, "4.3.0", "Error: sent log unavailable, try again later",
     "a sent-log lookup or record failed or took over database_timeout_ms"},
    {quarantine_unavailable, "quarantine_unavailable", 451, "4.3.0", "Error: quarantine unavailable, try again later",
     "a hold failed or took over database_timeout_ms"},
    {next_hop_refusal_kept, "next_hop_refusal_kept", 451, "4.3.0",
     "Error: next hop answered {detail} (not bounced after queue: the message stays queued)",
     "the next hop's 5xx after queue for a non-null sender (its 5.x.y as 4.x.y)"},
    {next_hop_unreachable, "next_hop_unreachable", 451, "4.3.0", "Error: cannot reach the next hop: {detail}",
     "no answer from the next hop (connect, read or write failed or timed out)"},
    {next_hop_failed, "next_hop_failed", 451, "4.3.0", "Error: next hop failed: {detail}",
     "the next hop answered neither 250 nor 4xx/5xx"},
    {next_hop_refused_connection, "next_hop_refused_connection", 451, "4.3.0",
     "Error: next hop refused the connection: {detail}", "the next hop's 5xx to the greeting or EHLO"},
}};

void one_line(std::string& out, std::string_view text) {
    for (char c : text) out.push_back(c == '\r' || c == '\n' ? ' ' : c);
}

}  // namespace

std::span<const reply_entry> reply_table() { return table; }

const reply_entry& reply_of(reply_id id) { return table[static_cast<std::size_t>(id)]; }

std::string render(reply_id id, std::string_view host, std::string_view detail, std::string_view enhanced) {
    const reply_entry& e = reply_of(id);
    std::string out = std::to_string(e.code);
    out.push_back(' ');
    if (enhanced.empty()) enhanced = e.enhanced;
    if (!enhanced.empty()) {
        out += enhanced;
        out.push_back(' ');
    }
    std::string_view text = e.text;
    while (!text.empty()) {
        const std::size_t brace = text.find('{');
        out += text.substr(0, brace);
        if (brace == std::string_view::npos) break;
        text.remove_prefix(brace);
        if (text.starts_with("{host}")) {
            one_line(out, host);
            text.remove_prefix(6);
        } else if (text.starts_with("{detail}")) {
            one_line(out, detail);
            text.remove_prefix(8);
        } else {
            out.push_back('{');
            text.remove_prefix(1);
        }
    }
    return out;
}

std::string reply_table_markdown() {
    std::string out = "| name | code | enhanced | text | when |\n|---|---|---|---|---|\n";
    for (const auto& e : table) {
        out += "| `" + std::string(e.name) + "` | " + std::to_string(e.code) + " | " +
               (e.enhanced.empty() ? std::string("-") : std::string(e.enhanced)) + " | `" + std::string(e.text) + "` | " +
               std::string(e.when) + " |\n";
    }
    return out;
}

}  // namespace ndrguard::smtp
