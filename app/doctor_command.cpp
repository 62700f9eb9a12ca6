// `ndrguard doctor`: runs postconf (and postmap/postalias -s for the alias tables) of the
// running Postfix or of `-c DIR`, each within a time and output bound, hands the text to
// doctor::audit (pure) and prints its findings. The I/O edge; every rule is in doctor/.
#include "doctor_command.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "config_args.hpp"
#include "ndrguard/doctor/audit.hpp"

namespace ndrguard::app {

const char* const doctor_usage =
    "usage: ndrguard doctor [-c DIR] [--json] [--timeout SECONDS] [--policy SERVICE]\n"
    "                       [--config FILE] [--set KEY=VALUE]...\n"
    "\n"
    "Audits a Postfix configuration for what makes a server send backscatter (mail accepted and\n"
    "then bounced: unknown recipients accepted, 4xx reject codes, soft_bounce, luser_relay,\n"
    "forwarding outside without SRS, sender callouts, bouncing content filters, notify_classes)\n"
    "and for what lets mail past ndrguard or loops it (content_filter / smtpd_proxy_filter, the\n"
    "transport's XFORWARD, the reinjection listener's -o content_filter= and\n"
    "receive_override_options, submission, sendmail, a second smtpd, the order of\n"
    "check_policy_service lines). Each finding: its severity, where, why, the exact fix\n"
    "(postconf -e / -X / -M / -P lines; then `postfix reload`) and the document it follows.\n"
    "It runs `postconf -x` for the parameters it reads, `postconf -M` and `postconf -P` (and\n"
    "`postmap -s` / `postalias -s` for hash, btree, lmdb, cdb, dbm and sdbm alias tables), each\n"
    "stopped after --timeout and after 4 MiB of output. Nothing is changed.\n"
    "\n"
    "  -c DIR           the Postfix configuration directory (default: postconf's own)\n"
    "  --json           one JSON object: {\"config_directory\", \"mail_version\", \"errors\",\n"
    "                   \"warnings\", \"notes\", \"findings\": [{\"id\", \"severity\", \"where\",\n"
    "                   \"why\", \"fix\": [...], \"source\"}]}\n"
    "  --timeout SECONDS  each Postfix command's bound (default 10)\n"
    "  --policy SERVICE ndrguard's policy service as written in smtpd_recipient_restrictions\n"
    "                   (default inet:127.0.0.1:10040)\n"
    "  --sbin DIR       where postconf, postmap and postalias are (default /usr/sbin, else PATH)\n"
    "  --config FILE, --set KEY=VALUE: ndrguard's own settings (listen, next_hop,\n"
    "                   outbound_listen, mode), read as serve reads them\n"
    "  -h, --help       show this text\n"
    "\n"
    "Exit status: 0 no error found (warnings and notes may be); 1 at least one error;\n"
    "2 usage error; 3 postconf could not be run or failed (nothing audited).\n";

namespace {

namespace doc = ndrguard::doctor;

int usage_error(const std::string& why) {
    std::cerr << "ndrguard doctor: " << why << "\n\n" << doctor_usage;
    return 2;
}

struct run_result {
    bool started = false, timed_out = false, too_big = false;
    int status = -1;  // exit status, or -1 (killed by a signal, or not started)
    std::string out, err;
};

// Runs argv (execvp) with stdin from /dev/null; reads stdout up to max_out bytes and stderr up
// to 64 KiB; kills it (SIGKILL) at the deadline or when stdout goes over. Never waits longer
// than `timeout` plus the time to reap.
run_result run_bounded(const std::vector<std::string>& argv, std::chrono::milliseconds timeout, std::size_t max_out) {
    run_result r;
    int out_pipe[2], err_pipe[2];
    if (pipe2(out_pipe, O_CLOEXEC) != 0) return r;
    if (pipe2(err_pipe, O_CLOEXEC) != 0) {
        close(out_pipe[0]);
        close(out_pipe[1]);
        return r;
    }
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const pid_t pid = fork();
    if (pid < 0) {
        for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]}) close(fd);
        return r;
    }
    if (pid == 0) {
        const int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) dup2(devnull, 0);
        dup2(out_pipe[1], 1);
        dup2(err_pipe[1], 2);
        execvp(args[0], args.data());
        const char msg[] = "cannot run the command\n";
        (void)!write(2, msg, sizeof msg - 1);
        _exit(127);
    }
    close(out_pipe[1]);
    close(err_pipe[1]);
    r.started = true;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
    bool open_out = true, open_err = true;
    char buf[65536];
    while (open_out || open_err) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            r.timed_out = true;
            break;
        }
        fds[0].fd = open_out ? out_pipe[0] : -1;
        fds[1].fd = open_err ? err_pipe[0] : -1;
        const int n = poll(fds, 2, static_cast<int>(std::min<long long>(left.count(), 1000)));
        if (n < 0 && errno != EINTR) break;
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            const ssize_t got = read(fds[i].fd, buf, sizeof buf);
            if (got <= 0) {
                if (got < 0 && errno == EINTR) continue;
                (i == 0 ? open_out : open_err) = false;
                continue;
            }
            std::string& into = i == 0 ? r.out : r.err;
            const std::size_t cap = i == 0 ? max_out : 65536;
            const std::size_t room = into.size() < cap ? cap - into.size() : 0;
            into.append(buf, std::min<std::size_t>(room, static_cast<std::size_t>(got)));
            if (i == 0 && static_cast<std::size_t>(got) > room) r.too_big = true;
        }
        if (r.too_big) break;
    }
    if (r.timed_out || r.too_big) kill(pid, SIGKILL);
    close(out_pipe[0]);
    close(err_pipe[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(st)) r.status = WEXITSTATUS(st);
    return r;
}

