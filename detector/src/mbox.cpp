#include "ndrguard/detector/mbox.hpp"

#include <algorithm>

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

bool is_single_message_name(std::string_view file_name) {
    constexpr std::string_view eml = ".eml";
    bool single = file_name.size() >= eml.size();
    for (std::size_t i = 0; single && i < eml.size(); ++i) {
        char c = file_name[file_name.size() - eml.size() + i];
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        single = c == eml[i];
    }
    return single;
}

std::vector<std::string_view> messages_in_file(std::string_view data, std::string_view file_name,
                                               std::size_t max_messages) {
    const bool single = is_single_message_name(file_name);
    if (max_messages == 0) return {};
    if (!looks_like_mbox(data)) return {data};
    if (!single) return split_mbox(data, max_messages);
    // One message behind an envelope line: drop that line (LF, CRLF or lone CR ends it).
    std::size_t eol = data.find_first_of("\r\n");
    if (eol == std::string_view::npos) return {std::string_view()};
    if (data[eol] == '\r' && eol + 1 < data.size() && data[eol + 1] == '\n') ++eol;
    return {data.substr(eol + 1)};
}

void mbox_stream::keep(std::string_view bytes) {
    message_bytes_ += bytes.size();
    if (message_.size() < max_bytes_) message_.append(bytes.substr(0, max_bytes_ - message_.size()));
}

void mbox_stream::emit(const sink& out) {
    out(message_, message_bytes_);
    message_.clear();
    message_bytes_ = 0;
}

void mbox_stream::take(std::string_view part, const sink& out) {
    if (part.empty()) return;
    line_bytes_ += part.size();
    line_last_ = part.back();
    if (separator_line_) return;
    if (previous_blank_ && line_bytes_ - part.size() < 5) {
        // The line's first five bytes decide whether it is a separator: hold them until known.
        std::size_t n = std::min(part.size(), 5 - head_.size());
        head_.append(part.substr(0, n));
        part.remove_prefix(n);
        if (head_.size() < 5) return;
        if (head_ == "From ") {
            head_.clear();
            separator_line_ = true;
            emit(out);  // the message before this line is complete
            return;
        }
        keep(head_);
        head_.clear();
    }
    keep(part);
}

void mbox_stream::end_line(const sink&) {
    if (!separator_line_) {
        keep(head_);
        keep(std::string_view(&eol_, 1));
    }
    head_.clear();
    previous_blank_ = line_bytes_ == 0 || (line_bytes_ == 1 && line_last_ == '\r');
    separator_line_ = false;
    line_bytes_ = 0;
    line_last_ = 0;
}

void mbox_stream::feed(std::string_view bytes, const sink& out) {
    while (!bytes.empty()) {
        if (eol_ == 0) {
            // The first line is a separator; its end tells how lines end (as split_mbox does).
            if (first_cr_) {
                first_cr_ = false;
                eol_ = bytes.front() == '\n' ? '\n' : '\r';
                if (eol_ == '\n') bytes.remove_prefix(1);
                continue;
            }
            std::size_t p = bytes.find_first_of("\r\n");
            if (p == std::string_view::npos) return;
            if (bytes[p] == '\n') {
                eol_ = '\n';
            } else if (p + 1 == bytes.size()) {
                first_cr_ = true;
                return;
            } else {
                eol_ = bytes[p + 1] == '\n' ? '\n' : '\r';
                if (eol_ == '\n') ++p;
            }
            bytes.remove_prefix(p + 1);
            continue;
        }
        std::size_t p = bytes.find(eol_);
        take(bytes.substr(0, p), out);
        if (p == std::string_view::npos) return;
        end_line(out);
        bytes.remove_prefix(p + 1);
    }
}

void mbox_stream::finish(const sink& out) {
    if (eol_ != 0 && !separator_line_) keep(head_);  // an unfinished last line is content
    head_.clear();
    emit(out);
}

}  // namespace ndrguard::detector
