// The evidence of one message on the command line, for the end-to-end test with a real Postfix
// (trace_postfix.py): classify it, then read the returned original's header section.
//   trace_check FILE RELAY,RELAY... DOMAIN,DOMAIN...
// prints "class C", "strength S", "reason R" a line, "hop FROM_HELO|FROM_NAME|FROM_IP|BY" a hop.
// The returned header section is the detector's (result::returned_headers).
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "ndrguard/detector/detector.hpp"
#include "ndrguard/evidence/strength.hpp"
#include "ndrguard/evidence/trace.hpp"

namespace {

std::vector<std::string> split(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream in(s);
    for (std::string item; std::getline(in, item, ',');)
        if (!item.empty()) out.push_back(item);
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 4) {
        std::cerr << "usage: trace_check FILE RELAY,... DOMAIN,...\n";
        return 2;
    }
    std::ifstream in(argv[1], std::ios::binary);
    if (!in) return 2;
    const std::string message((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    namespace ev = ndrguard::evidence;
    const auto r = ndrguard::detector::classify(message);
    std::cout << "class " << to_string(r.klass) << "\nstrength " << ev::to_string(ev::strength_of(r)) << '\n';
    const auto e = ev::read_trace(r.returned_headers, ev::trace_settings{split(argv[2]), split(argv[3])});
    for (auto reason : e.reasons) std::cout << "reason " << reason << '\n';
    for (const auto& h : e.hops) std::cout << "hop " << h.from_helo << '|' << h.from_name << '|' << h.from_ip << '|' << h.by << '\n';
    return 0;
}
