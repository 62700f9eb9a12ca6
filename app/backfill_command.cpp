// `ndrguard backfill`: Postfix's mail logs (plain or gzip, read with zlib, which passes plain
// files through) joined by backfill::joiner, the outbound Message-IDs recorded in the sent log
// on the day of their status=sent line. Idempotent: the sent log itself does not deduplicate
// (record() inserts), so each batch is looked up first and only ids not there are recorded.
#include "backfill_command.hpp"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <iostream>
#include <set>

#include "config_args.hpp"
#include "ndrguard/backfill/maillog.hpp"
#include "ndrguard/detector/detector.hpp"
#include "ndrguard/quarantine/database.hpp"
#include "ndrguard/quarantine/sent_log.hpp"

namespace ndrguard::app {

const char* const backfill_usage =
    "usage: ndrguard backfill [--since DAYSd] [--dry-run] [--config FILE] [--set KEY=VALUE]...\n"
    "                         [--db CONNINFO] LOGFILE...\n"
    "\n"
    "Reads Postfix's mail logs (plain or .gz; syslog \"Dec  2 04:42:55\" lines, ISO 8601 and\n"
    "RFC 5424 lines as rsyslog writes them, Postfix's own maillog_file) and records in the sent\n"
    "log the Message-ID of every message that came from our_networks, from an authenticated\n"
    "client (sasl_username=) or from local submission (pickup), and was delivered (status=sent),\n"
    "on the day of its delivery line. Lines are joined by queue id (smtpd client=, pickup,\n"
    "cleanup message-id=, the delivery agents' to=... status=sent, qmgr removed). Ids already in\n"
    "the sent log are not recorded again: running it twice records nothing new. Syslog lines carry\n"
    "no year and no zone: the year is inferred (a line more than a day in the future is last\n"
    "year's), the zone is this machine's (TZ). Prints what it read, skipped and dropped (by\n"
    "reason) and recorded. Files are read in the order given: give rotated logs oldest first.\n"
    "\n"
    "  --since DAYSd    only messages delivered in the last DAYS days (default: bounce_window_days)\n"
    "  --dry-run        look up, record nothing (and apply no schema migration; a real run\n"
    "                   applies them first, as serve does)\n"
    "  --config FILE, --set KEY=VALUE, --db CONNINFO, --sql-dir DIR: as for serve (our_networks,\n"
    "                   database)\n"
    "  -h, --help       show this text\n"
    "\n"
    "Exit status: 0 done; 1 a file could not be read or the database failed; 2 usage error.\n";

namespace {

namespace bf = ndrguard::backfill;
namespace q = ndrguard::quarantine;
using clock = std::chrono::system_clock;

int usage_error(const std::string& why) {
    std::cerr << "ndrguard backfill: " << why << "\n\n" << backfill_usage;
    return 2;
}

std::chrono::seconds local_utc_offset(clock::time_point now) {
    const std::time_t t = clock::to_time_t(now);
    std::tm local{};
    localtime_r(&t, &local);
    return std::chrono::seconds(local.tm_gmtoff);
}

struct totals {
    std::uint64_t recorded = 0, already = 0, older = 0, duplicate = 0, bad_id = 0;
};

// Records one batch of joined messages (with `write`; a dry run only counts): ids already in
// the sent log, or twice in the batch, are left out. A dry run's count may include an id
// repeated in two batches, since the first is not written.
void record_batch(q::sent_log& log, bool write, std::vector<bf::outbound>& batch, clock::time_point since, totals& t) {
    std::vector<q::sent_message> todo;
    std::vector<std::string> ids;
    std::set<std::string> in_batch;
    clock::time_point earliest = clock::time_point::max();
    for (auto& m : batch) {
        if (m.sent_at < since) {
            ++t.older;
            continue;
        }
        std::string id = detector::normalize_message_id(m.message_id);
        if (id.empty()) {
            ++t.bad_id;
            continue;
        }
        if (!in_batch.insert(id).second) {
            ++t.duplicate;
            continue;
        }
        earliest = std::min(earliest, m.sent_at);
        ids.push_back(id);
        todo.push_back({std::move(m.message_id), std::move(m.sender), std::move(m.recipients), m.sent_at});
    }
    batch.clear();
    if (todo.empty()) return;
    // A day's margin: serve records an id when it hands the message on, a little before the
    // delivery line's time that backfill records.
    std::set<std::string> found;
    for (const auto& m : log.lookup(ids, earliest - std::chrono::hours(24))) found.insert(m.message_id);
    std::vector<q::sent_message> fresh;
    for (std::size_t i = 0; i < todo.size(); ++i) {
        if (found.count(ids[i])) ++t.already;
        else fresh.push_back(std::move(todo[i]));
    }
    t.recorded += fresh.size();
    if (!fresh.empty() && write) log.record(fresh);
}

}  // namespace

int run_backfill(const std::vector<std::string>& args) {
    config_args parsed = parse_config_args(args);
    if (!parsed.errors.empty()) {
        for (auto& e : parsed.errors) std::cerr << "ndrguard backfill: " << e << "\n";
        return 2;
    }
    if (parsed.bad_usage) return usage_error("an option is missing its value");
    const filter::serve_config& cfg = parsed.cfg;
    int since_days = cfg.bounce_window_days;
    bool dry_run = false;
    std::vector<std::string> files;
    for (std::size_t i = 0; i < parsed.rest.size(); ++i) {
        const std::string& a = parsed.rest[i];
        if (a == "--dry-run") {
            dry_run = true;
        } else if (a == "--since") {
            if (i + 1 >= parsed.rest.size()) return usage_error("--since needs a value, e.g. 7d");
            std::string v = parsed.rest[++i];
            if (!v.empty() && v.back() == 'd') v.pop_back();
            if (v.empty() || v.size() > 4 || !std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; }))
                return usage_error("--since takes days, e.g. 7d");
            since_days = std::stoi(v);
            if (since_days < 1 || since_days > 3650) return usage_error("--since: 1d to 3650d");
        } else if (!a.empty() && a.front() == '-') {
            return usage_error("unknown option '" + a + "'");
        } else {
            files.push_back(a);
        }
    }
    if (files.empty()) return usage_error("which log files?");

    const auto now = clock::now();
    const auto since = now - std::chrono::hours(24) * since_days;
    const auto& nets = cfg.our_networks;
    bf::joiner join([&nets](std::string_view addr) {
        return std::any_of(nets.begin(), nets.end(), [&](const filter::network& n) { return n.contains(addr); });
    }, bf::clock_context{now, local_utc_offset(now)});
    const bf::limits lim;
    totals t;
    int status = 0;
    try {
        q::database db(cfg.database);
        if (!dry_run) q::migrate(db, parsed.sql_dir);  // as serve does; a dry run changes nothing
        q::sent_log log(db);
        std::vector<bf::outbound> batch;
        auto flush = [&](bool all) {
            if (batch.size() >= 1000 || (all && !batch.empty())) record_batch(log, !dry_run, batch, since, t);
        };
        for (const auto& path : files) {
            gzFile f = gzopen(path.c_str(), "rb");
            if (!f) {
                std::cerr << "ndrguard backfill: cannot open " << path << ": " << std::strerror(errno) << "\n";
                status = 1;
                continue;
            }
            gzbuffer(f, 128 * 1024);
            const std::uint64_t lines_before = join.counts().lines;
            // A line longer than the bound is kept to max_line + 1 bytes: the joiner counts it
            // as too long, and memory stays bounded whatever the file holds.
            std::string line;
            char buf[64 * 1024];
            int n;
            bool broken = false;
            while ((n = gzread(f, buf, sizeof buf)) > 0) {
                const std::string_view chunk(buf, static_cast<std::size_t>(n));
                std::size_t start = 0;
                while (start < chunk.size()) {
                    const std::size_t nl = chunk.find('\n', start);
                    const std::size_t end = nl == std::string_view::npos ? chunk.size() : nl;
                    const std::size_t room = lim.max_line + 1 - std::min(line.size(), lim.max_line + 1);
                    line.append(chunk.substr(start, std::min(end - start, room)));
                    if (nl == std::string_view::npos) break;
                    join.feed(line, batch);
                    line.clear();
                    flush(false);
                    start = nl + 1;
                }
            }
            // A truncated .gz ends with Z_BUF_ERROR ("unexpected end of file") rather than -1.
            int code = Z_OK;
            const char* msg = gzerror(f, &code);
            if (n < 0 || (code != Z_OK && code != Z_STREAM_END)) {
                std::cerr << "ndrguard backfill: " << path << ": read error (" << (msg ? msg : "?")
                          << "), kept what was read before it\n";
                broken = true;
                status = 1;
            }
            if (!line.empty()) join.feed(line, batch);  // a last line without its newline
            gzclose(f);
            std::cout << "ndrguard backfill: read " << path << " lines=" << (join.counts().lines - lines_before)
                      << (broken ? " (truncated)" : "") << "\n";
        }
        join.finish(batch);
        flush(true);
    } catch (const q::database_error& e) {
        std::cerr << "ndrguard backfill: " << e.what() << "\n";
        return 1;
    }
    const auto& c = join.counts();
    std::cout << "ndrguard backfill: lines=" << c.lines << " outbound=" << c.outbound << (dry_run ? " would_record=" : " recorded=")
              << t.recorded << " already_recorded=" << t.already << " repeated=" << t.duplicate
              << " older_than_since=" << t.older << " bad_message_id=" << t.bad_id << "\n";
    std::cout << "ndrguard backfill: skipped";
    for (std::size_t r = 0; r < static_cast<std::size_t>(bf::skip_reason::count_); ++r)
        std::cout << " " << bf::skip_reason_name(static_cast<bf::skip_reason>(r)) << "=" << c.skipped[r];
    std::cout << "\nndrguard backfill: dropped";
    for (std::size_t r = 0; r < static_cast<std::size_t>(bf::drop_reason::count_); ++r)
        std::cout << " " << bf::drop_reason_name(static_cast<bf::drop_reason>(r)) << "=" << c.dropped[r];
    std::cout << "\n";
    return status;
}

}  // namespace ndrguard::app
