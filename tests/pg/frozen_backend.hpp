// Real faults for the PostgreSQL tests: a backend found by its application_name and frozen with
// SIGSTOP, thawed when the scope ends or after 20 s at the latest (so that a wait that is not
// bounded shows as a failure, not as a hang). Header-only; each test file has its own conninfo.
#pragma once

#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>

namespace ndrguard::test {

// The backend process of the connections named `app` (-1: none), asked with psql.
inline int backend_pid(const std::string& conninfo, const std::string& app) {
    const std::string cmd = "psql -X -Atq '" + conninfo + "' -c \"SELECT pid FROM pg_stat_activity WHERE application_name = '" +
                            app + "'\"";
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) return -1;
    int pid = -1;
    if (std::fscanf(p, "%d", &pid) != 1) pid = -1;
    ::pclose(p);
    return pid;
}

struct frozen_backend {
    explicit frozen_backend(int p) : pid(p), thaw_anyway([this] {
        std::unique_lock lock(mu);
        done.wait_for(lock, std::chrono::seconds(20), [&] { return over; });
        ::kill(pid, SIGCONT);
    }) {
        ::kill(pid, SIGSTOP);
    }
    ~frozen_backend() {
        {
            std::lock_guard lock(mu);
            over = true;
        }
        done.notify_all();
        thaw_anyway.join();
    }
    int pid;
    std::mutex mu;
    std::condition_variable done;
    bool over = false;
    std::thread thaw_anyway;
};

}  // namespace ndrguard::test
