// The one JSON form of a held item: `ndrguard quarantine list --json` / `show --json` and the
// admin API (/api/held, /api/items/ID) give the same fields.
#pragma once

#include <nlohmann/json.hpp>

#include "ndrguard/web/routes.hpp"

namespace ndrguard::web {

nlohmann::json held_item_json(const item_view& it);

}  // namespace ndrguard::web
