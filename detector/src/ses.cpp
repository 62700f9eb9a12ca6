#include "ses.hpp"

#include <cstdint>

#include "text.hpp"

namespace ndrguard::detector::ses {

namespace {

constexpr std::size_t max_depth = 32;

// One pass over a JSON text, reporting each scalar with the key path above it ("bounce.
// bouncedRecipients.emailAddress") and each object opened inside an array, so that the
// caller can group an array element's fields. Malformed JSON simply ends the scan.
class json_scanner {
public:
    explicit json_scanner(std::string_view in) : in_(in) {}

    template <class OnScalar, class OnElement>
    void run(OnScalar on_scalar, OnElement on_element) {
        // Each frame: is it an array, and the key path length to restore when it closes.
        struct frame {
            bool array;
            std::size_t path_len;
        };
        frame stack[max_depth];
        std::size_t depth = 0;
        std::string pending_key;
        bool expect_key = false;
        while (skip_space()) {
            char c = in_[pos_];
            if (c == '{' || c == '[') {
                if (depth == max_depth) return;
                bool in_array = depth > 0 && stack[depth - 1].array;
                stack[depth++] = frame{c == '[', path_.size()};
                if (!pending_key.empty()) push_key(pending_key);
                pending_key.clear();
                if (c == '{' && in_array) on_element(path_);
                expect_key = c == '{';
                ++pos_;
            } else if (c == '}' || c == ']') {
                if (depth == 0) return;
                path_.resize(stack[--depth].path_len);
                ++pos_;
                expect_key = false;
            } else if (c == ',') {
                expect_key = depth > 0 && !stack[depth - 1].array;
                ++pos_;
            } else if (c == ':') {
                ++pos_;
            } else if (c == '"') {
                std::string s;
                if (!read_string(s)) return;
                if (expect_key) {
                    pending_key = std::move(s);
                    expect_key = false;
                } else {
                    emit(on_scalar, pending_key, s);
                    pending_key.clear();
                }
            } else {
                std::size_t start = pos_;
                while (pos_ < in_.size() && in_[pos_] != ',' && in_[pos_] != '}' && in_[pos_] != ']' &&
                       !text::is_space(in_[pos_]))
                    ++pos_;
                if (start == pos_) return;
                emit(on_scalar, pending_key, std::string(in_.substr(start, pos_ - start)));
                pending_key.clear();
            }
        }
    }

private:
    template <class OnScalar>
    void emit(OnScalar& on_scalar, const std::string& key, const std::string& value) {
        std::size_t len = path_.size();
        if (!key.empty()) push_key(key);
        on_scalar(std::string_view(path_), value);
        path_.resize(len);
    }
    void push_key(const std::string& key) {
        if (!path_.empty()) path_.push_back('.');
        path_.append(key);
    }
    bool skip_space() {
        while (pos_ < in_.size() && text::is_space(in_[pos_])) ++pos_;
        return pos_ < in_.size();
    }
    bool read_string(std::string& out) {
        ++pos_;  // the opening quote
        while (pos_ < in_.size()) {
            char c = in_[pos_++];
            if (c == '"') return true;
            if (c != '\\') {
                out.push_back(c);
                continue;
            }
            if (pos_ >= in_.size()) return false;
            char e = in_[pos_++];
            switch (e) {
                case 'n': out.push_back('\n'); break;
                case 't': out.push_back('\t'); break;
                case 'r': out.push_back('\r'); break;
                case 'b': case 'f': out.push_back(' '); break;
                case 'u': {
                    std::uint32_t cp = 0;
                    for (int i = 0; i < 4; ++i) {
                        if (pos_ >= in_.size() || text::hex_value(in_[pos_]) < 0) return false;
                        cp = cp * 16 + std::uint32_t(text::hex_value(in_[pos_++]));
                    }
                    text::append_utf8(out, cp);
                    break;
                }
                default: out.push_back(e);  // \" \\ \/ and anything lenient
            }
        }
        return false;
    }

