#include "ndrguard/filter/metrics_exposition.hpp"
#include "ndrguard/filter/verdict.hpp"

#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <map>
#include <sstream>

#include "ndrguard/quarantine/database.hpp"
#include "ndrguard/quarantine/metrics_queries.hpp"

namespace ndrguard::filter {

namespace pm = prometheus;

struct metrics_endpoint::shared_values {
    bool ok = false;
    quarantine::metrics_snapshot totals;
};

namespace {

pm::MetricFamily family(std::string name, std::string help, pm::MetricType type) {
    pm::MetricFamily f;
    f.name = std::move(name);
    f.help = std::move(help);
    f.type = type;
    return f;
}

pm::ClientMetric value(double v, pm::MetricType type, std::vector<pm::ClientMetric::Label> labels = {}) {
    pm::ClientMetric c;
    c.label = std::move(labels);
    if (type == pm::MetricType::Counter) c.counter.value = v;
    else c.gauge.value = v;
    return c;
}

pm::MetricFamily single(std::string name, std::string help, pm::MetricType type, double v) {
    auto f = family(std::move(name), std::move(help), type);
    f.metric.push_back(value(v, type));
    return f;
}

pm::MetricFamily histogram(std::string name, std::string help, const filter::atomic_histogram& h) {
    auto f = family(std::move(name), std::move(help), pm::MetricType::Histogram);
    const auto s = h.read();
    pm::ClientMetric c;
    c.histogram.sample_count = s.count;
    c.histogram.sample_sum = s.sum;
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < filter::atomic_histogram::bounds.size(); ++i) {
        cumulative += s.buckets[i];
        c.histogram.bucket.push_back({cumulative, filter::atomic_histogram::bounds[i]});
    }
    c.histogram.bucket.push_back({s.count, std::numeric_limits<double>::infinity()});
    f.metric.push_back(std::move(c));
    return f;
}

double load(const std::atomic<std::uint64_t>& a) { return static_cast<double>(a.load(std::memory_order_relaxed)); }

}  // namespace

metrics_endpoint::metrics_endpoint(const filter::filter_metrics& m, std::string conninfo, std::string version,
                                   std::chrono::milliseconds wait)
    : m_(m), conninfo_(std::move(conninfo)), version_(std::move(version)), wait_(wait) {}

metrics_endpoint::~metrics_endpoint() = default;

