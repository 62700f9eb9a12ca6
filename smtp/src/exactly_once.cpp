#include "ndrguard/smtp/exactly_once.hpp"

#include <exception>

namespace ndrguard::smtp {

using kind = handover_outcome::kind;

handover_outcome deliver_exactly_once(const transaction& t, const handover_options& o, handover_ledger& ledger) {
    handover_outcome out;
    bool taken_over = false;
    std::string dot_error;  // recording the dot failed: it was not sent
    const handover h = send_once(t, o, [&] {
        try {
            taken_over = !ledger.sending_starts();
            return !taken_over;
        } catch (const std::exception& e) {
            dot_error = e.what();
            return false;
        }
    });
    out.reply = h.reply;
    if (taken_over) {
        out.what = kind::taken_over;
        return out;
    }
    const bool after_dot = h.reached == handover::stage::after_dot;
    if (after_dot && h.reply.code == 0) {  // maybe queued: never finished, never sent again on our own
        out.what = kind::uncertain;
        return out;
    }
    out.accepted = after_dot && h.reply.code == 250;
    if (out.accepted) out.queue_id = queue_id_of(h.reply);
    try {
        ledger.finish(out.accepted, dot_error.empty() ? h.reply.summary() : dot_error);
    } catch (const std::exception& e) {
        out.what = kind::ledger_failure;
        out.ledger_error = e.what();
        out.recorded = false;
        return out;
    }
    if (!dot_error.empty()) {
        out.what = kind::ledger_failure;
        out.ledger_error = dot_error;
    } else if (out.accepted) {
        out.what = kind::delivered;
    } else {
        out.what = h.reply.code == 0 ? kind::unreachable : kind::refused;
    }
    return out;
}

}  // namespace ndrguard::smtp
