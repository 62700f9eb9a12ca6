// Amazon SES event notifications delivered by mail (SNS "AWS Notification Message"): the
// report is a JSON document in a text/plain body, not a multipart/report. Read with a small
// bounded JSON scanner (no recursion, depth and size capped), since the detector takes no
// third-party dependency.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ndrguard/detector/detector.hpp"

namespace ndrguard::detector::ses {

enum class notification_type { bounce, complaint, delivery };

struct notification {
    notification_type type = notification_type::bounce;
    std::string message_id;    // mail.messageId: SES's id of the original (no '@')
    std::string header_message_id;  // the original's Message-ID header, when SES included it
    std::string source;        // mail.source: the original's envelope sender
    std::string reporting_mta;
    bool transient = false;    // bounce.bounceType == "Transient"
    std::vector<recipient_report> recipients;
};

// The notification in `text` (the body of an SES/SNS message), if it holds one. At most
// max_recipients recipients are read; bytes after max_bytes are not looked at.
std::optional<notification> parse_notification(std::string_view text, std::size_t max_bytes,
                                               std::size_t max_recipients);

}  // namespace ndrguard::detector::ses
