#pragma once

#include <string>
#include <vector>

namespace ndrguard::app {

extern const char* const digest_usage;
int run_digest(const std::vector<std::string>& args);

}  // namespace ndrguard::app
