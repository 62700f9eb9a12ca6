// Splitting a Unix mbox file into messages. Pure: views into the input.
#pragma once

#include <string_view>
#include <vector>

namespace ndrguard::detector {

// True if the data starts with an mbox "From " separator line.
bool looks_like_mbox(std::string_view data);

// The messages of an mbox (mboxo/mboxrd): each starts after a "From " line that begins the
// file or follows an empty line; the separator line itself is not part of the message.
// ">From " quoting is left as it is (it is inside bodies, where it changes nothing we read).
// At most max_messages views are returned.
std::vector<std::string_view> split_mbox(std::string_view data, std::size_t max_messages = 1000000);

}  // namespace ndrguard::detector
