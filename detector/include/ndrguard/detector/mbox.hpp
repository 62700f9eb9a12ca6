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

// The messages in one file, as `ndrguard scan` reads them: a file whose name ends in ".eml"
// (any case) is always one message, even when it starts with a "From " envelope line (that
// line is dropped) and even when an unquoted "From " line follows an empty line in its body;
// any other file that starts with a "From " line is an mbox; anything else is one message.
std::vector<std::string_view> messages_in_file(std::string_view data, std::string_view file_name,
                                               std::size_t max_messages = 1000000);

}  // namespace ndrguard::detector
