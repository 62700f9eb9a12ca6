#include "ndrguard/web/held_item_json.hpp"

namespace ndrguard::web {

nlohmann::json held_item_json(const item_view& it) {
    return {{"id", it.id},
            {"held_at", it.held_at_iso},
            {"mailbox", it.mailbox},
            {"sender", it.sender},
            {"class", it.klass},
            {"verification", it.verification},
            {"state", it.state},
            {"reasons", it.reasons},
            {"notes", it.notes},
            {"evidence", it.evidence},
            {"message_ids", it.message_ids},
            {"reporting_mta", it.reporting_mta},
            {"subject", it.subject},
            {"original_subject", it.original_subject},
            {"original_recipient", it.original_recipient},
            {"storm_id", it.storm_id},
            {"size", it.size}};
}

}  // namespace ndrguard::web
