// Every SMTP reply ndrguard gives, in one table (as Postfix's cleanup_stat_map in
// src/global/cleanup_strerror.c): code, enhanced status, text and when it is given. The session
// state machine and the filter's I/O code only look replies up by their id and render them;
// the README's reply table is generated from this one (tests/smtp/replies_test.cpp checks it).
//
// A text may hold "{host}" (the filter's hostname) and "{detail}" (what varies: a queue id, the
// next hop's own reply). Replies the next hop gave that are passed on as they came (its 4xx, and
// its 5xx where that makes no backscatter) are not ndrguard's and are not in the table.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace ndrguard::smtp {

enum class reply_id {
    // The session (smtp_server_session): the dialogue before and around a message.
    greeting,
    helo_ok,
    ehlo_ok,
    mail_ok,
    rcpt_ok,
    data_go_ahead,
    ok,
    bye,
    ehlo_syntax,
    helo_syntax,
    mail_syntax,
    rcpt_syntax,
    bad_recipient_address,
    data_syntax,
    xforward_syntax,
    xforward_bad_attribute,
    need_helo,
    nested_mail,
    need_mail,
    need_rcpt,
    xforward_in_transaction,
    vrfy_disabled,
    bad_syntax,
    unknown_command,
    line_too_long,
    size_exceeds_limit,
    message_too_big,
    too_many_recipients,
    too_much_pipelined_input,
    too_many_errors,
    // The filter's connections (filter/src/client_session.cpp).
    service_busy,
    session_too_long,
    idle_timeout,
    insufficient_storage,
    // The answer to a message (filter/src/message_pipeline.cpp, the decision core).
    queued,
    held_in_quarantine,
    dropped_quarantine_full,
    backscatter_rejected,
    sent_log_unavailable,
    quarantine_unavailable,
    next_hop_refusal_kept,
    next_hop_unreachable,
    next_hop_failed,
    next_hop_refused_connection,
};

struct reply_entry {
    reply_id id;
    std::string_view name;      // as in the README and the tests
    int code;                   // 220 ... 554
    std::string_view enhanced;  // RFC 3463 "x.y.z", "" where Postfix gives none either
    std::string_view text;      // may hold {host} and {detail}
    std::string_view when;      // one line for the README
};

// The table, in the order of reply_id (reply_table()[i].id == reply_id(i)).
std::span<const reply_entry> reply_table();
const reply_entry& reply_of(reply_id id);

// "CODE ENHANCED TEXT", one line without CRLF, {host} and {detail} filled in. `enhanced`
// overrides the table's (the next hop's 5.x.y kept as 4.x.y). CR and LF in what is filled in
// become spaces: a reply is one line, whatever came from outside.
std::string render(reply_id id, std::string_view host = {}, std::string_view detail = {}, std::string_view enhanced = {});

// The README's table (Markdown): one row per entry.
std::string reply_table_markdown();

}  // namespace ndrguard::smtp