// The first lines of a command's complaints, for the operator.
void pass_on_stderr(const std::string& what, const std::string& err) {
    std::size_t start = 0, lines = 0;
    while (start < err.size() && lines < 10) {
        std::size_t nl = err.find('\n', start);
        if (nl == std::string::npos) nl = err.size();
        if (nl > start) std::cerr << "ndrguard doctor: " << what << ": " << err.substr(start, nl - start) << "\n";
        start = nl + 1;
        ++lines;
    }
}

std::string describe_failure(const run_result& r) {
    if (!r.started) return "could not be started";
    if (r.timed_out) return "did not finish in time (killed)";
    if (r.too_big) return "printed more than 4 MiB (killed)";
    if (r.status == 127) return "could not be run (not installed, or not in PATH)";
    return "failed (exit status " + std::to_string(r.status) + ")";
}

std::string program(const std::string& sbin_dir, const char* name) {
    // Postfix's commands are in /usr/sbin, which an ordinary user's PATH may lack.
    const std::string sbin = sbin_dir + "/" + name;
    return !sbin_dir.empty() && access(sbin.c_str(), X_OK) == 0 ? sbin : std::string(name);
}

}  // namespace

int run_doctor(const std::vector<std::string>& all) {
    config_args ca = read_config_args(all);
    if (ca.bad_usage) return usage_error(ca.errors.front());
    // Only listen, next_hop, outbound_listen and mode matter here; a problem elsewhere in the
    // file (the database, say) is reported and does not stop the audit.
    for (const auto& e : ca.errors) std::cerr << "ndrguard doctor: configuration: " << e << "\n";
    std::string dir, policy = "inet:127.0.0.1:10040", sbin = "/usr/sbin";
    bool json = false;
    long timeout_s = 10;
    for (std::size_t i = 0; i < ca.rest.size(); ++i) {
        const std::string& a = ca.rest[i];
        if (a == "--json") json = true;
        else if (a == "-c" || a == "--timeout" || a == "--policy" || a == "--sbin") {
            if (i + 1 >= ca.rest.size()) return usage_error("'" + a + "' needs a value");
            const std::string& v = ca.rest[++i];
            if (a == "-c") dir = v;
            else if (a == "--sbin") sbin = v;
            else if (a == "--policy") policy = v;
            else {
                char* end = nullptr;
                timeout_s = std::strtol(v.c_str(), &end, 10);
                if (v.empty() || *end != '\0' || timeout_s < 1 || timeout_s > 600)
                    return usage_error("--timeout wants 1 to 600 seconds, not '" + v + "'");
            }
        } else return usage_error("unknown argument '" + a + "'");
    }
    const auto timeout = std::chrono::milliseconds(timeout_s * 1000);
    const doc::limits lim;
    const std::size_t max_out = lim.max_input_bytes;

    auto postfix_cmd = [&](const char* name, std::vector<std::string> rest) {
        std::vector<std::string> argv{program(sbin, name)};
        if (!dir.empty()) {
            argv.push_back("-c");
            argv.push_back(dir);
        }
        argv.insert(argv.end(), rest.begin(), rest.end());
        return argv;
    };
    std::vector<std::string> x{"-x", "config_directory", "mail_version"};
    for (auto p : doc::parameters_used()) x.emplace_back(p);
    const run_result main_r = run_bounded(postfix_cmd("postconf", x), timeout, max_out);
    const run_result m_r = run_bounded(postfix_cmd("postconf", {"-M"}), timeout, max_out);
    const run_result p_r = run_bounded(postfix_cmd("postconf", {"-P"}), timeout, max_out);
    for (const auto* r : {&main_r, &m_r, &p_r}) {
        if (r->status != 0 || r->timed_out || r->too_big) {
            pass_on_stderr("postconf", r->err);
            std::cerr << "ndrguard doctor: postconf " << describe_failure(*r) << "\n";
            return 3;
        }
    }
    // postconf warns about a parameter this Postfix does not know; not a reason to stop.
    pass_on_stderr("postconf", main_r.err);

    doc::input in;
    in.main = doc::parse_parameters(main_r.out, lim);
    in.services = doc::parse_master(m_r.out, p_r.out, lim);
    in.ndrguard.listen = ca.cfg.listen;
    in.ndrguard.next_hop = ca.cfg.next_hop;
    in.ndrguard.outbound_listen = ca.cfg.outbound_listen;
    in.ndrguard.before_queue = ca.cfg.mode == filter::filter_mode::before_queue;
    in.ndrguard.policy_service = policy;

    // The alias tables' right-hand sides (postmap(1) -s, postalias(1) -s: "key<TAB>value" and
    // "key: value" lines), for the forwarding rule. Only the indexed file types: a database
    // table (pgsql:, ldap:, ...) is not queried by a doctor. At most 16 tables, each bounded.
    auto item_list = [&](const char* name) {
        auto it = in.main.values.find(name);
        return it == in.main.values.end() ? std::vector<std::string>{} : doc::split_list(it->second, lim);
    };
    static const char* const readable[] = {"hash:", "btree:", "lmdb:", "cdb:", "dbm:", "sdbm:"};
    auto readable_type = [](const std::string& t) {
        for (const char* p : readable)
            if (t.rfind(p, 0) == 0) return true;
        return false;
    };
    bool all_read = true;
    std::size_t tables = 0, targets_bytes = 0;
    for (auto [param, cmd] : {std::pair{"virtual_alias_maps", "postmap"}, std::pair{"alias_maps", "postalias"}}) {
        for (const auto& t : item_list(param)) {
            const bool counts = std::string(param) == "virtual_alias_maps";  // alias_maps: best effort
            if (!readable_type(t) || tables >= 16) {
                if (counts) all_read = false;
                continue;
            }
            ++tables;
            const run_result r = run_bounded(postfix_cmd(cmd, {"-s", t}), timeout, max_out);
            if (r.status != 0 || r.timed_out || r.too_big) {
                if (counts) all_read = false;
                pass_on_stderr(cmd, r.err);
                continue;
            }
            std::size_t start = 0;
            while (start < r.out.size() && in.forward_targets.size() < 100000 && targets_bytes < max_out) {
                std::size_t nl = r.out.find('\n', start);
                if (nl == std::string::npos) nl = r.out.size();
                const std::string line = r.out.substr(start, nl - start);
                start = nl + 1;
                std::size_t sep = line.find('\t');
                if (sep == std::string::npos) sep = line.find(": ");
                if (sep == std::string::npos) continue;
                in.forward_targets.push_back(line.substr(line[sep] == ':' ? sep + 2 : sep + 1));
                targets_bytes += line.size();
            }
        }
    }
    in.tables_read = all_read;

    const auto findings = doc::audit(in, lim);
    std::size_t errors = 0, warnings = 0, notes = 0;
    for (const auto& f : findings)
        (f.level == doc::severity::error ? errors : f.level == doc::severity::warning ? warnings : notes)++;
    auto value = [&](const char* name) {
        auto it = in.main.values.find(name);
        return it == in.main.values.end() ? std::string() : it->second;
    };

    if (json) {
        nlohmann::json out{{"config_directory", value("config_directory")},
                           {"mail_version", value("mail_version")},
                           {"errors", errors},
                           {"warnings", warnings},
                           {"notes", notes},
                           {"tables_read", in.tables_read},
                           {"findings", nlohmann::json::array()}};
        for (const auto& f : findings)
            out["findings"].push_back({{"id", f.id},
                                       {"severity", std::string(doc::to_string(f.level))},
                                       {"where", f.where},
                                       {"why", f.why},
                                       {"fix", f.fix},
                                       {"source", f.source}});
        // Replace what is not UTF-8 (a configuration may hold any byte) instead of throwing.
        std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    } else {
        std::cout << "ndrguard doctor: " << value("config_directory") << " (Postfix " << value("mail_version")
                  << "): " << errors << " error(s), " << warnings << " warning(s), " << notes << " note(s)\n";
        if (in.main.truncated || in.services.truncated)
            std::cout << "(postconf's output went over a bound: part of it was not read)\n";
        for (const auto& f : findings) {
            std::cout << "\n" << doc::to_string(f.level) << ": " << f.id << "  (" << f.where << ")\n";
            std::cout << "  why: " << f.why << "\n";
            for (const auto& l : f.fix) std::cout << "  fix: " << l << "\n";
            std::cout << "  see: " << f.source << "\n";
        }
        if (!findings.empty()) std::cout << "\nAfter changing main.cf or master.cf: postfix reload\n";
    }
    return errors > 0 ? 1 : 0;
}

}  // namespace ndrguard::app
