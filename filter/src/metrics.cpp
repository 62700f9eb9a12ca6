#include "ndrguard/filter/metrics.hpp"

#include <cmath>

namespace ndrguard::filter {

void atomic_histogram::observe(double seconds) {
    if (!(seconds >= 0)) seconds = 0;  // NaN and clock oddities count as zero
    std::size_t i = 0;
    while (i < bounds.size() && seconds > bounds[i]) ++i;
    buckets_[i].fetch_add(1, std::memory_order_relaxed);
    sum_ns_.fetch_add(static_cast<std::uint64_t>(std::llround(seconds * 1e9)), std::memory_order_relaxed);
}

atomic_histogram::snapshot atomic_histogram::read() const {
    snapshot s;
    for (std::size_t i = 0; i < buckets_.size(); ++i) {
        s.buckets[i] = buckets_[i].load(std::memory_order_relaxed);
        s.count += s.buckets[i];
    }
    s.sum = static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9;
    return s;
}

}  // namespace ndrguard::filter
