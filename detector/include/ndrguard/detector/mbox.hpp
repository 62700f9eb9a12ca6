// Splitting a Unix mbox file into messages. Pure: views into the input.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
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

// True for a name ending in ".eml" (any case): such a file is one message, never an mbox.
bool is_single_message_name(std::string_view file_name);

// The messages in one file, as `ndrguard scan` reads them: a file whose name ends in ".eml"
// (any case) is always one message, even when it starts with a "From " envelope line (that
// line is dropped) and even when an unquoted "From " line follows an empty line in its body;
// any other file that starts with a "From " line is an mbox; anything else is one message.
std::vector<std::string_view> messages_in_file(std::string_view data, std::string_view file_name,
                                               std::size_t max_messages = 1000000);

// split_mbox for a stream: bytes go in as they are read (in chunks of any size), each message
// comes out once it is complete, so a file far larger than memory is read in bounded memory.
// The data must start with a "From " line (looks_like_mbox on its first bytes). A message
// longer than max_message_bytes comes out cut to that many bytes, with its full size.
// The same messages as split_mbox, in the same order, whatever the chunks (unit-tested).
class mbox_stream {
public:
    // The message (at most max_message_bytes of it) and its size in the input.
    using sink = std::function<void(std::string_view message, std::size_t full_size)>;

    explicit mbox_stream(std::size_t max_message_bytes) : max_bytes_(max_message_bytes) {}

    void feed(std::string_view bytes, const sink& out);
    void finish(const sink& out);  // the end of the input: the last message

private:
    void take(std::string_view part, const sink& out);  // bytes of the current line, no eol
    void end_line(const sink& out);
    void keep(std::string_view bytes);
    void emit(const sink& out);

    std::size_t max_bytes_;
    char eol_ = 0;                 // '\n' (LF or CRLF) or '\r' (old Mac); 0 inside the first line
    bool first_cr_ = false;        // the first line ended with a CR that may be a CRLF's
    bool previous_blank_ = false;  // the line before the current one was empty
    bool separator_line_ = false;  // the current line is a "From " separator: not content
    std::size_t line_bytes_ = 0;   // of the current line so far
    char line_last_ = 0;           // its last byte so far
    std::string head_;             // its first bytes while they may still begin "From "
    std::string message_;          // the current message, at most max_bytes_
    std::size_t message_bytes_ = 0;
};

}  // namespace ndrguard::detector
