// `ndrguard scan`: classify message files offline.
#pragma once

#include <string>
#include <vector>

namespace ndrguard::app {

int run_scan(const std::vector<std::string>& args);
extern const char* const scan_usage;

}  // namespace ndrguard::app
