// Hostile input: every limit of detector::limits is hit by a generated message, the result
// says so in its flags, and nothing crashes or throws. The messages are generated here so
// that the repository holds no multi-megabyte files.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>

#include "ndrguard/detector/detector.hpp"

namespace det = ndrguard::detector;

namespace {

const std::string bounce_head =
    "Return-Path: <>\nFrom: MAILER-DAEMON@mx.example.net\nTo: alice@example.org\n"
    "Subject: Undelivered Mail Returned to Sender\n";

bool has_flag(const det::result& r, std::string_view name) {
    auto names = det::flag_names(r.flags);
    return std::find(names.begin(), names.end(), name) != names.end();
}

}  // namespace

TEST_CASE("deep multipart nesting stops at max_mime_depth") {
    std::string m = bounce_head;
    for (int i = 0; i < 200; ++i)
        m += "Content-Type: multipart/mixed; boundary=\"b" + std::to_string(i) + "\"\n\n--b" + std::to_string(i) + "\n";
    m += "Content-Type: text/plain\n\nYour message could not be delivered.\n";
    det::result r;
    CHECK_NOTHROW(r = det::classify(m));
    CHECK(has_flag(r, "mime_too_deep"));
    CHECK(r.klass != det::message_class::not_bounce);  // the top-level signals still count
}

TEST_CASE("thousands of parts stop at max_mime_parts") {
    std::string m = bounce_head + "Content-Type: multipart/mixed; boundary=\"x\"\n\n";
    for (int i = 0; i < 5000; ++i) m += "--x\nContent-Type: text/plain\n\npart\n";
    m += "--x--\n";
    auto r = det::classify(m);
    CHECK(has_flag(r, "too_many_parts"));
}

TEST_CASE("a 1 MB header line and too many fields") {
    std::string m = bounce_head + "X-Long: " + std::string(1 << 20, 'a') + "\n\nbody\n";
    auto r = det::classify(m);
    CHECK(has_flag(r, "header_too_large"));
    CHECK(r.subject == "Undelivered Mail Returned to Sender");

    std::string many = bounce_head;
    for (int i = 0; i < 3000; ++i) many += "X-F: " + std::to_string(i) + "\n";
    many += "\nbody\n";
    CHECK(has_flag(det::classify(many), "too_many_header_fields"));
}

TEST_CASE("a message over max_message_bytes is read up to the limit") {
    det::limits lim;
    lim.max_message_bytes = 4096;
    std::string m = bounce_head + "\n" + std::string(10000, 'x');
    auto r = det::classify(m, {}, lim);
    CHECK(has_flag(r, "truncated"));
    CHECK(r.subject == "Undelivered Mail Returned to Sender");
}

TEST_CASE("NUL bytes, missing and unterminated boundaries, invalid base64") {
    std::string nul = bounce_head + "\nYour message could not be delivered.\n";
    nul.insert(nul.size() - 5, 1, '\0');
    CHECK(has_flag(det::classify(nul), "nul_byte"));

    auto missing = det::classify(bounce_head + "Content-Type: multipart/mixed\n\nYour message could not be delivered "
                                               "to bob@example.net: 550 5.1.1 user unknown\n");
    CHECK(has_flag(missing, "missing_boundary"));
    CHECK(missing.klass == det::message_class::ndr);  // the unsplittable body is read as text

    auto open = det::classify(bounce_head + "Content-Type: multipart/mixed; boundary=z\n\n--z\nContent-Type: text/plain\n\n"
                                            "could not be delivered\n");
    CHECK(has_flag(open, "unterminated_multipart"));

    auto b64 = det::classify(bounce_head + "Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n"
                                           "!!!not*base64***\n");
    CHECK(has_flag(b64, "bad_encoding"));
}

TEST_CASE("references are bounded by max_references") {
    std::string m = bounce_head +
                    "Content-Type: multipart/report; report-type=delivery-status; boundary=r\n\n--r\n"
                    "Content-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n";
    for (int i = 0; i < 500; ++i)
        m += "\nFinal-Recipient: rfc822; u" + std::to_string(i) + "@example.net\nAction: failed\nStatus: 5.1.1\n";
    m += "--r--\n";
    auto r = det::classify(m);
    CHECK(r.klass == det::message_class::dsn);
    CHECK(r.recipients.size() == det::limits{}.max_references);
    CHECK(has_flag(r, "too_many_references"));
}

TEST_CASE("recipients named in a bounce's text are bounded, several on one line too") {
    // Found by the fuzz target's invariants: the bound was checked once per line.
    std::string m = "From: MAILER-DAEMON@mx.example.net\nTo: alice@example.org\n"
                    "Subject: Undelivered Mail Returned to Sender\n\n"
                    "This is the mail system. Your message could not be delivered to:\n"
                    "a@example.net b@example.net c@example.net d@example.net: 550 5.1.1 user unknown\n";
    det::limits lim;
    lim.max_references = 2;
    auto r = det::classify(m, {}, lim);
    CHECK(r.recipients.size() == 2);
    CHECK(has_flag(r, "too_many_references"));
    CHECK(det::classify(m).recipients.size() == 4);
}

TEST_CASE("text and decoded output are bounded") {
    det::limits lim;
    lim.max_text_bytes = 1024;
    lim.max_decoded_bytes = 2048;
    std::string body;
    for (int i = 0; i < 1000; ++i) body += "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=\n";
    auto r = det::classify(bounce_head + "Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n" + body, {}, lim);
    CHECK(has_flag(r, "truncated"));
    auto t = det::classify(bounce_head + "\n" + std::string(100000, 'y'), {}, lim);
    CHECK(has_flag(t, "text_truncated"));
}

TEST_CASE("mimetic's crashers classify normally") {
    // Debian's mimetic 0.9.8 reads freed memory on an empty group and aborts on this multipart.
    for (const char* to : {"undisclosed-recipients:", "undisclosed-recipients:;", "group: ;", ":"}) {
        CAPTURE(to);
        auto r = det::classify(std::string("From: a@example.org\nTo: ") + to + "\nSubject: hello\n\nhi\n");
        CHECK(r.klass == det::message_class::not_bounce);
        CHECK(r.subject == "hello");
    }
    auto tiny = det::classify("Content-Type: multipart/mixed; boundary=\"\"\n\n--\n--\n");
    CHECK(tiny.klass == det::message_class::not_bounce);
}

TEST_CASE("empty and line-ending-only input") {
    for (std::string m : {std::string(), std::string("\n"), std::string("\r\n\r\n"), std::string("\r\r\r"),
                          std::string(100000, '\n'), std::string("From \n")}) {
        det::result r;
        CHECK_NOTHROW(r = det::classify(m));
        CHECK(r.klass == det::message_class::not_bounce);
    }
}
