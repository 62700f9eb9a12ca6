#include "ndrguard/detector/mbox.hpp"

namespace ndrguard::detector {

namespace {

// "From sender date": a separator has a space after "From" and no colon right after the word.
bool is_separator(std::string_view line) { return line.substr(0, 5) == "From "; }

}  // namespace

bool looks_like_mbox(std::string_view data) { return is_separator(data); }

std::vector<std::string_view> split_mbox(std::string_view data, std::size_t max_messages) {
    std::vector<std::string_view> messages;
    if (!looks_like_mbox(data)) return messages;
    // Old Mac files end lines with a lone CR; everything else ends them with LF (or CRLF).
    std::size_t first_eol = data.find_first_of("\r\n");
    const char eol = (first_eol != std::string_view::npos && data[first_eol] == '\r' &&
                      (first_eol + 1 >= data.size() || data[first_eol + 1] != '\n'))
                         ? '\r'
                         : '\n';
    std::size_t start = std::string_view::npos;  // start of the current message's first line
    std::size_t pos = 0;
    bool previous_blank = true;
    while (pos < data.size()) {
        std::size_t nl = data.find(eol, pos);
        std::size_t end = nl == std::string_view::npos ? data.size() : nl;
        std::string_view line = data.substr(pos, end - pos);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        std::size_t next = nl == std::string_view::npos ? data.size() : nl + 1;
        if (previous_blank && is_separator(line)) {
            if (start != std::string_view::npos) {
                if (messages.size() >= max_messages) return messages;
                messages.push_back(data.substr(start, pos - start));
            }
            start = next;
        }
        previous_blank = line.empty();
        pos = next;
    }
    if (start != std::string_view::npos && start <= data.size() && messages.size() < max_messages)
        messages.push_back(data.substr(start));
    return messages;
}

std::vector<std::string_view> messages_in_file(std::string_view data, std::string_view file_name,
                                               std::size_t max_messages) {
    constexpr std::string_view eml = ".eml";
    bool single = file_name.size() >= eml.size();
    for (std::size_t i = 0; single && i < eml.size(); ++i) {
        char c = file_name[file_name.size() - eml.size() + i];
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        single = c == eml[i];
    }
    if (max_messages == 0) return {};
    if (!looks_like_mbox(data)) return {data};
    if (!single) return split_mbox(data, max_messages);
    // One message behind an envelope line: drop that line (LF, CRLF or lone CR ends it).
    std::size_t eol = data.find_first_of("\r\n");
    if (eol == std::string_view::npos) return {std::string_view()};
    if (data[eol] == '\r' && eol + 1 < data.size() && data[eol + 1] == '\n') ++eol;
    return {data.substr(eol + 1)};
}

}  // namespace ndrguard::detector
