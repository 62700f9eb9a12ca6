// BENCH sent_log_scale: the sent log at the size of a large site. Loads IDS Message-IDs (10
// million by default) over DAYS day partitions (30) of the schema `ndrguard migrate` made, then
// for WARM_UP + SECONDS runs, at once and open-loop (Poisson arrivals at fixed rates):
//   - lookups at LOOKUP_RATE/s through async_sent_lookups, serve's own lookup path (one
//     non-blocking connection; lookups that arrive while a query runs go together as the next),
//     each naming one id (80%) or two (the original's and an In-Reply-To, 20%); half the ids
//     were sent (in the bounce window, some of them recorded during this run), half never were;
//     every answer is checked;
//   - records at RECORD_RATE/s through sent_log_writer (serve's group-commit record path);
//   - in the middle of the counted time, retention's drop of the oldest day
//     (sent_log::drop_days_before, on its own connection, as housekeeping does).
// Latency of a lookup is from its scheduled arrival to its answer (coordinated omission
// included). Reports loading time, size per million ids (pg_total_relation_size), lookup
// p50/p99, record throughput and commit latency, the time to drop a day, PostgreSQL's CPU, and,
// to say where a tail comes from: the server's own time per statement (pg_stat_statements,
// loaded by sent_log_scale.py), how late this process itself wakes after its timers (the
// machine's scheduling), the slowest lookups and when, and the lookup's plan (EXPLAIN ANALYZE
// of the generic plan serve uses). Last line:
//   BENCH name=sent_log_scale value=<p99 ms> unit=ms ratio=<p99/1 ms> reference=1ms-p99
// Exits 1 without a BENCH line when it cannot measure: no database, a lookup or record failing,
// a wrong answer.
// usage: bench_sent_log_scale --db CONNINFO [--ids N] [--days D] [--window-days W]
//        [--seconds S] [--warm-up S] [--lookup-rate R] [--record-rate R]
#include <libpq-fe.h>
#include <poll.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "ndrguard/detector/detector.hpp"
#include "ndrguard/quarantine/async_lookup.hpp"
#include "ndrguard/quarantine/database.hpp"
#include "ndrguard/quarantine/sent_log.hpp"
#include "ndrguard/quarantine/sent_log_writer.hpp"

namespace q = ndrguard::quarantine;
using std::chrono::steady_clock;
using std::chrono::system_clock;

namespace {

struct options {
    std::string db;
    long ids = 10'000'000;
    int days = 30;
    int window_days = 7;  // bounce_window_days' default
    double seconds = 60, warm_up = 10;
    double lookup_rate = 1000, record_rate = 300;
};

[[noreturn]] void usage(const char* why) {
    std::fprintf(stderr, "bench_sent_log_scale: %s\nusage: bench_sent_log_scale --db CONNINFO [--ids N] [--days D] "
                         "[--window-days W] [--seconds S] [--warm-up S] [--lookup-rate R] [--record-rate R]\n", why);
    std::exit(2);
}

options parse(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (i + 1 >= argc) usage(("missing value for " + a).c_str());
        const char* v = argv[++i];
        if (a == "--db") o.db = v;
        else if (a == "--ids") o.ids = std::atol(v);
        else if (a == "--days") o.days = std::atoi(v);
        else if (a == "--window-days") o.window_days = std::atoi(v);
        else if (a == "--seconds") o.seconds = std::atof(v);
        else if (a == "--warm-up") o.warm_up = std::atof(v);
        else if (a == "--lookup-rate") o.lookup_rate = std::atof(v);
        else if (a == "--record-rate") o.record_rate = std::atof(v);
        else usage(("unknown option " + a).c_str());
    }
    if (o.db.empty()) usage("--db is required");
    if (o.ids < o.days || o.days < 2 || o.window_days < 1 || o.window_days >= o.days || o.seconds <= 0 || o.warm_up < 0 ||
        o.lookup_rate <= 0 || o.record_rate <= 0)
        usage("bad value");
    return o;
}

