// Times for people and for JSON, always UTC (the host's zone is not the reader's).
#pragma once

#include <chrono>
#include <ctime>
#include <string>

namespace ndrguard::web {

inline std::string utc_text(std::chrono::system_clock::time_point t, const char* strftime_format) {
    std::time_t tt = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, strftime_format, &tm);
    return buf;
}

}  // namespace ndrguard::web
