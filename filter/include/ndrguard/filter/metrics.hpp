// What `ndrguard serve` counts, as plain atomics: the filter updates them on its hot path with
// relaxed increments, the metrics endpoint (app/metrics.cpp, prometheus-cpp) reads them when
// scraped. No labels beyond these fixed sets: nothing here can hold an address.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

namespace ndrguard::filter {

// A histogram with fixed upper bounds (seconds), lock-free.
class atomic_histogram {
public:
    static constexpr std::array<double, 12> bounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                      0.05,   0.1,   0.25,   0.5,   1.0,  5.0};
    void observe(double seconds);
    struct snapshot {
        std::array<std::uint64_t, bounds.size() + 1> buckets{};  // not cumulative; the last is +Inf
        std::uint64_t count = 0;
        double sum = 0;
    };
    snapshot read() const;

private:
    std::array<std::atomic<std::uint64_t>, bounds.size() + 1> buckets_{};
    std::atomic<std::uint64_t> sum_ns_{0};
};

struct filter_metrics {
    // Label values, in index order.
    static constexpr std::array<std::string_view, 2> directions = {"inbound", "outbound"};
    static constexpr std::array<std::string_view, 9> classes = {"not_bounce", "dsn",  "ndr",      "autoreply", "challenge",
                                                                "virus_notice", "mdn", "feedback", "none"};
    // filter::verification's values in its order, then "none" (not a bounce, outbound).
    static constexpr std::array<std::string_view, 5> verifications = {"verified", "forged", "unverifiable", "suspect", "none"};
    static constexpr std::size_t no_verification = 4;
    static constexpr std::array<std::string_view, 5> actions = {"deliver", "reject", "quarantine", "tempfail", "dropped"};
    static constexpr std::array<std::string_view, 4> db_operations = {"lookup", "record", "hold", "storm_sync"};

    // [direction][class][verification][action]
    std::array<std::array<std::array<std::array<std::atomic<std::uint64_t>, 5>, 5>, 9>, 2> messages{};
    void count_message(std::size_t direction, std::size_t klass, std::size_t verification, std::size_t action) {
        messages[direction][klass][verification][action].fetch_add(1, std::memory_order_relaxed);
    }

    // Inbound bounces by evidence tag (filter/verdict.hpp evidence_tags(), in its order).
    static constexpr std::size_t evidence_tag_count = 13;
    std::array<std::atomic<std::uint64_t>, evidence_tag_count> evidence{};

    std::atomic<std::uint64_t> storms_started{0}, storms_ended{0};
    std::atomic<std::uint64_t> lookups_found{0}, lookups_not_found{0}, lookups_failed{0};
    std::atomic<std::uint64_t> lookup_queries{0};  // queries sent: lookups go in batches
    atomic_histogram lookup_seconds;
    std::atomic<std::uint64_t> records{0};
    std::atomic<std::uint64_t> sessions{0};
    std::atomic<std::int64_t> sessions_active{0};
    atomic_histogram message_seconds;
    std::atomic<std::uint64_t> next_hop_failures{0};
    std::array<std::atomic<std::uint64_t>, 4> database_errors{};
    void count_database_error(std::size_t operation) { database_errors[operation].fetch_add(1, std::memory_order_relaxed); }

    // The policy service (policy_listen): answers by result (policy::result, and malformed:
    // closed without an answer), the time to answer one, connections open.
    static constexpr std::array<std::string_view, 6> policy_results = {"dunno", "reject", "would_reject", "fail_open", "deferred",
                                                                       "malformed"};
    std::array<std::atomic<std::uint64_t>, 6> policy_requests{};
    atomic_histogram policy_seconds;
    std::atomic<std::int64_t> policy_connections_active{0};
};

}  // namespace ndrguard::filter
