// Postfix's mail log, read back into what the sent log needs: which Message-IDs left this site.
// Pure: lines in, outbound messages out (no files, no database; the command reads the files and
// records through quarantine's sent_log). Everything held is bounded: line length, queue ids
// open at once, recipients kept per message.
//
// Formats read (the header of each line, then Postfix's own text):
//   syslog (RFC 3164, BSD):   "Dec  2 04:42:55 host postfix/cleanup[123]: TEXT" (no year: see
//                             year inference below; local time at utc_offset)
//   ISO (rsyslog's RSYSLOG_FileFormat, Postfix 3.4+'s maillog_file on some builds):
//                             "2026-12-02T04:42:55.123456+01:00 host postfix/cleanup[123]: TEXT"
//   RFC 5424 (rsyslog's RSYSLOG_SyslogProtocol23Format):
//                             "<22>1 2026-12-02T04:42:55.123456+00:00 host postfix/cleanup 123 - - TEXT"
// and of Postfix's text, by queue id (postfix's SMTPD_README / the daemons' logging, see
// docs in README "ndrguard backfill"):
//   smtpd    "QID: client=NAME[ADDR][, sasl_method=M, sasl_username=U][, orig_client=NAME[ADDR]]"
//   pickup   "QID: uid=N from=<SENDER>"               (local submission: ours)
//   cleanup  "QID: message-id=<ID>"
//   qmgr     "QID: from=<SENDER>, size=N, nrcpt=N (queue active)"   and   "QID: removed"
//   smtp, lmtp, local, virtual, pipe: "QID: to=<RCPT>, ..., status=sent (...)"
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <unordered_set>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace ndrguard::backfill {

using time_point = std::chrono::system_clock::time_point;

// What one line is, for the join. Views point into the line given to parse_line.
enum class line_kind {
    client,        // smtpd: a client handed this queue id a message
    pickup,        // pickup: a local submission (sendmail, postdrop)
    message_id,    // cleanup: the message's Message-ID
    envelope,      // qmgr: from=<sender>
    sent,          // a delivery agent: to=<rcpt> ... status=sent
    removed,       // qmgr: the queue id is done
    other_postfix, // a Postfix line the join does not need (connect, warnings, deferred, ...)
};

struct log_line {
    time_point at;
    std::string_view program;   // after "postfix/" (or the syslog_name's last part): "smtpd"
    std::string_view queue_id;  // empty for lines without one
    line_kind kind = line_kind::other_postfix;
    std::string_view value;     // client: the address that decides; message_id: the id with
                                // brackets; envelope: sender; sent: recipient
    bool authenticated = false; // client: sasl_username= present
    bool reinjected = false;    // client: orig_queue_id= present (a content filter handed the
                                // message back: its first queue id is the one that counts)
};

// Why a line was not used; the counts are printed by reason.
enum class skip_reason {
    too_long,       // longer than limits::max_line (its queue id, if any, is not trusted)
    not_text,       // NUL or other control bytes
    no_header,      // no timestamp, host and program that any of the formats above has
    not_postfix,    // another program's line
    count_
};
std::string_view skip_reason_name(skip_reason r);

// Year inference for syslog lines, which carry none: the year of `reference` (the time the
// command runs), or the one before when that would put the line more than a day after the
// reference (a December line read in January). utc_offset: the zone the syslog daemon wrote
// local times in (ISO and RFC 5424 lines carry their own).
struct clock_context {
    time_point reference;
    std::chrono::seconds utc_offset{0};
};

struct limits {
    std::size_t max_line = 8192;          // bytes; Postfix's own lines stay far below
    std::size_t max_open = 100000;        // queue ids held at once; the oldest is dropped past it
    std::size_t max_recipients = 1000;    // kept per message (all of them still count as sent)
    std::size_t max_message_id = 998;     // RFC 5322's line limit
    std::size_t max_inbound_ids = 100000; // Message-IDs of inbound mail remembered (see below)
};

// Parses one line (without its newline). nullopt with `why` set when it is not usable.
std::optional<log_line> parse_line(std::string_view line, const clock_context& clock, const limits& lim,
                                   skip_reason& why);

// A message that left this site: what the sent log records.
struct outbound {
    std::string message_id;  // with its brackets, as logged
    std::string sender;
    std::vector<std::string> recipients;
    time_point sent_at;      // the first status=sent line: the day it is recorded on
};

// Why a queue id's message was not outbound; counted by reason.
enum class drop_reason {
    not_ours,          // the client is outside our networks and did not authenticate
    reinjected,        // a content filter's re-injection (orig_queue_id=): counted at its
                       // first queue id
    seen_inbound,      // from our networks, but its Message-ID came in from outside earlier in
                       // the log (a held message released, a filter's loop back)
    origin_unknown,    // no client= or pickup line for it (the log starts after it arrived,
                       // or Postfix made it itself: a bounce, a delay notice)
    no_message_id,     // no message-id= line, or one longer than limits::max_message_id
    never_sent,        // removed without any status=sent (bounced, expired, deleted)
    evicted,           // still open when max_open newer queue ids arrived, not complete
    incomplete_at_end, // still open at the end of the input, not complete
    count_
};
std::string_view drop_reason_name(drop_reason r);

struct join_counts {
    std::uint64_t lines = 0;
    std::uint64_t skipped[static_cast<std::size_t>(skip_reason::count_)] = {};
    std::uint64_t dropped[static_cast<std::size_t>(drop_reason::count_)] = {};
    std::uint64_t outbound = 0;  // messages handed out (one per queue id: a message relayed
                                 // through a content filter is two queue ids with one id)
};

// Joins lines by queue id. `is_ours(address)` says whether a client address is in our
// networks. A queue id is complete at its "removed" line; one that is still open when the
// input ends (or is pushed out past max_open) is handed out when it has everything it needs
// (a message id, our origin, a status=sent), else dropped and counted.
class joiner {
public:
    joiner(std::function<bool(std::string_view)> is_ours, clock_context clock, limits lim = {});

    // One line without its newline (a trailing '\r' is ignored); completed messages are
    // appended to `out`.
    void feed(std::string_view line, std::vector<outbound>& out);
    // The end of one input: what is still open is decided now (see above).
    void finish(std::vector<outbound>& out);

    const join_counts& counts() const { return counts_; }
    std::size_t open() const { return open_.size(); }

private:
    struct pending {
        std::uint64_t order = 0;
        std::optional<bool> ours;  // unknown until a client= or pickup line
        bool reinjected = false;
        std::string message_id, sender;
        std::vector<std::string> recipients;
        std::optional<time_point> first_sent;
    };
    void close(const std::string& queue_id, bool at_removed, std::vector<outbound>& out, drop_reason incomplete);

    std::function<bool(std::string_view)> is_ours_;
    clock_context clock_;
    limits lim_;
    join_counts counts_;
    std::unordered_map<std::string, pending> open_;
    std::map<std::uint64_t, std::string> by_age_;  // order -> queue id, oldest first
    std::uint64_t next_order_ = 0;
    std::unordered_set<std::string> inbound_ids_;  // bounded by max_inbound_ids, oldest out
    std::deque<std::string> inbound_order_;
};

}  // namespace ndrguard::backfill
