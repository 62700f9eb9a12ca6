// The reinjection client, against the server state machine in memory (the two must agree on
// every byte) and against scripted replies for the failure paths.
#include <doctest/doctest.h>

#include <string>

#include "ndrguard/smtp/client.hpp"
#include "ndrguard/smtp/server.hpp"

using namespace ndrguard::smtp;

namespace {

transaction sample_transaction(std::string message) {
    transaction t;
    t.mail_from = "";
    t.mail_params = "SIZE=120 BODY=8BITMIME RET=HDRS ENVID=abc SMTPUTF8 X-UNKNOWN=1";
    t.recipients = {{"alice@example.org", "NOTIFY=NEVER ORCPT=rfc822;alice@example.org"}, {"bob@example.org", ""}};
    t.xforward = {{"NAME", "mx.example.net"}, {"ADDR", "198.51.100.7"}, {"IDENT", "4F2A81C0031"}};
    t.message = std::move(message);
    return t;
}

// Runs client and server against each other until the client is done; the server accepts
// every message with `answer`. Returns the server's view of the last message.
transaction exchange(smtp_client_session& c, smtp_server_session& s, const transaction& t, bool fresh,
                     const std::string& answer = "250 2.0.0 Ok: queued as QID42") {
    std::string to_server = c.start(t);
    std::string to_client = fresh ? s.greeting() : std::string();
    transaction seen;
    for (int round = 0; round < 100; ++round) {
        if (!to_server.empty()) {
            to_client += s.feed(to_server);
            to_server.clear();
        }
        if (s.has_message()) {
            seen = s.message();
            to_client += s.complete(answer);
        }
        if (!to_client.empty()) {
            to_server += c.feed(to_client);
            to_client.clear();
        }
        if (c.state() != smtp_client_session::status::busy && c.state() != smtp_client_session::status::connecting &&
            c.state() != smtp_client_session::status::idle)
            break;
    }
    return seen;
}

}  // namespace

TEST_CASE("reply parsing: single, multi-line, incomplete, malformed") {
    smtp_reply r;
    bool bad = false;
    CHECK(parse_reply("250 2.0.0 Ok: queued as ABC123\r\n", r, bad) == 32);
    CHECK(r.code == 250);
    CHECK(queue_id_of(r) == "ABC123");
    CHECK(parse_reply("250-mx.example\r\n250-PIPELINING\r\n250 DSN\r\n", r, bad) > 0);
    CHECK(r.text == "mx.example\nPIPELINING\nDSN");
    CHECK(r.summary() == "250 mx.example");  // the code and the first line
    CHECK(smtp_reply{0, "connect to 127.0.0.1:10026: refused"}.summary() == "connect to 127.0.0.1:10026: refused");
    CHECK(parse_reply("250-mx.example\r\n250 DS", r, bad) == 0);
    CHECK_FALSE(bad);
    CHECK(parse_reply("hello\r\n", r, bad) == 0);
    CHECK(bad);
    CHECK(parse_reply("250-a\r\n451 b\r\n", r, bad) == 0);  // codes must agree
    CHECK(bad);
    CHECK(parse_reply("220\r\n", r, bad) == 5);
    CHECK(r.code == 220);
}

TEST_CASE("dot-stuffing and XFORWARD line splitting") {
    CHECK(dot_stuffed("a\r\n.b\r\n..c\r\n") == "a\r\n..b\r\n...c\r\n.\r\n");
    CHECK(dot_stuffed(".x") == "..x\r\n.\r\n");
    CHECK(dot_stuffed("lf\nonly\n") == "lf\r\nonly\r\n.\r\n");
    CHECK(dot_stuffed("") == ".\r\n");
    std::vector<std::pair<std::string, std::string>> attrs;
    for (int i = 0; i < 20; ++i) attrs.emplace_back("NAME", std::string(40, char('a' + i)));
    auto lines = xforward_lines(attrs, 512);
    REQUIRE(lines.size() >= 2);
    std::size_t items = 0;
    for (const auto& l : lines) {
        CHECK(l.size() <= 512);
        CHECK(l.rfind("XFORWARD NAME=", 0) == 0);
        for (std::size_t p = l.find("NAME="); p != std::string::npos; p = l.find("NAME=", p + 1)) ++items;
    }
    CHECK(items == 20);
    CHECK(xforward_lines({{"NAME", std::string(600, 'x')}}).empty());  // cannot fit: dropped
}

TEST_CASE("client and server agree on every byte; the connection is reused") {
    smtp_server_session server("next-hop.example");
    smtp_client_session client("filter.example");
    std::string body = "Subject: dots\r\n\r\n.one\r\n..two\r\n.\r\nend\r\n";
    transaction t = sample_transaction(body);
    transaction seen = exchange(client, server, t, true);
    REQUIRE(client.state() == smtp_client_session::status::delivered);
    CHECK(client.queue_id() == "QID42");
    CHECK(seen.message == body);
    CHECK(seen.mail_from.empty());
    // Only parameters of offered extensions pass (the server offers SIZE, 8BITMIME, DSN, SMTPUTF8).
    CHECK(seen.mail_params == "SIZE=120 BODY=8BITMIME RET=HDRS ENVID=abc SMTPUTF8");
    REQUIRE(seen.recipients.size() == 2);
    CHECK(seen.recipients[0].params == "NOTIFY=NEVER ORCPT=rfc822;alice@example.org");
    CHECK(seen.xforward == t.xforward);

    transaction second = sample_transaction("second\r\n");
    second.mail_from = "carol@example.org";
    transaction seen2 = exchange(client, server, second, false, "250 2.0.0 Ok: queued as QID43");
    REQUIRE(client.state() == smtp_client_session::status::delivered);
    CHECK(client.queue_id() == "QID43");
    CHECK(seen2.mail_from == "carol@example.org");
    CHECK(seen2.message == "second\r\n");
}

