// The policy protocol's reader (policy/request.hpp): requests as Postfix's SMTPD_POLICY_README
// shows them, at every split of the bytes, and every bound and error.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "ndrguard/policy/request.hpp"

using namespace ndrguard::policy;

namespace {

// SMTPD_POLICY_README's example request (Postfix 3.7's attribute list), for one null-sender RCPT.
const std::string rcpt_request =
    "request=smtpd_access_policy\n"
    "protocol_state=RCPT\n"
    "protocol_name=ESMTP\n"
    "client_address=203.0.113.5\n"
    "client_name=mx.remote.example\n"
    "client_port=41234\n"
    "reverse_client_name=mx.remote.example\n"
    "server_address=192.0.2.1\n"
    "server_port=25\n"
    "helo_name=mx.remote.example\n"
    "sender=\n"
    "recipient=Victim@Example.org\n"
    "recipient_count=0\n"
    "queue_id=\n"
    "instance=1a2b.6570c2a1.9e5f3.0\n"
    "size=0\n"
    "etrn_domain=\n"
    "stress=\n"
    "sasl_method=\n"
    "sasl_username=\n"
    "sasl_sender=\n"
    "ccert_subject=\n"
    "ccert_issuer=\n"
    "ccert_fingerprint=\n"
    "ccert_pubkey_fingerprint=\n"
    "encryption_protocol=\n"
    "encryption_cipher=\n"
    "encryption_keysize=0\n"
    "policy_context=\n"
    "compatibility_level=3.6\n"
    "mail_version=3.7.11\n"
    "\n";

std::vector<policy_request> read_all(const std::string& bytes, std::size_t piece, request_limits lim = {},
                                     request_error* error = nullptr) {
    request_reader r(lim);
    std::vector<policy_request> out;
    for (std::size_t pos = 0; pos < bytes.size(); pos += piece)
        if (!r.feed(std::string_view(bytes).substr(pos, piece), out)) break;
    if (error) *error = r.error();
    return out;
}

}  // namespace

TEST_CASE("a request as Postfix sends it, at every split") {
    for (std::size_t piece = 1; piece <= rcpt_request.size(); ++piece) {
        CAPTURE(piece);
        request_error e{};
        auto got = read_all(rcpt_request + rcpt_request, piece, {}, &e);
        REQUIRE(e == request_error::none);
        REQUIRE(got.size() == 2);
        const auto& r = got[0];
        CHECK(r.request == "smtpd_access_policy");
        CHECK(r.protocol_state == "RCPT");
        CHECK(r.has_sender);
        CHECK(r.sender.empty());
        CHECK(r.has_recipient);
        CHECK(r.recipient == "Victim@Example.org");
        CHECK(r.client_address == "203.0.113.5");
        CHECK(r.client_name == "mx.remote.example");
        CHECK(r.helo_name == "mx.remote.example");
        CHECK(r.instance == "1a2b.6570c2a1.9e5f3.0");
        CHECK(r.queue_id.empty());
        CHECK(r.attributes == 31);
    }
}

TEST_CASE("a sender missing is not the null sender; CRLF is read as LF; values keep '='") {
    auto got = read_all("request=smtpd_access_policy\r\nprotocol_state=RCPT\r\nrecipient=a=b@example.org\r\n\r\n", 7);
    REQUIRE(got.size() == 1);
    CHECK_FALSE(got[0].has_sender);
    CHECK(got[0].recipient == "a=b@example.org");
    CHECK(got[0].protocol_state == "RCPT");
}

TEST_CASE("in_request tells a half request from none") {
    request_reader r;
    std::vector<policy_request> out;
    CHECK_FALSE(r.in_request());
    CHECK(r.feed("request=smtpd_access_policy\nsender=", out));
    CHECK(r.in_request());
    CHECK(out.empty());
    CHECK(r.feed("\n\n", out));
    CHECK_FALSE(r.in_request());
    CHECK(out.size() == 1);
}

TEST_CASE("errors: each one stops the reader, and nothing after it is read") {
    struct row {
        std::string input;
        request_error want;
    };
    request_limits lim;
    lim.max_line_bytes = 64;
    lim.max_attributes = 5;
    lim.max_request_bytes = 200;
    const std::string long_value(80, 'x');
    const row rows[] = {
        {"request=smtpd_access_policy\nsender=" + long_value + "\n\n", request_error::line_too_long},
        {"sender=" + long_value, request_error::line_too_long},  // no newline yet: refused as it comes
        {"a=1\nb=2\nc=3\nd=4\ne=5\nf=6\n\n", request_error::too_many_attributes},
        {"a=1\nb=2\nc=3\nd=4\ne=5\n\n", request_error::none},
        {std::string(5, '\n'), request_error::empty_request},
        {"request=smtpd_access_policy\nno equals sign\n\n", request_error::malformed_line},
        {"=value\n\n", request_error::malformed_line},
        {"recipient=a@example.org\nrecipient=b@example.org\n\n", request_error::repeated_attribute},
        {"sender=\nsender=\n\n", request_error::repeated_attribute},
    };
    for (const auto& r : rows) {
        for (std::size_t piece : {std::size_t(1), std::size_t(3), r.input.size() + 1}) {
            CAPTURE(r.input);
            CAPTURE(piece);
            request_error e{};
            read_all(r.input, piece, lim, &e);
            CHECK(e == r.want);
        }
    }
    std::string nul = "sender=a";
    nul.push_back('\0');
    nul += "b\n\n";
    request_error e{};
    CHECK(read_all(nul, 1, lim, &e).empty());
    CHECK(e == request_error::nul_byte);

    // A request over max_request_bytes in lines that are each short enough.
    std::string big = "request=smtpd_access_policy\n";
    lim.max_attributes = 100;
    for (int i = 0; i < 10; ++i) big += "x" + std::to_string(i) + "=" + std::string(40, 'y') + "\n";
    read_all(big + "\n", 13, lim, &e);
    CHECK(e == request_error::request_too_large);

    // After an error, feed() refuses everything.
    request_reader reader(lim);
    std::vector<policy_request> out;
    CHECK_FALSE(reader.feed("\n", out));
    CHECK_FALSE(reader.feed("request=smtpd_access_policy\n\n", out));
    CHECK(out.empty());
}

TEST_CASE("held bytes stay under max_line_bytes whatever comes") {
    request_limits lim;
    lim.max_line_bytes = 100;
    request_reader r(lim);
    std::vector<policy_request> out;
    for (int i = 0; i < 99; ++i) {
        REQUIRE(r.feed("z", out));
        CHECK(r.held_bytes() <= lim.max_line_bytes);
    }
    CHECK_FALSE(r.feed("zz", out));
    CHECK(r.error() == request_error::line_too_long);
    CHECK(r.held_bytes() == 0);
}

TEST_CASE("the error reported is the one at the first byte in trouble, wherever the reads fall") {
    request_limits lim;
    lim.max_line_bytes = 64;
    std::string nul_late = "sender=" + std::string(80, 'x');
    nul_late.push_back('\0');  // past the line's bound: the bound is the trouble
    std::string nul_early = "sender=x";
    nul_early.push_back('\0');
    nul_early += std::string(80, 'x');  // within it: the NUL is
    for (std::size_t piece = 1; piece <= nul_late.size(); ++piece) {
        CAPTURE(piece);
        request_error e{};
        read_all(nul_late + "\n\n", piece, lim, &e);
        CHECK(e == request_error::line_too_long);
        read_all(nul_early + "\n\n", piece, lim, &e);
        CHECK(e == request_error::nul_byte);
    }
}
