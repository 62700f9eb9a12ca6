#include "ndrguard/policy/request.hpp"

namespace ndrguard::policy {

std::string_view to_string(request_error e) {
    switch (e) {
        case request_error::none: return "none";
        case request_error::line_too_long: return "line_too_long";
        case request_error::too_many_attributes: return "too_many_attributes";
        case request_error::request_too_large: return "request_too_large";
        case request_error::malformed_line: return "malformed_line";
        case request_error::nul_byte: return "nul_byte";
        case request_error::repeated_attribute: return "repeated_attribute";
        case request_error::empty_request: return "empty_request";
    }
    return "none";
}

bool request_reader::feed(std::string_view bytes, std::vector<policy_request>& out) {
    if (error_ != request_error::none) return false;
    out_ = &out;
    while (!bytes.empty()) {
        const std::size_t nl = bytes.find('\n');
        const std::string_view piece = bytes.substr(0, nl == std::string_view::npos ? bytes.size() : nl);
        const std::size_t taken = piece.size() + (nl == std::string_view::npos ? 0 : 1);
        // The line with its newline, and the request, within their bounds before anything is
        // kept. Of the troubles in these bytes the one at the first byte is the one reported,
        // so that the error does not depend on where the reads fall.
        request_error trouble = request_error::none;
        std::size_t at = std::string_view::npos;
        auto consider = [&](std::size_t pos, request_error e) {
            if (pos < at) at = pos, trouble = e;
        };
        if (const std::size_t nul = piece.find('\0'); nul != std::string_view::npos) consider(nul, request_error::nul_byte);
        if (line_.size() + taken > limits_.max_line_bytes) consider(limits_.max_line_bytes - line_.size(), request_error::line_too_long);
        if (request_bytes_ + taken > limits_.max_request_bytes)
            consider(limits_.max_request_bytes - request_bytes_, request_error::request_too_large);
        if (trouble != request_error::none) return fail(trouble);
        line_.append(piece);
        request_bytes_ += taken;
        bytes.remove_prefix(taken);
        if (nl == std::string_view::npos) break;  // the rest of the line comes with the next read
        if (!end_line()) return false;
    }
    return true;
}

bool request_reader::end_line() {
    std::string_view line = line_;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);  // a person typing at telnet
    if (line.empty()) {
        if (current_.attributes == 0) return fail(request_error::empty_request);
        out_->push_back(std::move(current_));
        current_ = policy_request{};
        request_bytes_ = 0;
        line_.clear();
        return true;
    }
    if (++current_.attributes > limits_.max_attributes) return fail(request_error::too_many_attributes);
    const std::size_t eq = line.find('=');
    if (eq == std::string_view::npos || eq == 0) return fail(request_error::malformed_line);
    const std::string_view name = line.substr(0, eq), value = line.substr(eq + 1);
    struct known {
        std::string_view name;
        std::string policy_request::*field;
        bool policy_request::*seen;
    };
    static bool policy_request::*const none = nullptr;
    const known fields[] = {
        {"request", &policy_request::request, &policy_request::has_request},
        {"protocol_state", &policy_request::protocol_state, none},
        {"queue_id", &policy_request::queue_id, none},
        {"sender", &policy_request::sender, &policy_request::has_sender},
        {"recipient", &policy_request::recipient, &policy_request::has_recipient},
        {"client_address", &policy_request::client_address, none},
        {"client_name", &policy_request::client_name, none},
        {"helo_name", &policy_request::helo_name, none},
        {"instance", &policy_request::instance, none},
    };
    for (const auto& f : fields) {
        if (f.name != name) continue;
        std::string& field = current_.*f.field;
        // A name twice would leave it open which one Postfix meant: trouble. (The flags tell
        // an empty first value, sender= for <>, from a missing one.)
        const bool seen = f.seen ? current_.*f.seen : !field.empty();
        if (seen) return fail(request_error::repeated_attribute);
        field.assign(value);
        if (f.seen) current_.*f.seen = true;
        break;
    }
    line_.clear();
    return true;
}

}  // namespace ndrguard::policy