std::vector<pm::MetricFamily> metrics_endpoint::collect() {
    using T = pm::MetricType;
    std::vector<pm::MetricFamily> out;
    auto info = family("ndrguard_build_info", "The version of ndrguard running (always 1).", T::Gauge);
    info.metric.push_back(value(1, T::Gauge, {{"version", version_}}));
    out.push_back(std::move(info));

    auto messages = family("ndrguard_messages_total",
                           "Messages the filter answered, by direction, detector class, verification and action "
                           "(tempfail: Postfix was told 4xx and keeps it).",
                           T::Counter);
    using fm = filter::filter_metrics;
    for (std::size_t d = 0; d < fm::directions.size(); ++d)
        for (std::size_t c = 0; c < fm::classes.size(); ++c)
            for (std::size_t v = 0; v < fm::verifications.size(); ++v)
                for (std::size_t a = 0; a < fm::actions.size(); ++a) {
                    const auto n = m_.messages[d][c][v][a].load(std::memory_order_relaxed);
                    if (n == 0) continue;  // only the combinations seen (a few dozen at most)
                    messages.metric.push_back(value(static_cast<double>(n), T::Counter,
                                                    {{"action", std::string(fm::actions[a])},
                                                     {"class", std::string(fm::classes[c])},
                                                     {"direction", std::string(fm::directions[d])},
                                                     {"verification", std::string(fm::verifications[v])}}));
                }
    out.push_back(std::move(messages));
    auto evidence = family("ndrguard_evidence_total",
                           "Inbound bounces by the evidence their verdict rests on (a bounce counts once for each of its tags).",
                           T::Counter);
    for (std::size_t i = 0; i < filter::evidence_tags().size() && i < fm::evidence_tag_count; ++i)
        evidence.metric.push_back(
            value(load(m_.evidence[i]), T::Counter, {{"tag", std::string(filter::evidence_tags()[i])}}));
    out.push_back(std::move(evidence));
    out.push_back(single("ndrguard_storms_started_total", "Storms this instance opened (a mailbox passed storm_threshold).",
                         T::Counter, load(m_.storms_started)));
    out.push_back(single("ndrguard_storms_ended_total", "Storms this instance closed (quiet for the cool-down).", T::Counter,
                         load(m_.storms_ended)));
    auto lookups = family("ndrguard_sent_log_lookups_total", "Sent-log lookups of bounces, by result.", T::Counter);
    lookups.metric.push_back(value(load(m_.lookups_found), T::Counter, {{"result", "found"}}));
    lookups.metric.push_back(value(load(m_.lookups_not_found), T::Counter, {{"result", "not_found"}}));
    lookups.metric.push_back(value(load(m_.lookups_failed), T::Counter, {{"result", "error"}}));
    out.push_back(std::move(lookups));
    out.push_back(single("ndrguard_sent_log_lookup_queries_total",
                         "Queries sent to PostgreSQL for sent-log lookups (lookups asked at the same time share one).",
                         T::Counter, load(m_.lookup_queries)));
    out.push_back(histogram("ndrguard_sent_log_lookup_duration_seconds", "Time from asking the sent log to its answer.",
                            m_.lookup_seconds));
    out.push_back(single("ndrguard_sent_log_records_total", "Outbound Message-IDs recorded in the sent log.", T::Counter,
                         load(m_.records)));
    out.push_back(single("ndrguard_smtp_sessions_total", "SMTP sessions accepted.", T::Counter, load(m_.sessions)));
    out.push_back(single("ndrguard_smtp_sessions_active", "SMTP sessions open now.", T::Gauge,
                         static_cast<double>(m_.sessions_active.load(std::memory_order_relaxed))));
    out.push_back(histogram("ndrguard_message_duration_seconds", "Time from a message's final dot to the filter's answer.",
                            m_.message_seconds));
    out.push_back(single("ndrguard_next_hop_failures_total", "Reinjections the next hop did not accept (refused or unreachable).",
                         T::Counter, load(m_.next_hop_failures)));

    auto policy = family("ndrguard_policy_requests_total",
                         "Policy service requests (check_policy_service at RCPT) by result: reject (550), dunno, "
                         "would_reject (shadow), fail_open (storm state stale), deferred (defer_to_data), malformed "
                         "(closed unanswered).",
                         T::Counter);
    for (std::size_t i = 0; i < fm::policy_results.size(); ++i)
        policy.metric.push_back(value(load(m_.policy_requests[i]), T::Counter, {{"result", std::string(fm::policy_results[i])}}));
    out.push_back(std::move(policy));
    out.push_back(histogram("ndrguard_policy_request_duration_seconds",
                            "Time from a policy request's last byte to its answer being decided.", m_.policy_seconds));
    out.push_back(single("ndrguard_policy_connections_active", "Policy service connections open now.", T::Gauge,
                         static_cast<double>(m_.policy_connections_active.load(std::memory_order_relaxed))));

    // Database-wide values, cached for 5 s (several Prometheus servers may scrape). A scrape
    // that finds another reading them waits at most wait_ (the database may be frozen: the
    // filter's own counters are what matter then), and goes on without them.
    auto fresh_cache = [&] {
        std::lock_guard lock(mu_);
        return cache_ && std::chrono::steady_clock::now() - cached_at_ <= std::chrono::seconds(5) ? cache_ : nullptr;
    };
    std::shared_ptr<const shared_values> values = fresh_cache();
    if (!values) {
        std::unique_lock reading(reading_, std::defer_lock);
        if (reading.try_lock_for(wait_) && !(values = fresh_cache())) {
            auto fresh = std::make_shared<shared_values>();
            // A kept connection may have died with a server restart: one more try on a new one.
            for (int attempt = 0; attempt < 2 && !fresh->ok; ++attempt) {
                const bool kept = db_ != nullptr;
                try {
                    if (!db_) db_ = std::make_unique<quarantine::database>(conninfo_);
                    fresh->totals = quarantine::metrics_totals(*db_);
                    fresh->ok = true;
                } catch (const std::exception&) {
                    db_.reset();
                    if (!kept) break;  // a new connection failed: the database is down
                }
            }
            std::lock_guard lock(mu_);
            if (!fresh->ok) ++scrape_errors_;
            cache_ = fresh;
            cached_at_ = std::chrono::steady_clock::now();
            values = std::move(fresh);
        }
    }
    std::uint64_t scrape_errors = 0;
    {
        std::lock_guard lock(mu_);
        scrape_errors = scrape_errors_;
    }
    auto errors = family("ndrguard_database_errors_total", "Failed database operations, by operation.", T::Counter);
    for (std::size_t i = 0; i < fm::db_operations.size(); ++i)
        errors.metric.push_back(value(load(m_.database_errors[i]), T::Counter, {{"operation", std::string(fm::db_operations[i])}}));
    errors.metric.push_back(value(static_cast<double>(scrape_errors), T::Counter, {{"operation", "scrape"}}));
    out.push_back(std::move(errors));
    if (!values || !values->ok) return out;  // the database-wide families are absent rather than wrong
    const auto& t = values->totals;
    out.push_back(single("ndrguard_storm_mailboxes", "Mailboxes in storm mode now (all instances).", T::Gauge,
                         static_cast<double>(t.storms_open)));
    out.push_back(single("ndrguard_quarantine_items", "Messages held in the quarantine now.", T::Gauge,
                         static_cast<double>(t.held_items)));
    out.push_back(single("ndrguard_quarantine_oldest_item_age_seconds", "Age of the oldest held message (0: none held).",
                         T::Gauge, t.oldest_held_age_seconds));
    auto releases = family("ndrguard_releases_total",
                           "Release attempts by result (uncertain: handed over, then no answer for over an hour).", T::Counter);
    for (const char* r : {"released", "failed", "uncertain"})
        releases.metric.push_back(value(static_cast<double>(t.releases.count(r) ? t.releases.at(r) : 0), T::Counter, {{"result", r}}));
    out.push_back(std::move(releases));
    auto digests = family("ndrguard_digests_total",
                          "Digests by result (abandoned: the pass stopped before sending and another took over; "
                          "uncertain: handed over, then no answer for over an hour).",
                          T::Counter);
    for (const char* r : {"sent", "failed", "abandoned", "uncertain"})
        digests.metric.push_back(value(static_cast<double>(t.digests.count(r) ? t.digests.at(r) : 0), T::Counter, {{"result", r}}));
    out.push_back(std::move(digests));
    out.push_back(single("ndrguard_digest_last_success_timestamp_seconds", "When the last digest was sent (Unix time; 0: never).",
                         T::Gauge, t.last_digest_sent));
    return out;
}

web::http_response metrics_endpoint::handle(const web::http_request& req) {
    if (req.target != "/metrics" && req.target.rfind("/metrics?", 0) != 0)
        return {404, "text/plain; charset=utf-8", "not found: the metrics are at /metrics\n"};
    if (req.method != "GET" && req.method != "HEAD") return {405, "text/plain; charset=utf-8", "method not allowed\n"};
    std::ostringstream body;
    pm::TextSerializer().Serialize(body, collect());
    return {200, "text/plain; version=0.0.4; charset=utf-8", body.str()};
}

}  // namespace ndrguard::filter