    std::string_view in_;
    std::size_t pos_ = 0;
    std::string path_;
};

recipient_action action_named(std::string_view a) {
    if (text::iequals(a, "failed")) return recipient_action::failed;
    if (text::iequals(a, "delayed")) return recipient_action::delayed;
    if (text::iequals(a, "delivered")) return recipient_action::delivered;
    if (text::iequals(a, "relayed")) return recipient_action::relayed;
    if (text::iequals(a, "expanded")) return recipient_action::expanded;
    return recipient_action::unknown;
}

}  // namespace

std::optional<notification> parse_notification(std::string_view text_body, std::size_t max_bytes,
                                               std::size_t max_recipients) {
    std::size_t start = text_body.find("\"notificationType\"");
    if (start == std::string_view::npos) {
        // The raw SNS envelope ("Raw message delivery" off): the event is a JSON string in
        // its "Message" field. Unwrapped once.
        std::size_t open = text_body.find('{');
        if (open == std::string_view::npos || text_body.find("notificationType", open) == std::string_view::npos)
            return std::nullopt;
        std::string inner;
        json_scanner(text_body.substr(open, max_bytes))
            .run([&](std::string_view path, const std::string& value) {
                     if (path == "Message" && inner.empty()) inner = value;
                 },
                 [](std::string_view) {});
        if (inner.find("\"notificationType\"") == std::string::npos) return std::nullopt;
        return parse_notification(inner, max_bytes, max_recipients);
    }
    start = text_body.rfind('{', start);
    if (start == std::string_view::npos) return std::nullopt;
    std::string_view json = text_body.substr(start, max_bytes);

    notification n;
    std::string type;
    std::string header_name;  // the last mail.headers[].name seen, to pair it with its value
    std::string open_array;  // the recipient array whose element is being read, if any
    json_scanner(json).run(
        [&](std::string_view path, const std::string& value) {
            if (path == "notificationType") type = value;
            else if (path == "mail.messageId") n.message_id = value;
            else if (path == "mail.source") n.source = text::extract_address(value);
            else if (path == "mail.headers.name") header_name = value;
            else if (path == "mail.headers.value" && text::iequals(header_name, "message-id"))
                n.header_message_id = normalize_message_id(value);
            else if (path == "bounce.bounceType") n.transient = text::iequals(value, "transient");
            else if ((path == "bounce.reportingMTA" || path == "delivery.reportingMTA") && n.reporting_mta.empty())
                n.reporting_mta = std::string(text::trim(value.substr(value.find(';') == std::string::npos
                                                                          ? 0 : value.find(';') + 1)));
            else if (!open_array.empty() && path.size() > open_array.size() && path.starts_with(open_array) &&
                     path[open_array.size()] == '.' && !n.recipients.empty()) {
                auto& r = n.recipients.back();
                if (path.ends_with(".emailAddress")) r.address = text::extract_address(value);
                else if (path.ends_with(".action")) r.action = action_named(value);
                else if (path.ends_with(".status")) r.status = value;
                else if (path.ends_with(".diagnosticCode")) r.diagnostic = value;
            }
            if (path == "delivery.recipients" && n.recipients.size() < max_recipients) {
                recipient_report r;
                r.address = text::extract_address(value);
                r.action = recipient_action::delivered;
                n.recipients.push_back(std::move(r));
            }
        },
        [&](std::string_view array_path) {
            open_array.clear();
            if ((array_path == "bounce.bouncedRecipients" || array_path == "complaint.complainedRecipients") &&
                n.recipients.size() < max_recipients) {
                open_array = array_path;
                n.recipients.emplace_back();
            }
        });

    if (type == "Bounce") n.type = notification_type::bounce;
    else if (type == "Complaint") n.type = notification_type::complaint;
    else if (type == "Delivery") n.type = notification_type::delivery;
    else return std::nullopt;
    for (auto& r : n.recipients)
        if (r.action == recipient_action::unknown && n.type == notification_type::bounce)
            r.action = n.transient ? recipient_action::delayed : recipient_action::failed;
    return n;
}

}  // namespace ndrguard::detector::ses