double seconds_since(steady_clock::time_point t) { return std::chrono::duration<double>(steady_clock::now() - t).count(); }

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<std::size_t>(static_cast<double>(v.size()) * p))];
}

// splitmix64: a loaded id's random-looking part, from its row number alone, so that a lookup
// can name any loaded id again without keeping ten million strings.
std::uint64_t mix(std::uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

// Shaped like Postfix's own (YYYYMMDDhhmmss.QUEUEID@host), already normalised.
std::string loaded_id(q::day d, long row) {
    const std::string date = q::iso_date(d);
    char buf[96];
    std::snprintf(buf, sizeof buf, "%.4s%.2s%.2s.%016" PRIx64 ".%ld@mail.example.org", date.c_str(), date.c_str() + 5,
                  date.c_str() + 8, mix(static_cast<std::uint64_t>(row)), row);
    return buf;
}

std::string forged_id(std::mt19937_64& rng) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "forged.%016" PRIx64 "@mail.example.org", static_cast<std::uint64_t>(rng()));
    return buf;
}

// A raw libpq connection for what serve never does (loading, sizes, EXPLAIN).
struct pq {
    PGconn* c;
    explicit pq(const std::string& conninfo) : c(PQconnectdb(conninfo.c_str())) {
        if (PQstatus(c) != CONNECTION_OK) throw std::runtime_error(std::string("connecting: ") + PQerrorMessage(c));
    }
    ~pq() { PQfinish(c); }
    pq(const pq&) = delete;
    pq& operator=(const pq&) = delete;
    // Runs one statement; returns its rows' first columns joined by lines.
    std::string exec(const std::string& sql) {
        PGresult* r = PQexec(c, sql.c_str());
        const auto st = PQresultStatus(r);
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
            std::string e = PQresultErrorMessage(r);
            PQclear(r);
            throw std::runtime_error(sql.substr(0, 60) + ": " + e);
        }
        std::string out;
        for (int i = 0; i < PQntuples(r); ++i) {
            if (i) out += '\n';
            for (int j = 0; j < PQnfields(r); ++j) out += (j ? "\t" : "") + std::string(PQgetvalue(r, i, j));
        }
        PQclear(r);
        return out;
    }
};

// One day's rows through COPY ... FREEZE into a partition made in the same transaction by the
// schema's own function (the rows are written frozen: no vacuum debt to pay during the run, as
// on a site where autovacuum has long caught up). The day's index is filled as rows arrive, in
// hash order, as serve's records fill it.
long load_day(pq& db, q::day d, long first_row, long rows) {
    const std::string date = q::iso_date(d);
    db.exec("BEGIN");
    db.exec("SELECT ndrguard_create_day_partition('sent_log', '" + date + "')");
    PGresult* r = PQexec(db.c, ("COPY " + q::partition_name(d) +
                                " (sent_day, id_hash, message_id, sender, recipients, sent_at) FROM STDIN (FREEZE)").c_str());
    if (PQresultStatus(r) != PGRES_COPY_IN) throw std::runtime_error(std::string("COPY: ") + PQresultErrorMessage(r));
    PQclear(r);
    std::string buf;
    buf.reserve(1 << 21);
    char line[320];
    for (long j = 0; j < rows; ++j) {
        const long row = first_row + j;
        const std::string id = ndrguard::detector::normalize_message_id(loaded_id(d, row));
        const long second = j * 86400 / rows;
        const int n = std::snprintf(line, sizeof line, "%s\t%" PRId64 "\t%s\tuser%ld@example.org\t{rcpt%ld@example.net}\t%s %02ld:%02ld:%02ld+00\n",
                                    date.c_str(), q::message_id_hash(id), q::to_db_text(id).c_str(), row % 5000, row % 100000,
                                    date.c_str(), second / 3600, second / 60 % 60, second % 60);
        buf.append(line, static_cast<std::size_t>(n));
        if (buf.size() > (1 << 20) || j + 1 == rows) {
            if (PQputCopyData(db.c, buf.data(), static_cast<int>(buf.size())) != 1)
                throw std::runtime_error(std::string("COPY data: ") + PQerrorMessage(db.c));
            buf.clear();
        }
    }
    if (PQputCopyEnd(db.c, nullptr) != 1) throw std::runtime_error(std::string("COPY end: ") + PQerrorMessage(db.c));
    long copied = 0;
    while ((r = PQgetResult(db.c))) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK) throw std::runtime_error(std::string("COPY: ") + PQresultErrorMessage(r));
        copied += std::atol(PQcmdTuples(r));
        PQclear(r);
    }
    db.exec("COMMIT");
    return copied;
}

