// Storm mode per mailbox, as one filter instance sees it. Pure: time is a parameter, nothing here
// reads a clock or talks to a server.
//
// Each instance adds up the bounces it sees per mailbox and time bucket in memory (`observe`);
// a sync thread hands those deltas to PostgreSQL a few times a second (`take_pending`, then
// storm_sync in storms.hpp) and feeds back what the database says of the same mailboxes: the
// window count summed over every instance, and the open storm if there is one (`apply_sync`).
// So instances agree on the state after one sync, and between syncs an instance also counts what
// it has not written yet: a storm is noticed on the message that crosses the threshold.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ndrguard::quarantine {

using clock_time = std::chrono::system_clock::time_point;

struct storm_settings {
    std::int64_t threshold = 50;           // bounces in the window that start a storm
    std::int64_t exit_threshold = 10;      // below this the storm goes quiet ...
    std::chrono::seconds window{600};      // the sliding window
    std::chrono::seconds cool_down{1800};  // ... and ends after being quiet this long
    std::chrono::seconds bucket{10};       // counter granularity (the window slides by buckets)
    std::size_t max_sample_subjects = 5;
    std::size_t max_reporters_per_delta = 32;  // distinct reporting MTAs kept per mailbox and sync
    std::size_t max_mailboxes = 100000;        // mailboxes remembered between syncs
};

// Counts of bounces by verdict and by what was done with them.
struct ndr_tally {
    std::int64_t verified = 0, forged = 0, unverifiable = 0;
    std::int64_t delivered = 0, rejected = 0, quarantined = 0, dropped = 0;
    std::int64_t bounces() const { return verified + forged + unverifiable; }
    ndr_tally& operator+=(const ndr_tally& o);
    bool operator==(const ndr_tally&) const = default;
};

// What one instance saw for one mailbox in one bucket since its last sync.
struct storm_delta {
    std::string mailbox;
    clock_time bucket;  // start of the bucket
    ndr_tally tally;
    std::vector<std::pair<std::string, std::int64_t>> reporters;  // reporting MTA -> messages
    std::vector<std::string> sample_subjects;
};

// What the database says of a mailbox after a sync.
struct mailbox_storm_state {
    std::string mailbox;
    std::int64_t window_count = 0;  // bounces in the window, all instances
    std::int64_t storm_id = 0;      // the open storm, 0 if none
};

class storm_tracker {
public:
    explicit storm_tracker(storm_settings s) : settings_(std::move(s)) {}

    const storm_settings& settings() const { return settings_; }

    // Is the mailbox in storm mode (as of the last sync, counting what is not written yet)?
    bool in_storm(const std::string& mailbox) const;
    // The open storm's id as of the last sync (0: none known yet).
    std::int64_t storm_id(const std::string& mailbox) const;

    // Counts one bounce for a mailbox. Returns in_storm() afterwards.
    bool observe(const std::string& mailbox, const ndr_tally& t, std::string_view reporting_mta,
                 std::string_view original_subject, clock_time now);

    // The deltas to write; the tracker forgets them (give them back with restore() if the write
    // fails, so that nothing is lost or counted twice).
    std::vector<storm_delta> take_pending();
    void restore(std::vector<storm_delta> deltas);

    // The mailboxes whose state should be read at the next sync even without new deltas: those
    // in an open storm (it may end, or another instance may have ended it).
    std::vector<std::string> watched_mailboxes() const;

    void apply_sync(const std::vector<mailbox_storm_state>& states);

    std::size_t pending_mailboxes() const { return pending_.size(); }
    std::size_t storms_open() const;

    clock_time bucket_of(clock_time t) const;

private:
    struct known {
        std::int64_t window_count = 0;
        std::int64_t storm_id = 0;
        std::int64_t unsynced = 0;  // observed since the last sync
    };
    storm_settings settings_;
    std::map<std::pair<std::string, clock_time>, storm_delta> pending_;
    std::map<std::string, known> known_;
};

// Lower case (ASCII letters only) for the domain and the local part: mailboxes are counted and
// held case-blind. Other bytes are kept as they are: a UTF-8 address stays itself. Addresses that
// are not valid UTF-8 never become mailboxes (the filter refuses or passes them unfiltered).
std::string mailbox_key(std::string_view address);

}  // namespace ndrguard::quarantine
