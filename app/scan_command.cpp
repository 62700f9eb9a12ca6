#include "scan_command.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string_view>

#include "ndrguard/detector/detector.hpp"
#include "ndrguard/detector/mbox.hpp"

namespace ndrguard::app {

const char* const scan_usage =
    "usage: ndrguard scan [--json] [--null-sender] PATH...\n"
    "\n"
    "Classifies each message and prints what it refers to. PATH may be a message file, a\n"
    "directory (read recursively, in name order) or a Unix mbox file (one result per message).\n"
    "A file is an mbox when it starts with a \"From \" line and its name does not end in .eml;\n"
    "a .eml file is always one message (a leading \"From \" envelope line is skipped).\n"
    "\n"
    "Without --json, one line per message, fields separated by two spaces:\n"
    "  FILE[#INDEX]  CLASS  <FIRST-MESSAGE-ID> (+more)  FIRST-RECIPIENT STATUS (+more)  REASONS [flags=...]\n"
    "(\"-\" where there is none; #INDEX only for files holding several messages).\n"
    "\n"
    "  --json          one JSON object per message per line:\n"
    "                  {\"file\",\"index\",\"class\",\"is_bounce\",\"message_ids\",\"recipients\",\n"
    "                   \"reporting_mta\",\"reasons\",\"flags\", ...}\n"
    "  --null-sender   treat every message as received with MAIL FROM:<> (as the filter would\n"
    "                  see a bounce); by default the envelope is unknown\n"
    "  -h, --help      show this text\n"
    "\n"
    "Classes: dsn ndr autoreply challenge virus_notice mdn feedback not_bounce.\n"
    "Exit status: 0 all paths read, 1 some path could not be read (a line on stderr each),\n"
    "2 usage error.\n";

namespace {

namespace fs = std::filesystem;
namespace det = ndrguard::detector;

// A read-only mapping of a whole file: mbox files can be far larger than memory is willing.
class mapped_file {
public:
    explicit mapped_file(const fs::path& path) {
        fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd_ < 0) { error_ = std::strerror(errno); return; }
        struct stat st{};
        if (::fstat(fd_, &st) != 0) { error_ = std::strerror(errno); return; }
        if (!S_ISREG(st.st_mode)) { error_ = "not a regular file"; return; }
        size_ = std::size_t(st.st_size);
        if (size_ == 0) return;
        void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd_, 0);
        if (p == MAP_FAILED) { error_ = std::strerror(errno); size_ = 0; return; }
        data_ = static_cast<const char*>(p);
    }
    ~mapped_file() {
        if (data_) ::munmap(const_cast<char*>(data_), size_);
        if (fd_ >= 0) ::close(fd_);
    }
    mapped_file(const mapped_file&) = delete;
    mapped_file& operator=(const mapped_file&) = delete;
    const std::string& error() const { return error_; }
    std::string_view bytes() const { return data_ ? std::string_view(data_, size_) : std::string_view(); }

private:
    int fd_ = -1;
    const char* data_ = nullptr;
    std::size_t size_ = 0;
    std::string error_;
};

struct options {
    bool json = false;
    bool null_sender = false;
};

nlohmann::json to_json(const std::string& file, std::size_t index, const det::result& r) {
    nlohmann::json j;
    j["file"] = file;
    j["index"] = index;
    j["class"] = std::string(det::to_string(r.klass));
    j["is_bounce"] = det::is_bounce(r.klass);
    j["message_ids"] = r.message_ids;
    nlohmann::json rcpts = nlohmann::json::array();
    for (const auto& rc : r.recipients) {
        nlohmann::json x;
        x["address"] = rc.address;
        x["action"] = std::string(det::to_string(rc.action));
        x["status"] = rc.status;
        x["diagnostic"] = rc.diagnostic;
        if (!rc.original_address.empty()) x["original_address"] = rc.original_address;
        if (!rc.remote_mta.empty()) x["remote_mta"] = rc.remote_mta;
        rcpts.push_back(std::move(x));
    }
    j["recipients"] = std::move(rcpts);
    j["reporting_mta"] = r.reporting_mta;
    if (!r.arrival_date.empty()) j["arrival_date"] = r.arrival_date;
    if (!r.original_envelope_id.empty()) j["original_envelope_id"] = r.original_envelope_id;
    if (!r.original_from.empty()) j["original_from"] = r.original_from;
    if (!r.original_return_path.empty()) j["original_return_path"] = r.original_return_path;
    if (!r.original_subject.empty()) j["original_subject"] = r.original_subject;
    if (!r.received_hosts.empty()) j["received_hosts"] = r.received_hosts;
    j["subject"] = r.subject;
    std::vector<std::string> reasons(r.reasons.begin(), r.reasons.end());
    j["reasons"] = reasons;
    std::vector<std::string> flags;
    for (auto f : det::flag_names(r.flags)) flags.emplace_back(f);
    j["flags"] = flags;
    return j;
}

