// verify_batv on the command line, for the cross-check against Python's hmac (batv_cross_check.py):
//   batv_check TODAY VALIDITY_DAYS KEYNUM:SECRET...   then one address a line on standard input;
// prints "STATUS REASON UNTAGGED" a line.
#include <cstdlib>
#include <iostream>
#include <string>

#include "ndrguard/evidence/batv.hpp"

int main(int argc, char** argv) {
    if (argc < 4) {
        std::cerr << "usage: batv_check TODAY VALIDITY_DAYS KEYNUM:SECRET...\n";
        return 2;
    }
    ndrguard::evidence::batv_settings settings;
    settings.validity_days = static_cast<unsigned>(std::strtoul(argv[2], nullptr, 10));
    for (int i = 3; i < argc; ++i) {
        const std::string arg = argv[i];
        const auto colon = arg.find(':');
        if (colon == std::string::npos) return 2;
        settings.keys.push_back({static_cast<unsigned>(std::stoul(arg.substr(0, colon))), arg.substr(colon + 1)});
    }
    const std::int64_t today = std::strtoll(argv[1], nullptr, 10);
    std::string line;
    while (std::getline(std::cin, line)) {
        const auto r = ndrguard::evidence::verify_batv(line, settings, today);
        std::cout << to_string(r.status) << ' ' << r.reason << ' ' << r.untagged << '\n';
    }
    return 0;
}
