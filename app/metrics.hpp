// `ndrguard serve`'s /metrics (Prometheus text format, prometheus-cpp's serializer): the filter's
// own counters, and, read from PostgreSQL at scrape time (at most every 5 s), what every instance
// shares: storms open, the quarantine, releases and digests. Those database-wide values are the
// same on every instance: dashboards take max() of them, sum() of the others.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "ndrguard/filter/metrics.hpp"
#include "ndrguard/quarantine/database.hpp"
#include "ndrguard/web/routes.hpp"

namespace prometheus {
struct MetricFamily;
}

namespace ndrguard::app {

class metrics_endpoint {
public:
    metrics_endpoint(const filter::filter_metrics& m, std::string conninfo, std::string version);
    ~metrics_endpoint();
    web::http_response handle(const web::http_request& req);  // GET /metrics; any thread

    // The families, for tests.
    std::vector<prometheus::MetricFamily> collect();

private:
    struct shared_values;
    const filter::filter_metrics& m_;
    std::string conninfo_, version_;
    std::mutex mu_;  // the database connection and the cached values
    std::unique_ptr<quarantine::database> db_;  // kept between scrapes, opened again after a failure
    std::unique_ptr<shared_values> cache_;
    std::chrono::steady_clock::time_point cached_at_{};
    std::uint64_t scrape_errors_ = 0;
};

}  // namespace ndrguard::app