std::string join(const std::vector<std::string_view>& v, char sep) {
    std::string out;
    for (auto s : v) {
        if (!out.empty()) out.push_back(sep);
        out.append(s);
    }
    return out;
}

void print_row(const std::string& file, std::size_t index, bool in_mbox, const det::result& r) {
    std::string where = in_mbox ? file + "#" + std::to_string(index) : file;
    std::string id = r.message_ids.empty() ? "-" : "<" + r.message_ids.front() + ">";
    if (r.message_ids.size() > 1) id += " (+" + std::to_string(r.message_ids.size() - 1) + ")";
    std::string rcpt = "-";
    if (!r.recipients.empty()) {
        const auto& rc = r.recipients.front();
        rcpt = rc.address;
        if (!rc.status.empty()) rcpt += " " + rc.status;
        if (r.recipients.size() > 1) rcpt += " (+" + std::to_string(r.recipients.size() - 1) + ")";
    }
    std::string reasons = join(r.reasons, ',');
    auto flags = det::flag_names(r.flags);
    if (!flags.empty()) reasons += " flags=" + join(flags, ',');
    std::cout << where << "  " << det::to_string(r.klass) << "  " << id << "  " << rcpt << "  " << reasons << "\n";
}

void scan_message(const std::string& file, std::size_t index, bool in_mbox, std::string_view bytes, const options& opt) {
    det::envelope env;
    if (opt.null_sender) env.mail_from = "";
    det::result r = det::classify(bytes, env);
    if (opt.json)
        std::cout << to_json(file, index, r).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    else
        print_row(file, index, in_mbox, r);
}

bool scan_file(const fs::path& path, const options& opt) {
    mapped_file f(path);
    if (!f.error().empty()) {
        std::cerr << "ndrguard scan: " << path.string() << ": " << f.error() << "\n";
        return false;
    }
    std::string_view bytes = f.bytes();
    auto messages = det::messages_in_file(bytes, path.filename().string());
    const bool several = messages.size() > 1;
    for (std::size_t i = 0; i < messages.size(); ++i) scan_message(path.string(), i, several, messages[i], opt);
    return true;
}

bool scan_path(const fs::path& path, const options& opt) {
    std::error_code ec;
    auto status = fs::status(path, ec);
    if (ec) {
        std::cerr << "ndrguard scan: " << path.string() << ": " << ec.message() << "\n";
        return false;
    }
    if (!fs::is_directory(status)) return scan_file(path, opt);
    std::vector<fs::path> files;
    bool ok = true;
    fs::recursive_directory_iterator it(path, fs::directory_options::skip_permission_denied, ec), end;
    for (; !ec && it != end; it.increment(ec)) {
        std::error_code fec;
        if (it->is_regular_file(fec)) files.push_back(it->path());
    }
    if (ec) {
        std::cerr << "ndrguard scan: " << path.string() << ": " << ec.message() << "\n";
        ok = false;
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) ok = scan_file(f, opt) && ok;
    return ok;
}

}  // namespace

int run_scan(const std::vector<std::string>& args) {
    options opt;
    std::vector<std::string> paths;
    bool only_paths = false;
    for (const auto& a : args) {
        if (!only_paths && a == "--") { only_paths = true; continue; }
        if (!only_paths && (a == "-h" || a == "--help")) { std::cout << scan_usage; return 0; }
        if (!only_paths && a == "--json") { opt.json = true; continue; }
        if (!only_paths && a == "--null-sender") { opt.null_sender = true; continue; }
        if (!only_paths && a.size() > 1 && a[0] == '-') {
            std::cerr << "ndrguard scan: unknown option '" << a << "'\n\n" << scan_usage;
            return 2;
        }
        paths.push_back(a);
    }
    if (paths.empty()) {
        std::cerr << "ndrguard scan: no PATH given\n\n" << scan_usage;
        return 2;
    }
    bool ok = true;
    for (const auto& p : paths) ok = scan_path(p, opt) && ok;
    std::cout.flush();
    return ok ? 0 : 1;
}

}  // namespace ndrguard::app