// CPU seconds of the cluster's processes (the postmaster's children: backends, checkpointer,
// WAL writer, autovacuum), from /proc.
double server_cpu_seconds(int postmaster) {
    double total = 0;
    const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
    std::ifstream list("/proc/" + std::to_string(postmaster) + "/task/" + std::to_string(postmaster) + "/children");
    int child;
    while (list >> child) {
        std::ifstream stat("/proc/" + std::to_string(child) + "/stat");
        std::string s((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
        const auto close = s.rfind(')');
        if (close == std::string::npos) continue;
        std::vector<std::string> f;
        std::size_t at = close + 2;
        while (at < s.size() && f.size() < 13) {
            const auto sp = s.find(' ', at);
            f.push_back(s.substr(at, sp - at));
            at = sp == std::string::npos ? s.size() : sp + 1;
        }
        if (f.size() == 13) total += (std::atof(f[11].c_str()) + std::atof(f[12].c_str())) / tick;  // utime, stime
    }
    return total;
}

int parent_of(int pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    const std::string s((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    const auto close = s.rfind(')');
    int parent = 0;
    if (close != std::string::npos) std::sscanf(s.c_str() + close + 2, "%*c %d", &parent);
    return parent;
}

struct lookup_sample {
    steady_clock::time_point at;  // scheduled arrival
    double ms;
};

}  // namespace

int main(int argc, char** argv) {
    const options o = parse(argc, argv);
    try {
        const std::string conninfo = q::conninfo_with_deadlines(o.db, 10000);  // database_timeout_ms' default
        pq admin(o.db);
        if (admin.exec("SELECT count(*) FROM pg_partition_tree('sent_log') WHERE isleaf") != "0") {
            std::printf("FAIL: the sent log is not empty (run on a fresh database made by ndrguard migrate): no BENCH line\n");
            return 1;
        }
        admin.exec("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");  // loaded by sent_log_scale.py
        const int postmaster = parent_of(std::atoi(admin.exec("SELECT pg_backend_pid()").c_str()));

        // Loading: day k of D holds rows [k*per_day, ...); the last day takes the remainder.
        const q::day today = q::utc_day(system_clock::now());
        const q::day first_day = today - std::chrono::days(o.days - 1);
        const long per_day = o.ids / o.days;
        auto day_rows = [&](int k) { return k == o.days - 1 ? o.ids - per_day * (o.days - 1) : per_day; };
        std::printf("loading %ld Message-IDs over %d days (%ld a day) through COPY into the day partitions\n", o.ids, o.days, per_day);
        std::fflush(stdout);
        const auto load_start = steady_clock::now();
        long loaded = 0;
        for (int k = 0; k < o.days; ++k) {
            loaded += load_day(admin, first_day + std::chrono::days(k), per_day * k, day_rows(k));
            if (k % 5 == 4 || k == o.days - 1) {
                std::printf("  %d days, %ld ids, %.0f s\n", k + 1, loaded, seconds_since(load_start));
                std::fflush(stdout);
            }
        }
        const double load_s = seconds_since(load_start);
        const auto analyze_start = steady_clock::now();
        admin.exec("ANALYZE sent_log");
        const double analyze_s = seconds_since(analyze_start);
        if (loaded != o.ids) {
            std::printf("FAIL: loaded %ld rows of %ld: no BENCH line\n", loaded, o.ids);
            return 1;
        }
        const std::string sizes = admin.exec(
            "SELECT sum(pg_total_relation_size(relid)), sum(pg_relation_size(relid)), sum(pg_indexes_size(relid)) "
            "FROM pg_partition_tree('sent_log') WHERE isleaf");
        double total_b = 0, heap_b = 0, index_b = 0;
        std::sscanf(sizes.c_str(), "%lf\t%lf\t%lf", &total_b, &heap_b, &index_b);
        const double millions = static_cast<double>(o.ids) / 1e6;
        std::printf("loaded %ld ids in %.1f s (%.0f ids/s), ANALYZE %.1f s\n", loaded, load_s, static_cast<double>(loaded) / load_s, analyze_s);
        std::printf("size: %.0f MB in all (heap %.0f MB, index %.0f MB): %.1f MB per million ids (heap %.1f, index %.1f)\n",
                    total_b / 1e6, heap_b / 1e6, index_b / 1e6, total_b / 1e6 / millions, heap_b / 1e6 / millions,
                    index_b / 1e6 / millions);
        std::fflush(stdout);

        // The run: lookups and records open-loop, retention's drop in the middle.
        q::async_sent_lookups lookups(conninfo, std::chrono::milliseconds(10000));
        q::sent_log_writer writer(conninfo, 1000, std::chrono::milliseconds(10000));
        std::mt19937_64 rng(15);
        std::exponential_distribution<double> lookup_gap(o.lookup_rate), record_gap(o.record_rate);
        std::uniform_real_distribution<double> unit(0, 1);
        auto gap = [](double s) { return std::chrono::duration_cast<steady_clock::duration>(std::chrono::duration<double>(s)); };

        std::mutex mu;  // the writer's callbacks come on its thread
        std::vector<std::string> recorded;  // committed ids of this run, named again by some lookups
        std::vector<double> record_ms;
        long records_submitted = 0, records_ok = 0, records_failed = 0, records_counted = 0;
        std::string first_error;
        std::vector<lookup_sample> lookup_ms;
        long lookups_submitted = 0, lookups_answered = 0, lookups_failed = 0, wrong = 0, ids_asked = 0, hits_asked = 0, recent_asked = 0;

        const auto start = steady_clock::now();
        const auto counted_from = start + gap(o.warm_up);
        const auto end = counted_from + gap(o.seconds);
        const auto drop_at = counted_from + gap(o.seconds / 2);
        auto next_lookup = start + gap(lookup_gap(rng));
        auto next_record = start + gap(record_gap(rng));
        std::thread dropper;
        std::atomic<bool> dropped{false};
        double drop_ms = 0;
        std::size_t drop_count = 0;
        std::string drop_error;
        steady_clock::time_point drop_started{}, drop_ended{};
        double cpu_server_start = 0;
        rusage ru0{};
        bool counting = false;
        std::vector<double> wake_late_ms;
        long record_serial = 0;

        while (true) {
            const auto now = steady_clock::now();
            if (!counting && now >= counted_from) {
                counting = true;
                admin.exec("SELECT pg_stat_statements_reset()");
                cpu_server_start = server_cpu_seconds(postmaster);
                getrusage(RUSAGE_SELF, &ru0);
            }
            if (now >= end) break;
            while (next_lookup <= now) {
                const auto at = next_lookup;
                next_lookup += gap(lookup_gap(rng));
                q::sent_lookup_request r;
                r.since = system_clock::now() - std::chrono::days(o.window_days);
                std::set<std::string> expected;
                const int n = unit(rng) < 0.2 ? 2 : 1;
                for (int i = 0; i < n; ++i) {
                    if (unit(rng) < 0.5) {
                        std::string id;
                        {
                            std::lock_guard<std::mutex> lock(mu);
                            if (!recorded.empty() && unit(rng) < 0.2) id = recorded[static_cast<std::size_t>(rng() % recorded.size())];
                        }
                        if (!id.empty()) {
                            ++recent_asked;
                        } else {  // a day strictly inside the window, a row of it
                            const int k = o.days - 1 - static_cast<int>(rng() % static_cast<std::uint64_t>(o.window_days));
                            id = loaded_id(first_day + std::chrono::days(k), per_day * k + static_cast<long>(rng() % static_cast<std::uint64_t>(day_rows(k))));
                        }
                        expected.insert(id);
                        r.message_ids.push_back("<" + id + ">");
                        ++hits_asked;
                    } else {
                        r.message_ids.push_back("<" + forged_id(rng) + ">");
                    }
                }
                ids_asked += n;
                ++lookups_submitted;
                const bool count = at >= counted_from;
                lookups.submit(std::move(r), [&, at, count, expected](bool ok, std::vector<q::sent_match>&& found, const std::string& error) {
                    ++lookups_answered;
                    if (!ok) {
                        ++lookups_failed;
                        if (first_error.empty()) first_error = "lookup: " + error;
                        return;
                    }
                    std::set<std::string> got;
                    for (const auto& m : found) got.insert(m.message_id);
                    if (got != expected) ++wrong;
                    if (count) lookup_ms.push_back({at, std::chrono::duration<double, std::milli>(steady_clock::now() - at).count()});
                });
            }
            while (next_record <= now) {
                const auto at = next_record;
                next_record += gap(record_gap(rng));
                char id[80];
                std::snprintf(id, sizeof id, "scale.%ld.%016" PRIx64 "@mail.example.org", ++record_serial, static_cast<std::uint64_t>(rng()));
                q::sent_message m{id, "alice@example.org", {"bob@example.net"}, system_clock::now()};
                ++records_submitted;
                const bool count = at >= counted_from;
                if (count) ++records_counted;
                writer.record_async(std::move(m), [&, at, count, copy = std::string(id)](bool ok, const std::string& error) {
                    const double ms = std::chrono::duration<double, std::milli>(steady_clock::now() - at).count();
                    std::lock_guard<std::mutex> lock(mu);
                    if (!ok) {
                        ++records_failed;
                        if (first_error.empty()) first_error = "record: " + error;
                        return;
                    }
                    ++records_ok;
                    recorded.push_back(copy);
                    if (count) record_ms.push_back(ms);
                });
            }
            if (!dropper.joinable() && now >= drop_at) {
                dropper = std::thread([&] {
                    try {
                        q::database db(conninfo);
                        q::sent_log log(db);
                        drop_started = steady_clock::now();
                        drop_count = log.drop_days_before(first_day + std::chrono::days(1));
                        drop_ended = steady_clock::now();
                        drop_ms = std::chrono::duration<double, std::milli>(drop_ended - drop_started).count();
                    } catch (const std::exception& e) {
                        drop_error = e.what();
                    }
                    dropped = true;
                });
            }
            const auto w = lookups.advance(steady_clock::now());
            const auto until = std::min({next_lookup, next_record, lookups.deadline(), end});
            const auto wait_ns = std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::nanoseconds>(until - steady_clock::now()).count());
            timespec ts{static_cast<time_t>(wait_ns / 1'000'000'000), static_cast<long>(wait_ns % 1'000'000'000)};
            pollfd pfd{lookups.socket(), static_cast<short>(w == q::async_sent_lookups::wait::read ? POLLIN : POLLOUT), 0};
            const int ready = w != q::async_sent_lookups::wait::none && pfd.fd >= 0 ? ppoll(&pfd, 1, &ts, nullptr) : ppoll(nullptr, 0, &ts, nullptr);
            // How late this process runs after its timer: the machine's share of every latency.
            if (ready == 0 && counting && wait_ns > 0)
                wake_late_ms.push_back(std::chrono::duration<double, std::milli>(steady_clock::now() - until).count());
        }
        const double cpu_server = server_cpu_seconds(postmaster) - cpu_server_start;
        // The server's own time per statement over the counted time (and the drain), the round
        // trip and the wait for the event loop excluded.
        const std::string statements = admin.exec(
            "SELECT CASE WHEN query LIKE 'INSERT INTO sent_log%' THEN 'record' ELSE 'lookup' END, calls, mean_exec_time, "
            "stddev_exec_time, max_exec_time FROM pg_stat_statements "
            "WHERE query LIKE 'INSERT INTO sent_log%' OR query LIKE 'SELECT message_id, extract(epoch FROM max(sent_at))%' ORDER BY 1");
        rusage ru1{};
        getrusage(RUSAGE_SELF, &ru1);
        auto tv = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
        const double cpu_self = tv(ru1.ru_utime) + tv(ru1.ru_stime) - tv(ru0.ru_utime) - tv(ru0.ru_stime);
        // What is still under way is answered (within the lookups' own 10 s bound).
        const auto drain_until = steady_clock::now() + std::chrono::seconds(15);
        while ((lookups_answered < lookups_submitted || [&] { std::lock_guard<std::mutex> l(mu); return records_ok + records_failed < records_submitted; }()) &&
               steady_clock::now() < drain_until) {
            const auto w = lookups.advance(steady_clock::now());
            pollfd pfd{lookups.socket(), static_cast<short>(w == q::async_sent_lookups::wait::read ? POLLIN : POLLOUT), 0};
            timespec ts{0, 1'000'000};
            if (w != q::async_sent_lookups::wait::none && pfd.fd >= 0) ppoll(&pfd, 1, &ts, nullptr);
            else ppoll(nullptr, 0, &ts, nullptr);
        }
        if (dropper.joinable()) dropper.join();

        std::vector<double> all_ms, drop_window_ms;
        for (const auto& s : lookup_ms) {
            all_ms.push_back(s.ms);
            if (dropped && drop_error.empty() && s.at >= drop_started - std::chrono::milliseconds(100) && s.at <= drop_ended + std::chrono::milliseconds(100))
                drop_window_ms.push_back(s.ms);
        }
        const double p50 = percentile(all_ms, 0.50), p90 = percentile(all_ms, 0.90), p99 = percentile(all_ms, 0.99),
                     p999 = percentile(all_ms, 0.999), max_ms = all_ms.empty() ? 0 : *std::max_element(all_ms.begin(), all_ms.end());
        std::printf("lookups: %zu counted over %.0f s (%.0f/s, after %.0f s of warm-up), %.2f ids each, %ld of %ld ids sent "
                    "(%ld recorded during the run), %" PRIu64 " queries for %ld lookups (%.2f a query)\n",
                    all_ms.size(), o.seconds, static_cast<double>(all_ms.size()) / o.seconds, o.warm_up,
                    static_cast<double>(ids_asked) / static_cast<double>(std::max(1L, lookups_submitted)), hits_asked, ids_asked,
                    recent_asked, lookups.queries(), lookups_submitted,
                    static_cast<double>(lookups_submitted) / static_cast<double>(std::max<std::uint64_t>(1, lookups.queries())));
        std::printf("lookup latency (arrival to answer): p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, max %.3f ms; "
                    "failed %ld, wrong answers %ld\n", p50, p90, p99, p999, max_ms, lookups_failed, wrong);
        {
            std::lock_guard<std::mutex> lock(mu);
            std::printf("records: %ld counted, %zu committed in the counted time (%.0f/s asked %.0f/s), %" PRIu64 " batches in all; "
                        "commit latency p50 %.2f ms, p99 %.2f ms; failed %ld\n",
                        records_counted, record_ms.size(), static_cast<double>(record_ms.size()) / o.seconds, o.record_rate,
                        writer.batches(), percentile(record_ms, 0.5), percentile(record_ms, 0.99), records_failed);
        }
        {  // where the tail is: the slowest lookups, and when (seconds into the counted time)
            auto slow = lookup_ms;
            std::sort(slow.begin(), slow.end(), [](const lookup_sample& a, const lookup_sample& b) { return a.ms > b.ms; });
            std::string list;
            for (std::size_t i = 0; i < std::min<std::size_t>(8, slow.size()); ++i) {
                char item[48];
                std::snprintf(item, sizeof item, "%s%.1f ms at %.2f s", i ? ", " : "", slow[i].ms,
                              std::chrono::duration<double>(slow[i].at - counted_from).count());
                list += item;
            }
            std::printf("slowest lookups: %s (the day was dropped at %.2f s)\n", list.c_str(),
                        std::chrono::duration<double>(drop_started - counted_from).count());
        }
        if (!drop_error.empty()) std::printf("drop a day: FAILED: %s\n", drop_error.c_str());
        else
            std::printf("drop a day (%zu partition of %ld ids, sent_log::drop_days_before under load): %.1f ms; lookups arriving "
                        "meanwhile: %zu, max %.3f ms\n", drop_count, day_rows(0), drop_ms, drop_window_ms.size(),
                        drop_window_ms.empty() ? 0.0 : *std::max_element(drop_window_ms.begin(), drop_window_ms.end()));
        std::printf("this process woken late after its timers (the machine's scheduling): p50 %.3f ms, p99 %.3f ms, max %.3f ms\n",
                    percentile(wake_late_ms, 0.5), percentile(wake_late_ms, 0.99),
                    wake_late_ms.empty() ? 0.0 : *std::max_element(wake_late_ms.begin(), wake_late_ms.end()));
        for (std::size_t at = 0; at < statements.size();) {
            const auto nl = statements.find('\n', at);
            char what[16] = "";
            double calls = 0, mean = 0, stddev = 0, max = 0;
            if (std::sscanf(statements.substr(at, nl - at).c_str(), "%15s\t%lf\t%lf\t%lf\t%lf", what, &calls, &mean, &stddev, &max) == 5)
                std::printf("server time per %s statement (pg_stat_statements): %.0f calls, mean %.3f ms, stddev %.3f ms, max %.3f ms\n",
                            what, calls, mean, stddev, max);
            at = nl == std::string::npos ? statements.size() : nl + 1;
        }
        std::printf("CPU over the counted time: PostgreSQL %.1f s (%.0f%% of one core), this process %.1f s (%.0f%%)\n", cpu_server,
                    100 * cpu_server / o.seconds, cpu_self, 100 * cpu_self / o.seconds);

        // The plan serve's lookup runs (generic, as async_sent_lookups prepares it), for one id sent.
        const int k = o.days - 2;
        const std::string one = loaded_id(first_day + std::chrono::days(k), per_day * k + 12345 % day_rows(k));
        const q::lookup_query lq = q::lookup_query_for({one}, system_clock::now() - std::chrono::days(o.window_days));
        admin.exec("SET plan_cache_mode = force_generic_plan");
        admin.exec(std::string("PREPARE bench_lookup AS ") + q::sent_lookup_sql);
        std::printf("EXPLAIN (ANALYZE, BUFFERS) of the lookup (generic plan, one id, window %d days):\n", o.window_days);
        const std::string plan = admin.exec("EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_lookup('" + lq.hashes + "', '" + lq.ids +
                                            "', '" + lq.since_day + "')");
        for (std::size_t at = 0; at < plan.size();) {
            const auto nl = plan.find('\n', at);
            std::printf("  %s\n", plan.substr(at, nl - at).c_str());
            at = nl == std::string::npos ? plan.size() : nl + 1;
        }

        if (lookups_failed || records_failed || wrong || !drop_error.empty() || all_ms.empty() || lookups_answered < lookups_submitted) {
            std::printf("FAIL: %ld lookups failed, %ld wrong, %ld unanswered, %ld records failed%s%s: no BENCH line\n", lookups_failed,
                        wrong, lookups_submitted - lookups_answered, records_failed, first_error.empty() ? "" : "; first: ",
                        first_error.c_str());
            return 1;
        }
        std::printf("BENCH name=sent_log_scale value=%.3f unit=ms ratio=%.3f reference=1ms-p99\n", p99, p99 / 1.0);
        return 0;
    } catch (const std::exception& e) {
        std::printf("FAIL: %s: no BENCH line\n", e.what());
        return 1;
    }
}
