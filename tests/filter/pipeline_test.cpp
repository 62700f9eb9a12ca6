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
    evidence_gatherer evidence{cfg};
    std::vector<std::string> log;
    pipeline_context ctx{cfg, metrics, io, storms_mu, storms, sent_log, sent_log, quarantine, next_hop, evidence,
                         [](std::chrono::system_clock::time_point) { return false; },
                         [this](std::string line) { log.push_back(std::move(line)); },
                         [](std::function<void()> job) { job(); }};

    static serve_config base_config() {
        serve_config c;
        c.hostname = "mx.example.org";
        return c;
    }
    // The evidence keys (our_relays, batv_keys, ...) are read when the gatherer is made: set them
    // in the configuration given here.
    explicit harness(serve_config c = base_config()) : cfg(std::move(c)) {}

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
    CHECK(h.log[0].find(" verification=forged evidence=sent_log.missing policy=reject ") != std::string::npos);
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
    CHECK(out.message.starts_with("X-NDRGuard: verified msgid=<" + original_id + "> evidence=sent_log.found reasons="));
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

TEST_CASE("a genuine bounce missing from the sent log, our relay in its trace: suspect, held, never refused") {
    // The sample's returned original left through mail.example.org (its Received line's "by").
    serve_config c = harness::base_config();
    REQUIRE(c.set("our_relays", "mail.example.org").empty());
    harness h(c);
    CHECK(h.run("", {"alice@example.org"}, sample_dsn()) == "250 2.0.0 Ok: held in quarantine as 1");
    REQUIRE(h.quarantine.held.size() == 1);
    const auto& held = h.quarantine.held[0];
    CHECK(held.verification == "suspect");
    CHECK_FALSE(held.forged);  // never dropped over the caps
    CHECK(held.evidence == std::vector<std::string>{"sent_log.missing", "trace.our_relay"});
    REQUIRE(h.log.size() == 1);
    CHECK(h.log[0].find(" verification=suspect evidence=sent_log.missing,trace.our_relay policy=quarantine ") != std::string::npos);
    CHECK(h.metrics.messages[0][1][std::size_t(verification::suspect)][2].load() == 1);  // inbound dsn suspect quarantine
    CHECK(h.metrics.evidence[evidence_tag_index("trace.our_relay")].load() == 1);
    CHECK(h.metrics.evidence[evidence_tag_index("sent_log.missing")].load() == 1);
    CHECK(h.metrics.evidence[evidence_tag_index("sent_log.found")].load() == 0);

    // Without our_relays, the same bounce is forged and refused (the hostname is not its relay).
    harness plain;
    CHECK(plain.run("", {"alice@example.org"}, sample_dsn()).starts_with("550 "));

    // Shown as the receiving MTA's own SPF fail for our domain: forged after all.
    std::string dsn = sample_dsn();
    const std::string inner_from = "From: Alice Example <alice@example.org>\r\n";
    REQUIRE(dsn.find(inner_from) != std::string::npos);
    dsn.insert(dsn.find(inner_from), "Authentication-Results: mx.example.net; spf=fail smtp.mailfrom=alice@example.org\r\n");
    serve_config d = c;
    REQUIRE(d.set("our_domains", "example.org").empty());
    harness spf(d);
    CHECK(spf.run("", {"alice@example.org"}, dsn).starts_with("550 "));
    REQUIRE(spf.log.size() == 1);
    CHECK(spf.log[0].find(" verification=forged evidence=sent_log.missing,trace.our_relay,trace.spf_fail ") != std::string::npos);
}

TEST_CASE("BATV: a valid tag of our key verifies with the sent log empty; a bad one is forged") {
    const std::string secret_file = std::string(NDRGUARD_BINARY_DIR) + "/batv-pipeline.secret";
    {
        std::ofstream out(secret_file);
        out << "s3cret-of-the-relay\n";
    }
    serve_config c = harness::base_config();
    REQUIRE(c.set("batv_keys", "0:" + secret_file).empty());
    const auto now = std::chrono::system_clock::now();
    const auto today = ndrguard::evidence::day_number(std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count());
    const unsigned ddd = unsigned((today + 7) % 1000);
    char day[4];
    std::snprintf(day, sizeof day, "%03u", ddd);
    const std::string hash = ndrguard::evidence::prvs_hash("s3cret-of-the-relay", 0, ddd, "alice@example.org");
    const std::string tagged = "prvs=0" + std::string(day) + hash + "=alice@example.org";

    harness h(c);
    CHECK(h.run("", {tagged}, sample_dsn()) == "250 2.0.0 Ok: queued as MEM1");
    for (const auto& l : h.log) MESSAGE(l);
    REQUIRE(h.next_hop.received.size() == 1);
    CHECK(h.next_hop.received[0].recipients[0].address == tagged);  // never rewritten
    CHECK(h.next_hop.received[0].message.starts_with("X-NDRGuard: verified msgid=<" + original_id +
                                                      "> evidence=sent_log.missing,batv.valid reasons="));

    // The same tag with one hex digit changed: forged, refused (a null sender, after queue).
    std::string bad = tagged;
    bad[10] = bad[10] == '0' ? '1' : '0';
    harness f(c);
    CHECK(f.run("", {bad}, sample_dsn()).starts_with("550 "));
    REQUIRE(f.log.size() == 1);
    CHECK(f.log[0].find(" verification=forged evidence=sent_log.missing,batv.bad_hash ") != std::string::npos);

    // Held ones are held for the user's mailbox, not the day's tagged address.
    harness held(c);
    CHECK(held.run("someone@example.net", {bad}, sample_dsn()) == "250 2.0.0 Ok: held in quarantine as 1");
    REQUIRE(held.quarantine.held.size() == 1);
    CHECK(held.quarantine.held[0].mailbox == "alice@example.org");

    // No batv_keys: a tag says nothing (it is not read as "not ours").
    harness none;
    none.sent_log.sent.push_back({"<" + original_id + ">", "alice@example.org", {"bob@example.net"}, now});
    CHECK(none.run("", {bad}, sample_dsn()) == "250 2.0.0 Ok: queued as MEM1");
}

TEST_CASE("a heuristic NDR (weak) that is forged is held, never refused") {
    const std::string ndr =
        "From: MAILER-DAEMON@mx.example.net\r\nTo: alice@example.org\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <ndr1@mx.example.net>\r\n\r\nThis is the mail system at host mx.example.net.\r\n\r\n"
        "I'm sorry to have to inform you that your message could not\r\nbe delivered to one or more recipients.\r\n\r\n"
        "<bob@example.net>: host mx.example.net said: 550 5.1.1 User unknown\r\n\r\n"
        "------ This is a copy of the message, including all the headers. ------\r\n\r\n"
        "From: alice@example.org\r\nTo: bob@example.net\r\nMessage-ID: <never-sent-1@example.org>\r\nSubject: hi\r\n\r\nhello\r\n";
    harness h;
    CHECK(h.run("", {"alice@example.org"}, ndr) == "250 2.0.0 Ok: held in quarantine as 1");
    REQUIRE(h.log.size() == 1);
    CHECK(h.log[0].find(" class=ndr ") != std::string::npos);
    CHECK(h.log[0].find(" verification=forged evidence=sent_log.missing,detector.weak policy=reject note=weak_detection ") !=
          std::string::npos);
    REQUIRE(h.quarantine.held.size() == 1);
    CHECK(h.quarantine.held[0].forged);
}
