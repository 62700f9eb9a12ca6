// Group commit for the sent log: sessions hand their outbound messages to one writer thread,
// which writes whatever has gathered in one transaction and wakes each session when its own
// record is committed (or failed). Thousands of messages a second then cost a few transactions
// a second; each session still answers 250 only after its record is durable.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "ndrguard/quarantine/database.hpp"

namespace ndrguard::quarantine {

class sent_log_writer {
public:
    // Connects lazily (and again after a failure) with `conninfo`.
    sent_log_writer(std::string conninfo, std::size_t max_batch = 1000);
    ~sent_log_writer();
    sent_log_writer(const sent_log_writer&) = delete;
    sent_log_writer& operator=(const sent_log_writer&) = delete;

    // Blocks until the message is committed (true) or its batch failed (false, with `error`).
    bool record(sent_message m, std::string& error);

    std::uint64_t batches() const;  // transactions written so far (for logs and metrics)

private:
    struct pending {
        sent_message message;
        bool done = false;
        bool ok = false;
        std::string error;
    };
    void run();

    std::string conninfo_;
    std::size_t max_batch_;
    mutable std::mutex mu_;
    std::condition_variable wake_writer_, wake_waiters_;
    std::deque<std::shared_ptr<pending>> queue_;
    bool stopping_ = false;
    std::uint64_t batches_ = 0;
    std::thread thread_;
};

}  // namespace ndrguard::quarantine
