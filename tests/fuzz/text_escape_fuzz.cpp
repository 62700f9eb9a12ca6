// libFuzzer target for the database text escape (quarantine/src/sql_text.cpp): any bytes from
// the network must become text PostgreSQL takes (well-formed UTF-8, no NUL, no chr(31)) and come
// back exactly; the input split in two must give two texts that differ whenever the halves
// differ (no two raw strings share a stored text); the lossy display form stays within its
// bound and well formed; and decoding any stored text never crashes.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ndrguard/quarantine/sql_text.hpp"

namespace q = ndrguard::quarantine;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    const std::string stored = q::to_db_text(in);
    if (!q::valid_utf8(stored) || stored.find('\0') != std::string::npos || stored.find('\x1f') != std::string::npos)
        std::abort();
    if (q::from_db_text(stored) != in) std::abort();
    const std::string_view a = in.substr(0, size / 2), b = in.substr(size / 2);
    if ((a != b) != (q::to_db_text(a) != q::to_db_text(b))) std::abort();
    const std::string shown = q::display_text(in, 64);
    if (shown.size() > 64 || !q::valid_utf8(shown) || shown.find('\0') != std::string::npos) std::abort();
    volatile std::size_t sink = q::from_db_text(in).size();  // any text, even one we never wrote
    (void)sink;
    return 0;
}
