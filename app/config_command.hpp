// `ndrguard config`: the effective settings, the defaults, or what differs (postconf, -d, -n).
#pragma once

#include <string>
#include <vector>

namespace ndrguard::app {

int run_config(const std::vector<std::string>& args);
extern const char* const config_usage;

}  // namespace ndrguard::app
