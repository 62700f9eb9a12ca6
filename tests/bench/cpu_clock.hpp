// Process CPU time, the clock of every benchmark here (wall time on a shared 2-core machine
// says more about the neighbours than about us).
#pragma once

#include <ctime>

namespace ndrguard::bench {

inline double cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
}

}  // namespace ndrguard::bench
