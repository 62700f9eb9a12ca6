// The evidence of one message on the command line, for the end-to-end test with a real Postfix
// (trace_postfix.py): classify it, then read the returned original's header section.
//   trace_check FILE RELAY,RELAY... DOMAIN,DOMAIN...
// prints "class C", "strength S", "reason R" a line, "hop FROM_HELO|FROM_NAME|FROM_IP|BY" a hop.
// The returned header section is found here crudely (the text after the header of the first
// message/rfc822 or text/rfc822-headers part): a test's stand-in until the detector's result
// carries the returned original's raw header section.
#include <cctype>
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

std::string_view returned_headers(std::string_view message) {
    std::string lowered(message);
    for (char& c : lowered) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::size_t at = lowered.find("content-type: message/rfc822");
    if (at == std::string::npos) at = lowered.find("content-type: text/rfc822-headers");
    if (at == std::string::npos) return {};
    for (std::string_view blank : {"\r\n\r\n", "\n\n"}) {
        const std::size_t end = message.find(blank, at);
        if (end != std::string_view::npos) return message.substr(end + blank.size());
    }
    return {};
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
    const auto e = ev::read_trace(returned_headers(message), ev::trace_settings{split(argv[2]), split(argv[3])});
    for (auto reason : e.reasons) std::cout << "reason " << reason << '\n';
    for (const auto& h : e.hops) std::cout << "hop " << h.from_helo << '|' << h.from_name << '|' << h.from_ip << '|' << h.by << '\n';
    return 0;
}
