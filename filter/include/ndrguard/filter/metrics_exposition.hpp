// `ndrguard serve`'s /metrics (Prometheus text format, prometheus-cpp's serializer), next to the
// filter's counters it exposes (metrics.hpp): those, and, read from PostgreSQL at scrape time (at
// most every 5 s), what every instance shares: storms open, the quarantine, releases and digests. Those database-wide values are the
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

namespace ndrguard::filter {

class metrics_endpoint {
public:
    // `wait`: how long a scrape waits for another that is reading the database (then it goes
    // on without the database-wide families).
    metrics_endpoint(const filter::filter_metrics& m, std::string conninfo, std::string version,
                     std::chrono::milliseconds wait = std::chrono::milliseconds(10000));
    ~metrics_endpoint();
    web::http_response handle(const web::http_request& req);  // GET /metrics; any thread

    // The families, for tests.
    std::vector<prometheus::MetricFamily> collect();

private:
    struct shared_values;
    const filter::filter_metrics& m_;
    std::string conninfo_, version_;
    std::chrono::milliseconds wait_;
    std::timed_mutex reading_;  // one scrape at a time reads the database, on db_
    std::unique_ptr<quarantine::database> db_;  // kept between scrapes, opened again after a failure
    std::mutex mu_;  // the cached values (never held while the database is read)
    std::shared_ptr<const shared_values> cache_;
    std::chrono::steady_clock::time_point cached_at_{};
    std::uint64_t scrape_errors_ = 0;
};

}  // namespace ndrguard::filter
