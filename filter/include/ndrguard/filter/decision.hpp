// The decision core of `ndrguard serve`: what is known of a transaction in, the plan out. Pure
// (no sockets, no database): the message pipeline (filter/src/message_pipeline.cpp) gathers the
// facts (the detector's result, the sent log's answers, the storm state of each mailbox), asks
// here, and only carries out what the plan says: hold these copies, deliver to those
// recipients with this verdict header, answer Postfix this, count that.
//
// The rules, in the order they apply:
//   - outbound mail (our networks, outbound_listen) is recorded in the sent log and delivered;
//   - a message that is not a bounce is delivered untouched;
//   - a bounce is decided per recipient mailbox (a storm is one mailbox's): the policy's cell
//     with its safety rules (policy::decide: storm, warm-up, no 5xx after queue for a non-null
//     sender, shadow);
//   - a recipient that cannot be a mailbox key (not UTF-8) is delivered unfiltered;
//   - one SMTP reply covers the transaction: a 5xx only if every recipient rejects; where only
//     some would, they are held instead (nothing is dropped silently);
//   - what Postfix is told decides what is counted: a 4xx is a tempfail, whatever was planned.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ndrguard/detector/detector.hpp"
#include "ndrguard/filter/policy.hpp"
#include "ndrguard/smtp/replies.hpp"

namespace ndrguard::filter {

struct network;

// What a message is, before the detector: mail of ours goes to the sent log.
enum class message_route { outbound, inbound };

// Outbound: it came to outbound_listen, or from a client in our networks (XFORWARD ADDR, else
// the peer's address).
message_route route_of(std::string_view client, bool outbound_listener, const std::vector<network>& our_networks);

// Only bounces count towards a storm; read receipts and abuse reports are not NDRs.
bool counts_for_storms(detector::message_class c);

// The action label of filter_metrics (its indexes; see metrics.hpp).
enum class counted_action : std::size_t { deliver = 0, reject = 1, quarantine = 2, tempfail = 3, dropped = 4 };

// What Postfix was told decides what is counted: a 4xx is a tempfail, a 5xx (ours or the next
// hop's, passed on) a refusal.
counted_action counted_for_answer(std::string_view answer, counted_action planned);

// What is known of a bounce once its ids were looked up and its mailboxes' storms observed.
struct bounce_facts {
    detector::message_class klass = detector::message_class::dsn;
    verification verdict = verification::unverifiable;
    filter_mode mode = filter_mode::after_queue;
    bool null_sender = false;  // MAIL FROM:<>
    bool shadow = false;
    bool warm_up = false;
    bool weak = false;  // the detector's result is weak: never rejected
    struct recipient {
        bool malformed = false;  // not UTF-8: never a mailbox key
        bool storm = false;      // its mailbox is in storm mode
    };
    std::vector<recipient> recipients;  // in the order of RCPT TO
};

struct bounce_plan {
    std::vector<decision> recipients;  // act: deliver, quarantine or reject, per RCPT TO
    bool reject_all = false;           // every recipient rejects: one 5xx, nothing held or delivered
    bool counted = false;              // the bounce counts towards its mailboxes' storms (the
                                       // malformed recipients' never do)
    std::size_t storm_mailboxes = 0;
    std::vector<std::string_view> notes;  // every recipient's, once each, sorted (the log line)

    // The reply decided without further I/O (reject_all), if any.
    std::optional<smtp::reply_id> reply() const;
    // The recipients to hold, in order (before anything is delivered).
    std::vector<std::size_t> to_hold() const;
    bool delivers_any() const;
};

bounce_plan plan_bounce(const policy& verdicts, const bounce_facts& facts);

// After the holds were answered: who is delivered, and what Postfix is told if nobody is.
struct delivery_plan {
    std::vector<std::size_t> to_deliver;  // recipient indexes, in order
    std::string_view log_action;          // deliver, mixed, quarantine, drop
    counted_action counted = counted_action::deliver;
    std::optional<smtp::reply_id> reply;  // nothing to deliver: held_in_quarantine or dropped_quarantine_full
    std::size_t header_from = 0;          // whose decision the verdict header shows (the first delivered)
};

// `held` and `dropped`: how many of plan.to_hold() were held, and dropped over the caps.
delivery_plan plan_delivery(const bounce_plan& plan, std::size_t held, std::size_t dropped);

}  // namespace ndrguard::filter