TEST_CASE("pipelined: one write for the envelope; a refusal read in order, then RSET or hang up") {
    smtp_client_session c("filter.example");
    transaction t = sample_transaction("x\r\n");
    c.start(t);
    CHECK(c.feed("220 hop ESMTP\r\n") == "EHLO filter.example\r\n");
    std::string batch = c.feed("250-hop\r\n250-PIPELINING\r\n250 XFORWARD NAME ADDR IDENT\r\n");
    CHECK(batch == "XFORWARD NAME=mx.example.net ADDR=198.51.100.7 IDENT=4F2A81C0031\r\nMAIL FROM:<>\r\n"
                   "RCPT TO:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n");
    // Replies may arrive in pieces; the second recipient is refused, DATA then fails too.
    CHECK(c.feed("250 2.0.0 Ok\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n").empty());
    CHECK(c.feed("550 5.1.1 <bob@example.org>: unknown\r\n554 5.5.1 Error: no valid recipients\r\n") == "RSET\r\n");
    CHECK(c.feed("250 2.0.0 Ok\r\n").empty());
    CHECK(c.state() == smtp_client_session::status::refused);
    CHECK(c.outcome().code == 550);
    CHECK(c.reusable());

    // A server that says 354 although a recipient was refused: the connection must go.
    transaction t2 = sample_transaction("y\r\n");
    c.start(t2);
    c.feed("250 2.0.0 Ok\r\n250 2.1.0 Ok\r\n450 4.2.0 later\r\n250 2.1.5 Ok\r\n");
    CHECK(c.feed("354 go\r\n").empty());
    CHECK(c.state() == smtp_client_session::status::refused);
    CHECK(c.outcome().code == 450);
    CHECK_FALSE(c.reusable());
}

TEST_CASE("a refusal ends the transaction with RSET and keeps the connection") {
    smtp_client_session c("filter.example");
    transaction t = sample_transaction("x\r\n");
    CHECK(c.start(t).empty());
    CHECK(c.feed("220 hop ESMTP\r\n") == "EHLO filter.example\r\n");
    CHECK(c.feed("250-hop\r\n250 HELP\r\n") == "MAIL FROM:<>\r\n");  // no PIPELINING, SIZE, 8BITMIME, DSN, XFORWARD
    CHECK(c.feed("250 2.1.0 Ok\r\n") == "RCPT TO:<alice@example.org>\r\n");
    CHECK(c.feed("451 4.3.0 try later\r\n") == "RSET\r\n");
    CHECK(c.feed("250 2.0.0 Ok\r\n").empty());
    CHECK(c.state() == smtp_client_session::status::refused);
    CHECK(c.outcome().code == 451);
    CHECK(c.outcome().temporary());
    CHECK(c.reusable());
    CHECK(c.start(t) == "MAIL FROM:<>\r\n");
}

TEST_CASE("a broken next hop is reported, never hangs") {
    smtp_client_session c("f");
    transaction t = sample_transaction("x\r\n");
    c.start(t);
    c.feed("554 5.3.2 not accepting\r\n");
    CHECK(c.state() == smtp_client_session::status::broken);
    CHECK(c.outcome().code == 554);

    smtp_client_session d("f");
    d.start(t);
    d.feed("220 ok\r\n");
    d.feed("garbage\r\n");
    CHECK(d.state() == smtp_client_session::status::broken);
    CHECK(d.outcome().temporary());
    CHECK_FALSE(d.reusable());
}

TEST_CASE("a UTF-8 envelope: SMTPUTF8 when offered, a clean refusal when not (issue 13 item 4)") {
    transaction t;
    t.mail_from = "";
    t.mail_params = "SMTPUTF8";
    t.recipients = {{"j\xc3\xb6rg@example.org", ""}};
    t.message = "Subject: x\r\n\r\nbody\r\n";
    CHECK_FALSE(envelope_is_ascii(t));
    {
        smtp_client_session c("f");
        c.start(t);
        c.feed("220 hop ESMTP\r\n");
        CHECK(c.feed("250-hop\r\n250 SMTPUTF8\r\n") == "MAIL FROM:<> SMTPUTF8\r\n");
        CHECK(c.feed("250 2.1.0 Ok\r\n") == "RCPT TO:<j\xc3\xb6rg@example.org>\r\n");  // byte for byte
    }
    {
        smtp_client_session c("f");
        c.start(t);
        c.feed("220 hop ESMTP\r\n");
        CHECK(c.feed("250-hop\r\n250 PIPELINING\r\n").empty());  // no MAIL: nothing is sent
        CHECK(c.state() == smtp_client_session::status::refused);
        CHECK(c.outcome().code == 550);
        CHECK(c.outcome().text.find("SMTPUTF8 is required") != std::string::npos);
        CHECK(c.reusable());
        // An ASCII envelope with the parameter is downgraded as Postfix does: sent without it.
        transaction ascii = t;
        ascii.recipients = {{"joerg@example.org", ""}};
        CHECK(envelope_is_ascii(ascii));
        CHECK(c.start(ascii).find("MAIL FROM:<>\r\nRCPT TO:<joerg@example.org>\r\n") == 0);
    }
}
