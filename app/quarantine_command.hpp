#pragma once

#include <string>
#include <vector>

namespace ndrguard::app {

extern const char* const quarantine_usage;
int run_quarantine(const std::vector<std::string>& args);

}  // namespace ndrguard::app
