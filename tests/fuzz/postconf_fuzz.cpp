// libFuzzer target for `ndrguard doctor`'s reading of postconf's output and its audit
// (doctor/): the input is split at its first two NUL bytes into the `postconf -x` text, the
// `postconf -M` text and the `postconf -P` text; small bounds so that every limit is reached.
// Invariants: nothing crashes or throws; every bound holds (parameters, services, arguments,
// overrides, list items); every finding has an id, a known severity, a place, a reason, a fix
// and a source; the same input gives the same findings twice; errors come before warnings
// before notes.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ndrguard/doctor/audit.hpp"
#include "ndrguard/doctor/postconf.hpp"

namespace doc = ndrguard::doctor;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    std::string_view parts[3];
    std::size_t start = 0;
    for (int i = 0; i < 3; ++i) {
        const std::size_t nul = i < 2 ? input.find('\0', start) : std::string_view::npos;
        parts[i] = input.substr(std::min(start, input.size()), nul == std::string_view::npos ? std::string_view::npos : nul - start);
        if (nul == std::string_view::npos) {
            start = input.size() + 1;
        } else {
            start = nul + 1;
        }
    }
    doc::limits lim;
    lim.max_input_bytes = 4096;
    lim.max_line_bytes = 512;
    lim.max_parameters = 40;
    lim.max_services = 8;
    lim.max_arguments = 8;
    lim.max_overrides = 8;
    lim.max_list_items = 16;
    doc::input in;
    in.main = doc::parse_parameters(parts[0], lim);
    if (in.main.values.size() > lim.max_parameters) std::abort();
    for (const auto& [k, v] : in.main.values)
        if (k.empty() || v.size() > lim.max_line_bytes) std::abort();
    in.services = doc::parse_master(parts[1], parts[2], lim);
    if (in.services.services.size() > lim.max_services) std::abort();
    for (const auto& s : in.services.services) {
        if (s.arguments.size() > lim.max_arguments || s.overrides.size() > lim.max_overrides) std::abort();
        if (s.name.empty() || s.command.empty()) std::abort();
    }
    if (doc::split_list(parts[0], lim).size() > lim.max_list_items) std::abort();
    in.forward_targets = {std::string(parts[2].substr(0, 256))};
    in.tables_read = size % 2 == 0;
    in.ndrguard.outbound_listen = size % 3 == 0 ? "127.0.0.1:10027" : "";
    in.ndrguard.before_queue = size % 5 == 0;
    const auto a = doc::audit(in, lim);
    const auto b = doc::audit(in, lim);
    if (a.size() != b.size()) std::abort();
    for (std::size_t i = 0; i < a.size(); ++i) {
        const auto& f = a[i];
        if (f.id != b[i].id || f.where != b[i].where || f.fix != b[i].fix) std::abort();
        if (f.id.empty() || f.where.empty() || f.why.empty() || f.fix.empty() || f.source.empty()) std::abort();
        const auto s = doc::to_string(f.level);
        if (s != "error" && s != "warning" && s != "info") std::abort();
        if (i > 0 && a[i - 1].level > f.level) std::abort();
    }
    return 0;
}
