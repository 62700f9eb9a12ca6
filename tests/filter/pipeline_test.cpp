// The message pipeline driven in-process: a bounce goes through classification, the sent-log
// lookup, the decision core, the quarantine and the next hop, all in-memory (no sockets, no
// PostgreSQL), on an io_context of the test's own.
#include <doctest/doctest.h>

#include <boost/asio/io_context.hpp>
#include <fstream>
#include <sstream>

#include "ndrguard/filter/pipeline.hpp"

using namespace ndrguard::filter;
namespace q = ndrguard::quarantine;
namespace smtp = ndrguard::smtp;

namespace {

// A DSN for bob@example.net returning 20260302091500.4F2A81C0031@mail.example.org's headers.
std::string sample_dsn() {
    std::ifstream in(NDRGUARD_SOURCE_DIR "/tests/samples/dsn-rfc822-headers.eml", std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string crlf;
    for (char c : ss.str()) {
        if (c == '\n') crlf += '\r';
        crlf += c;
    }
    return crlf;
}

q::storm_settings two_bounces_make_a_storm() {
    q::storm_settings s;
    s.threshold = 2;
    s.exit_threshold = 1;
    return s;
}

struct harness {
    serve_config cfg;
    filter_metrics metrics;
    boost::asio::io_context io;
    std::mutex storms_mu;
    q::storm_tracker storms{two_bounces_make_a_storm()};
    memory_sent_log sent_log;
    memory_quarantine quarantine;
    memory_next_hop next_hop;
    std::vector<std::string> log;
    pipeline_context ctx{cfg, metrics, io, storms_mu, storms, sent_log, sent_log, quarantine, next_hop,
                         [](std::chrono::system_clock::time_point) { return false; },
                         [this](std::string line) { log.push_back(std::move(line)); },
                         [](std::function<void()> job) { job(); }};

    harness() { cfg.hostname = "mx.example.org"; }

    // One transaction through the pipeline; the reply Postfix would get.
    std::string run(std::string from, std::vector<std::string> rcpts, std::string content, std::string client = "198.51.100.7") {
        smtp::transaction t;
        t.mail_from = std::move(from);
        for (auto& r : rcpts) t.recipients.push_back({std::move(r), ""});
        t.xforward = {{"ADDR", client}, {"IDENT", "4F2A8"}};
        std::string answer;
        run_message(ctx, t, std::move(content), "127.0.0.1", false, [&](std::string a) { answer = std::move(a); });
        io.run();
        io.restart();
        return answer;
    }
};

const std::string original_id = "20260302091500.4F2A81C0031@mail.example.org";

}  // namespace

TEST_CASE("a forged bounce to a null sender after queue: 550, nothing held or delivered, counted") {
    harness h;
    CHECK(h.run("", {"alice@example.org"}, sample_dsn()) == "550 5.7.1 Error: bounce of a message not sent from here (backscatter)");
    CHECK(h.quarantine.held.empty());
    CHECK(h.next_hop.received.empty());
    REQUIRE(h.log.size() == 1);
    CHECK(h.log[0].find(" class=dsn ") != std::string::npos);
    CHECK(h.log[0].find(" verification=forged policy=reject ") != std::string::npos);
    CHECK(h.log[0].find(" action=reject") != std::string::npos);
    CHECK(h.metrics.lookups_not_found.load() == 1);
}

TEST_CASE("a verified bounce is delivered with the verdict header on top") {
    harness h;
    h.sent_log.sent.push_back({"<" + original_id + ">", "alice@example.org", {"bob@example.net"}, std::chrono::system_clock::now()});
    CHECK(h.run("", {"alice@example.org"}, sample_dsn()) == "250 2.0.0 Ok: queued as MEM1");
    REQUIRE(h.next_hop.received.size() == 1);
    const auto& out = h.next_hop.received[0];
    CHECK(out.recipients.size() == 1);
    CHECK(out.message.starts_with("X-NDRGuard: verified msgid=<" + original_id + "> reasons="));
    CHECK(h.quarantine.held.empty());
    CHECK(h.metrics.lookups_found.load() == 1);
}

TEST_CASE("a forged bounce to a non-null sender after queue is held, never refused") {
    harness h;
    CHECK(h.run("postmaster@mx.example.net", {"alice@example.org"}, sample_dsn()) == "250 2.0.0 Ok: held in quarantine as 1");
    REQUIRE(h.quarantine.held.size() == 1);
    const auto& held = h.quarantine.held[0];
    CHECK(held.mailbox == "alice@example.org");
    CHECK(held.queue_id == "4F2A8");
    CHECK(held.forged);
    CHECK(held.notes == std::vector<std::string>{"non_null_sender_after_queue"});
    CHECK(held.message_ids == std::vector<std::string>{original_id});
    CHECK(h.next_hop.received.empty());
}

TEST_CASE("outbound mail is recorded in the sent log, then delivered") {
    harness h;
    h.cfg.our_networks.push_back(*network::parse("192.0.2.0/24"));
    const std::string mail = "From: alice@example.org\r\nTo: bob@example.net\r\nMessage-ID: <x1@example.org>\r\n\r\nhi\r\n";
    CHECK(h.run("alice@example.org", {"bob@example.net"}, mail, "192.0.2.10") == "250 2.0.0 Ok: queued as MEM1");
    REQUIRE(h.sent_log.sent.size() == 1);
    CHECK(h.sent_log.sent[0].message_id == "<x1@example.org>");
    CHECK(h.next_hop.received.size() == 1);
}

TEST_CASE("the sent log away: 451, and the next hop's refusal after queue stays queued") {
    harness h;
    h.sent_log.failing = true;
    CHECK(h.run("", {"alice@example.org"}, sample_dsn()) == "451 4.3.0 Error: sent log unavailable, try again later");
    CHECK(h.metrics.lookups_failed.load() == 1);

    harness refused;
    refused.sent_log.sent.push_back({"<" + original_id + ">", "alice@example.org", {"bob@example.net"}, std::chrono::system_clock::now()});
    refused.next_hop.answer = {550, "5.1.1 <alice@example.org>: Recipient address rejected"};
    CHECK(refused.run("someone@example.net", {"alice@example.org"}, sample_dsn()) ==
          "451 4.1.1 Error: next hop answered 550 5.1.1 <alice@example.org>: Recipient address rejected "
          "(not bounced after queue: the message stays queued)");
}

TEST_CASE("a bounce to two mailboxes, one in a storm: held for that one, delivered to the other") {
    harness h;
    // Unverifiable: the returned headers name no Message-ID.
    std::string dsn = sample_dsn();
    const std::string inner = "Message-ID: <" + original_id + ">\r\n";
    REQUIRE(dsn.find(inner) != std::string::npos);
    dsn.erase(dsn.find(inner), inner.size());
    h.storms.observe("victim@example.org", q::ndr_tally{0, 0, 1}, "", "", std::chrono::system_clock::now());
    CHECK(h.run("", {"victim@example.org", "carol@example.org"}, dsn) == "250 2.0.0 Ok: queued as MEM1");
    REQUIRE(h.quarantine.held.size() == 1);
    CHECK(h.quarantine.held[0].mailbox == "victim@example.org");
    CHECK(h.quarantine.held[0].notes == std::vector<std::string>{"storm"});
    REQUIRE(h.next_hop.received.size() == 1);
    REQUIRE(h.next_hop.received[0].recipients.size() == 1);
    CHECK(h.next_hop.received[0].recipients[0].address == "carol@example.org");
    CHECK(h.next_hop.received[0].message.starts_with("X-NDRGuard: unverifiable"));
    REQUIRE(h.log.size() == 1);
    CHECK(h.log[0].find(" action=mixed ") != std::string::npos);
    CHECK(h.log[0].find(" storm_mailboxes=1") != std::string::npos);
}
