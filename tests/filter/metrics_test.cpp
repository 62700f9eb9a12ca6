#include <doctest/doctest.h>

#include "ndrguard/filter/metrics.hpp"

using ndrguard::filter::atomic_histogram;

TEST_CASE("histogram: each value in the first bucket whose bound it does not exceed; the sum kept") {
    atomic_histogram h;
    h.observe(0.0001);  // <= 0.0005
    h.observe(0.0005);  // on the bound: that bucket
    h.observe(0.003);   // <= 0.005
    h.observe(7.0);     // past every bound: +Inf
    h.observe(-1.0);    // a clock going backwards counts as zero
    const auto s = h.read();
    CHECK(s.count == 5);
    CHECK(s.buckets[0] == 3);
    CHECK(s.buckets[3] == 1);
    CHECK(s.buckets.back() == 1);
    CHECK(s.sum == doctest::Approx(7.0036));
}
