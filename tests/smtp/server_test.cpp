// The SMTP server state machine: whole transactions, pipelining, the end-of-data dot split
// at every byte boundary, dot-unstuffing, limits and errors.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "ndrguard/smtp/server.hpp"

using ndrguard::smtp::server_limits;
using ndrguard::smtp::smtp_server_session;

namespace {

const std::string envelope =
    "EHLO client.example.org\r\n"
    "XFORWARD NAME=mx.example.net ADDR=198.51.100.7 IDENT=4F2A81C0031\r\n"
    "MAIL FROM:<> SIZE=300 BODY=8BITMIME\r\n"
    "RCPT TO:<alice@example.org> NOTIFY=NEVER\r\n"
    "RCPT TO:<bob@example.org>\r\n"
    "DATA\r\n";
const std::string content = "Subject: hi\r\n\r\n..leading dot\r\n.\r\n";  // one stuffed dot

int count(const std::string& s, const std::string& what) {
    int n = 0;
    for (std::size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
    return n;
}

}  // namespace

TEST_CASE("a pipelined transaction, decided after DATA") {
    smtp_server_session s("filter.example.org");
    CHECK(s.greeting() == "220 filter.example.org ESMTP ndrguard\r\n");
    std::string out = s.feed(envelope + content + "QUIT\r\n");
    CHECK(out.find("250-PIPELINING") != std::string::npos);
    CHECK(out.find("250 XFORWARD NAME ADDR") != std::string::npos);
    CHECK(count(out, "250 2.1.5 Ok") == 2);
    CHECK(out.rfind("354 ", std::string::npos) != std::string::npos);
    REQUIRE(s.has_message());
    const auto& m = s.message();
    CHECK(m.helo == "client.example.org");
    CHECK(m.esmtp);
    CHECK(m.mail_from.empty());
    CHECK(m.mail_params == "SIZE=300 BODY=8BITMIME");
    REQUIRE(m.recipients.size() == 2);
    CHECK(m.recipients[0].address == "alice@example.org");
    CHECK(m.recipients[0].params == "NOTIFY=NEVER");
    CHECK(m.message == "Subject: hi\r\n\r\n.leading dot\r\n");
    REQUIRE(m.xforward.size() == 3);
    CHECK(m.xforward[2] == std::make_pair(std::string("IDENT"), std::string("4F2A81C0031")));
    CHECK_FALSE(s.closed());  // the pipelined QUIT waits for the decision
    std::string after = s.complete("250 2.0.0 Ok: queued as ABC123");
    CHECK(after == "250 2.0.0 Ok: queued as ABC123\r\n221 2.0.0 Bye\r\n");
    CHECK(s.closed());
}

TEST_CASE("the end of data is found whatever the chunk boundaries") {
    const std::string all = envelope + content;
    for (std::size_t cut1 = 0; cut1 <= all.size(); ++cut1) {
        for (std::size_t cut2 : {cut1, std::min(all.size(), cut1 + 1), std::min(all.size(), cut1 + 3)}) {
            smtp_server_session s("f");
            s.feed(all.substr(0, cut1));
            s.feed(all.substr(cut1, cut2 - cut1));
            s.feed(all.substr(cut2));
            CAPTURE(cut1);
            REQUIRE(s.has_message());
            CHECK(s.message().message == "Subject: hi\r\n\r\n.leading dot\r\n");
        }
    }
}

TEST_CASE("bare LF line endings are accepted") {
    smtp_server_session s("f");
    s.feed("HELO c\nMAIL FROM:<a@example.org>\nRCPT TO:<b@example.org>\nDATA\nhello\n.\n");
    REQUIRE(s.has_message());
    CHECK(s.message().message == "hello\r\n");
    CHECK_FALSE(s.message().esmtp);
}

TEST_CASE("commands out of order, garbage and bad syntax") {
    smtp_server_session s("f");
    CHECK(s.feed("MAIL FROM:<a@example.org>\r\n") == "503 5.5.1 Error: send HELO/EHLO first\r\n");
    CHECK(s.feed("EHLO\r\n").rfind("501 5.5.4", 0) == 0);
    s.feed("EHLO c\r\n");
    CHECK(s.feed("RCPT TO:<b@example.org>\r\n") == "503 5.5.1 Error: need MAIL command\r\n");
    CHECK(s.feed("DATA\r\n") == "503 5.5.1 Error: need MAIL command\r\n");
    CHECK(s.feed("MAIL FROM:a@example.org\r\n") == "250 2.1.0 Ok\r\n");  // bare address allowed
    CHECK(s.feed("MAIL FROM:<x@example.org>\r\n") == "503 5.5.1 Error: nested MAIL command\r\n");
    CHECK(s.feed("DATA\r\n") == "503 5.5.1 Error: need RCPT command\r\n");
    CHECK(s.feed("RCPT TO:<>\r\n") == "501 5.1.3 Bad recipient address syntax\r\n");
    CHECK(s.feed("RCPT TO:<b@example.org\r\n") == "501 5.5.4 Syntax: RCPT TO:<address>\r\n");
    CHECK(s.feed("XFORWARD NAME=x\r\n") == "503 5.5.1 Error: MAIL transaction in progress\r\n");
    CHECK(s.feed("FROB\r\n") == "500 5.5.2 Error: command not recognized\r\n");
    CHECK(s.feed("\r\n") == "500 5.5.2 Error: bad syntax\r\n");
    CHECK(s.feed("RSET\r\nXFORWARD BOGUS=1\r\n") == "250 2.0.0 Ok\r\n501 5.5.4 Bad XFORWARD attribute name: BOGUS\r\n");
    CHECK(s.feed("NOOP\r\n") == "250 2.0.0 Ok\r\n");
}

TEST_CASE("limits: line length, message size, recipients, errors") {
    server_limits lim;
    lim.max_line_bytes = 64;
    lim.max_message_bytes = 100;
    lim.max_recipients = 2;
    lim.max_errors = 5;

    smtp_server_session s("f", lim);
    CHECK(s.feed("EHLO " + std::string(100, 'x') + "\r\nNOOP\r\n") == "500 5.5.2 Error: line too long\r\n250 2.0.0 Ok\r\n");
    // An over-long line that arrives in pieces is answered once and skipped to its end.
    CHECK(s.feed(std::string(70, 'y')) == "500 5.5.2 Error: line too long\r\n");
    CHECK(s.feed(std::string(500, 'y')).empty());
    CHECK(s.feed("yyy\r\nEHLO c\r\n").rfind("250-f\r\n", 0) == 0);

    CHECK(s.feed("MAIL FROM:<a@example.org> SIZE=1000\r\n") == "552 5.3.4 Message size exceeds fixed limit\r\n");
    s.feed("MAIL FROM:<a@example.org>\r\nRCPT TO:<1@example.org>\r\nRCPT TO:<2@example.org>\r\n");
    CHECK(s.feed("RCPT TO:<3@example.org>\r\n") == "452 4.5.3 Error: too many recipients\r\n");
    s.feed("DATA\r\n");
    std::string big;
    for (int i = 0; i < 20; ++i) big += "0123456789\r\n";
    CHECK(s.feed(big + ".\r\n") == "552 5.3.4 Error: message file too big\r\n");
    CHECK_FALSE(s.has_message());
    CHECK(s.feed("RCPT TO:<b@example.org>\r\n") == "503 5.5.1 Error: need MAIL command\r\n");  // reset

    smtp_server_session t("f", lim);
    std::string out;
    for (int i = 0; i < 10 && !t.closed(); ++i) out += t.feed("BAD\r\n");
    CHECK(t.closed());
    CHECK(out.find("421 4.7.0 f Error: too many errors") != std::string::npos);
}

TEST_CASE("long data lines are content, kept bounded and intact") {
    server_limits lim;
    lim.max_line_bytes = 64;
    smtp_server_session s("f", lim);
    s.feed("HELO c\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<b@x.example>\r\nDATA\r\n");
    std::string line(1000, 'z');
    for (std::size_t i = 0; i < line.size(); i += 100) s.feed(line.substr(i, 100));
    s.feed("\r\n.\r\n");
    REQUIRE(s.has_message());
    CHECK(s.message().message == line + "\r\n");
}

TEST_CASE("input pipelined past DATA's end is held, and bounded") {
    server_limits lim;
    lim.max_pending_bytes = 16;
    smtp_server_session s("f", lim);
    s.feed("HELO c\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<b@x.example>\r\nDATA\r\nx\r\n.\r\n");
    REQUIRE(s.has_message());
    CHECK(s.feed("NOOP\r\n").empty());
    CHECK(s.feed(std::string(100, 'n')).empty());  // over the bound: the session will end
    std::string out = s.complete("451 4.3.0 Error: queue file write error");
    CHECK(out.rfind("451 4.3.0", 0) == 0);
    CHECK(out.find("421 4.7.0") != std::string::npos);
    CHECK(s.closed());
}

TEST_CASE("two transactions on one connection; HELO and XFORWARD persist, the rest resets") {
    smtp_server_session s("f");
    s.feed(envelope + content);
    REQUIRE(s.has_message());
    s.complete("250 2.0.0 Ok: queued as A");
    s.feed("MAIL FROM:<c@example.org>\r\nRCPT TO:<d@example.org>\r\nDATA\r\nsecond\r\n.\r\n");
    REQUIRE(s.has_message());
    CHECK(s.message().mail_from == "c@example.org");
    CHECK(s.message().recipients.size() == 1);
    CHECK(s.message().message == "second\r\n");
    CHECK(s.message().helo == "client.example.org");
    CHECK(s.message().xforward.size() == 3);
}

namespace {

// The message `data` (DATA's content up to and with its final dot) gives, fed in three pieces
// cut at every pair of byte offsets, or nullopt-like "" when no message came.
std::vector<std::string> messages_at_every_split(const std::string& data, const server_limits& lim) {
    const std::string start = "HELO c\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<b@x.example>\r\nDATA\r\n";
    std::vector<std::string> got;
    for (std::size_t cut1 = 0; cut1 <= data.size(); ++cut1)
        for (std::size_t cut2 = cut1; cut2 <= data.size(); ++cut2) {
            smtp_server_session s("f", lim);
            s.feed(start);
            s.feed(data.substr(0, cut1));
            s.feed(data.substr(cut1, cut2 - cut1));
            s.feed(data.substr(cut2));
            got.push_back(s.has_message() ? s.message().message : std::string("(no message)"));
        }
    return got;
}

}  // namespace

TEST_CASE("a long data line split between its CR and LF gains no CR, at every split") {
    server_limits lim;
    lim.max_line_bytes = 64;  // the line is taken in pieces
    const std::string line(150, 'z');
    for (const std::string& body : {line + "\r\n", line + "\r\nnext\r\n", "." + line + "\r\n"}) {
        const std::string want = body.front() == '.' ? body.substr(1) : body;
        auto got = messages_at_every_split(body + ".\r\n", lim);
        for (std::size_t i = 0; i < got.size(); ++i) {
            CAPTURE(i);
            REQUIRE(got[i] == want);
        }
    }
}

TEST_CASE("bare CR in data is written as CRLF, like bare LF, and never ends the data") {
    server_limits lim;
    lim.max_line_bytes = 64;
    struct {
        std::string data, want;
    } cases[] = {
        {"a\rb\r\n.\r\n", "a\r\nb\r\n"},
        {"a\r\r\n.\r\n", "a\r\n\r\n"},
        {"\r\r\r\n.\r\n", "\r\n\r\n\r\n"},
        {"a\r\n\rb\r\n.\r\n", "a\r\n\r\nb\r\n"},
        // A dot after a bare CR is content: not the end of data, not unstuffed.
        {"x\r.\r\n.\r\n", "x\r\n.\r\n"},
        {"x\r..\r\n.\r\n", "x\r\n..\r\n"},
        {"bare\nlf\r\n.\r\n", "bare\r\nlf\r\n"},
        {std::string(100, 'y') + "\r" + std::string(100, 'w') + "\r\n.\r\n",  // in a long line too
         std::string(100, 'y') + "\r\n" + std::string(100, 'w') + "\r\n"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.data.substr(0, 40));
        const auto got = messages_at_every_split(c.data, lim);
        for (std::size_t i = 0; i < got.size(); ++i) {
            CAPTURE(i);
            REQUIRE(got[i] == c.want);
        }
    }
}

TEST_CASE("RCPT of an address that is not UTF-8: 501 5.1.3 before queue, accepted after (issue 13 item 4)") {
    const std::string bad_utf8 = "j\xf6rg@example.org";  // Latin-1 ö: not UTF-8
    const std::string nul = std::string("a\0b@example.org", 15);
    const std::string utf8 = "j\xc3\xb6rg@example.org";
    server_limits before;
    before.refuse_malformed_recipients = true;
    smtp_server_session s("f", before);
    CHECK(s.feed("EHLO c\r\n").find("250-SMTPUTF8\r\n") != std::string::npos);  // Postfix needs it for UTF-8
    CHECK(s.feed("MAIL FROM:<sender@example.net> SMTPUTF8\r\n") == "250 2.1.0 Ok\r\n");
    CHECK(s.feed("RCPT TO:<" + bad_utf8 + ">\r\n") == "501 5.1.3 Bad recipient address syntax\r\n");
    CHECK(s.feed("RCPT TO:<" + nul + ">\r\n") == "501 5.1.3 Bad recipient address syntax\r\n");
    CHECK(s.feed("RCPT TO:<j\xc0\xb6rg@example.org>\r\n") == "501 5.1.3 Bad recipient address syntax\r\n");  // overlong
    CHECK(s.feed("RCPT TO:<" + utf8 + ">\r\n") == "250 2.1.5 Ok\r\n");
    s.feed("DATA\r\nSubject: x\r\n\r\nbody\r\n.\r\n");
    REQUIRE(s.has_message());
    REQUIRE(s.message().recipients.size() == 1);
    CHECK(s.message().recipients[0].address == utf8);  // byte for byte
    CHECK(s.message().mail_params == "SMTPUTF8");      // passed on unchanged

    // After queue (the default): Postfix queued it already; the filter passes it on unfiltered.
    smtp_server_session a("f");
    a.feed("EHLO c\r\nMAIL FROM:<>\r\n");
    CHECK(a.feed("RCPT TO:<" + bad_utf8 + ">\r\n") == "250 2.1.5 Ok\r\n");
    a.feed("DATA\r\nx\r\n.\r\n");
    REQUIRE(a.has_message());
    CHECK(a.message().mail_from.empty());
    CHECK(a.message().recipients[0].address == bad_utf8);
    CHECK_FALSE(ndrguard::smtp::well_formed_address(bad_utf8));
    CHECK_FALSE(ndrguard::smtp::well_formed_address(nul));
    CHECK(ndrguard::smtp::well_formed_address(utf8));
}

TEST_CASE("memory accounting: content_bytes, drop_message with 452, take_content") {
    smtp_server_session s("filter.test");
    s.feed(envelope);
    CHECK(s.content_bytes() < 1024);
    // A large message grows by a quarter at a time, not doubled: what it is charged stays near its size.
    const std::string line(998, 'x');
    std::string chunk;
    for (int i = 0; i < 1000; ++i) chunk += line + "\r\n";
    for (int i = 0; i < 20; ++i) s.feed(chunk);  // 20 MB
    CHECK(s.content_bytes() >= 20u * 1000 * 1000);
    CHECK(s.content_bytes() <= 20u * 1000 * 1000 * 5 / 4 + (64u << 10) + 4);
    // Over the caller's budget: freed at once, the rest of DATA is read, the dot gets the reply.
    s.drop_message("452 4.3.1 Insufficient system storage");
    CHECK(s.content_bytes() < 64);  // (the string's own inline room)
    CHECK(s.feed(chunk).empty());
    CHECK(s.content_bytes() < 64);  // (the string's own inline room)
    CHECK(s.feed(".\r\n") == "452 4.3.1 Insufficient system storage\r\n");
    CHECK_FALSE(s.has_message());
    // The next transaction is normal; its content can be taken, leaving the session's empty.
    CHECK(s.feed("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n") == "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n");
    s.feed(content);
    REQUIRE(s.has_message());
    CHECK(s.take_content() == "Subject: hi\r\n\r\n.leading dot\r\n");
    CHECK(s.message().message.empty());
    CHECK(s.message().recipients.size() == 1);  // the envelope stays until complete()
    CHECK(s.complete("250 2.0.0 Ok") == "250 2.0.0 Ok\r\n");
    // drop_message outside DATA changes nothing.
    s.drop_message("452 4.3.1 Insufficient system storage");
    CHECK(s.feed("NOOP\r\n") == "250 2.0.0 Ok\r\n");
}

TEST_CASE("a big buffer is given back when its transaction ends") {
    smtp_server_session s("filter.test");
    s.feed(envelope);
    std::string chunk(4u << 20, 'x');
    s.feed(chunk + "\r\n.\r\n");
    REQUIRE(s.has_message());
    CHECK(s.content_bytes() > (4u << 20));
    s.complete("250 2.0.0 Ok");
    CHECK(s.content_bytes() < (1u << 20));
}
