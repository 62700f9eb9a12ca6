#pragma once

#include <string>
#include <vector>

namespace ndrguard::app {

extern const char* const doctor_usage;
int run_doctor(const std::vector<std::string>& args);

}  // namespace ndrguard::app
