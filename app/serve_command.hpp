// `ndrguard serve`: the content filter daemon.
#pragma once

#include <string>
#include <vector>

namespace ndrguard::app {

int run_serve(const std::vector<std::string>& args);
extern const char* const serve_usage;

}  // namespace ndrguard::app
