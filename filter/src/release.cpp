#include "ndrguard/filter/release.hpp"

#include <boost/asio.hpp>

#include "ndrguard/filter/message_edit.hpp"
#include "ndrguard/filter/smtp_client.hpp"
#include "ndrguard/filter/config.hpp"
#include "ndrguard/quarantine/store.hpp"

namespace ndrguard::filter {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
namespace q = ndrguard::quarantine;
using outcome = release_report::outcome;

std::string_view to_string(outcome o) {
    switch (o) {
        case outcome::released: return "released";
        case outcome::refused: return "refused";
        case outcome::unreachable: return "unreachable";
        case outcome::uncertain: return "uncertain";
        case outcome::unknown_item: return "unknown_item";
        case outcome::already_released: return "already_released";
        case outcome::deleted: return "deleted";
        case outcome::in_progress: return "in_progress";
        case outcome::database_failure: return "database_failure";
    }
    return "unknown";
}

namespace {

// What happened on the wire.
struct handover {
    enum class stage { before_dot, after_dot } reached = stage::before_dot;
    smtp_reply reply;  // code 0: none
};

// One SMTP transaction; `at_the_dot` runs just before the final dot and may cancel it.
template <class F>
handover send_once(const transaction& t, const release_options& o, F&& at_the_dot) {
    handover h;
    asio::io_context io;
    tcp::socket socket(io);
    try {
        auto hp = split_host_port(o.next_hop);
        if (!hp) throw std::runtime_error("bad next_hop " + o.next_hop);
        tcp::resolver resolver(io);
        asio::connect(socket, resolver.resolve(hp->first, std::to_string(hp->second)));
        timeval tv{};
        tv.tv_sec = o.timeout_seconds;
        ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        smtp_client_session client(o.hostname);
        client.hold_final_dot(true);
        std::string out = client.start(t);
        char buf[4096];
        while (true) {
            if (!out.empty()) asio::write(socket, asio::buffer(out));
            out.clear();
            auto st = client.state();
            if (st == smtp_client_session::status::before_final_dot) {
                if (!at_the_dot()) return h;  // closing now leaves nothing queued
                h.reached = handover::stage::after_dot;
                out = client.final_dot();
                continue;
            }
            if (st == smtp_client_session::status::delivered || st == smtp_client_session::status::refused ||
                st == smtp_client_session::status::broken) {
                h.reply = client.outcome();
                if (st == smtp_client_session::status::delivered) {
                    boost::system::error_code ignore;
                    asio::write(socket, asio::buffer(smtp_client_session::quit()), ignore);
                }
                return h;
            }
            std::size_t n = socket.read_some(asio::buffer(buf));
            out = client.feed(std::string_view(buf, n));
        }
    } catch (const std::exception& e) {
        h.reply = {0, e.what()};
        return h;
    }
}

}  // namespace

release_report release_item(q::database& db, std::int64_t item_id, const release_options& o) {
    release_report report;
    q::release_claim claim;
    try {
        claim = q::begin_release(db, item_id, o.who, o.via, o.lease, o.force);
    } catch (const std::exception& e) {
        return {outcome::database_failure, e.what(), {}};
    }
    switch (claim.what) {
        case q::release_claim::outcome::claimed: break;
        case q::release_claim::outcome::unknown_item: return {outcome::unknown_item, "no quarantined message has this id", {}};
        case q::release_claim::outcome::already_released: return {outcome::already_released, claim.detail, {}};
        case q::release_claim::outcome::deleted: return {outcome::deleted, "it was deleted", {}};
        case q::release_claim::outcome::in_progress: return {outcome::in_progress, claim.detail, {}};
        case q::release_claim::outcome::uncertain: return {outcome::uncertain, claim.detail, {}};
    }

    transaction t;
    t.esmtp = true;
    t.mail_from = claim.sender;
    t.recipients.push_back({claim.mailbox, {}});
    t.message = with_header_on_top(claim.message, "X-NDRGuard-Released",
                                   "id=" + std::to_string(item_id) + " attempt=" + std::to_string(claim.attempt_id));
    bool db_failed = false;
    std::string db_error;
    handover h = send_once(t, o, [&] {
        try {
            return q::mark_release_sent(db, claim.attempt_id);  // false: taken over meanwhile
        } catch (const std::exception& e) {
            db_failed = true;
            db_error = e.what();
            return false;
        }
    });
    const std::string reply_text = h.reply.code ? std::to_string(h.reply.code) + " " + h.reply.text.substr(0, h.reply.text.find('\n'))
                                                : h.reply.text;
    if (h.reached == handover::stage::after_dot && h.reply.code == 0) {
        // The message may be in the next hop's queue: never send it again on our own.
        return {outcome::uncertain,
                "the message was handed to " + o.next_hop + " but no answer came (" + reply_text +
                    "); it may have been queued, so it is not sent again (release --force would)",
                {}};
    }
    const bool delivered = h.reached == handover::stage::after_dot && h.reply.code == 250;
    try {
        q::finish_release(db, claim.attempt_id, delivered, reply_text);
    } catch (const std::exception& e) {
        if (delivered)
            return {outcome::uncertain, "delivered (" + reply_text + ") but not recorded: " + std::string(e.what()), queue_id_of(h.reply)};
        return {outcome::database_failure, e.what(), {}};
    }
    if (delivered) return {outcome::released, reply_text, queue_id_of(h.reply)};
    if (db_failed) return {outcome::database_failure, db_error, {}};
    if (h.reached == handover::stage::before_dot && h.reply.code == 0)
        return {outcome::unreachable, "next hop " + o.next_hop + ": " + (reply_text.empty() ? "no answer" : reply_text), {}};
    return {outcome::refused, "next hop " + o.next_hop + " answered " + reply_text, {}};
}

}  // namespace ndrguard::filter
