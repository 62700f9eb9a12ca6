// DKIM evidence against real signatures: sign_fixtures.py (Debian's python3-dkim, a key pair made
// by openssl in the test) signs the messages; here they are returned the ways bounces return
// them, altered the ways relays and forgers alter them, and verified by the evidence library.
#include "ndrguard/detector/detector.hpp"
#include "ndrguard/evidence/dkim.hpp"

#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace dkim = ndrguard::evidence::dkim;
namespace detector = ndrguard::detector;

namespace {

std::string fixtures;  // the folder sign_fixtures.py wrote

std::string read(const std::string& name) {
    std::ifstream in(fixtures + "/" + name, std::ios::binary);
    if (!in) throw std::runtime_error("missing fixture " + name + " (run sign_fixtures.py)");
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

struct message {
    std::string headers, body;
};

message split(const std::string& m) {
    const std::size_t blank = m.find("\r\n\r\n");
    return {m.substr(0, blank + 2), m.substr(blank + 4)};
}

std::string replace(std::string s, std::string_view from, std::string_view to) {
    const std::size_t at = s.find(from);
    REQUIRE(at != std::string::npos);
    s.replace(at, from.size(), to);
    return s;
}

const std::vector<std::string> ours{"example.org"};

dkim::key_source keys() {
    return {dkim::load_key_entries("example.org:sel1:" + fixtures + "/ours.pub.pem"), {}};
}

dkim::signature_check only(const dkim::report& r) {
    REQUIRE(r.ours.size() == 1);
    CHECK(r.ours[0].domain == "example.org");
    CHECK(r.ours[0].selector == "sel1");
    return r.ours[0];
}

}  // namespace

TEST_CASE("header-only input verifies, relaxed and simple") {
    for (const char* name : {"relaxed.eml", "simple.eml", "length.eml", "missing.eml"}) {
        CAPTURE(name);
        const message m = split(read(name));
        const dkim::report r = dkim::check(m.headers, std::nullopt, ours, keys());
        const auto s = only(r);
        CHECK(s.result == dkim::outcome::verified);
        CHECK_FALSE(s.body_checked);
        CHECK(r.verified());
    }
}

TEST_CASE("OpenDKIM's own signer (rsa-sha1, relaxed/simple, Received signed)") {
    const message m = split(read("opendkim.eml"));
    auto s = only(dkim::check(m.headers, std::nullopt, ours, keys()));
    CHECK(s.result == dkim::outcome::verified);
    s = only(dkim::check(m.headers, m.body, ours, keys()));
    CHECK(s.result == dkim::outcome::verified);
    CHECK(s.body_checked);
    // A relay's Received on top is not in h= (the signed ones are taken bottom-up).
    CHECK(only(dkim::check("Received: from relay.remote.test by mx.remote.test\r\n" + m.headers, std::nullopt, ours,
                           keys()))
              .result == dkim::outcome::verified);
    CHECK(only(dkim::check(replace(m.headers, "Quarterly", "Annual"), std::nullopt, ours, keys())).reason ==
          "header_hash");
    // simple body canonicalisation: one changed space is a different body.
    CHECK(only(dkim::check(m.headers, replace(m.body, "Hello Bob", "Hello  Bob"), ours, keys())).reason ==
          "body_hash");
}

TEST_CASE("LF line endings (as the detector hands them over) verify too") {
    message m = split(read("relaxed.eml"));
    std::string lf;
    for (char c : m.headers)
        if (c != '\r') lf.push_back(c);
    CHECK(only(dkim::check(lf, std::nullopt, ours, keys())).result == dkim::outcome::verified);
}

TEST_CASE("refolded headers: relaxed still verifies, simple fails on the header hash") {
    const std::string_view subject = "Subject: Quarterly figures for review";
    const std::string_view refolded = "Subject:   Quarterly figures\r\n\t for   review";
    const message relaxed = split(read("relaxed.eml"));
    CHECK(only(dkim::check(replace(relaxed.headers, subject, refolded), std::nullopt, ours, keys())).result ==
          dkim::outcome::verified);
    const message simple = split(read("simple.eml"));
    const auto s = only(dkim::check(replace(simple.headers, subject, refolded), std::nullopt, ours, keys()));
    CHECK(s.result == dkim::outcome::failed);
    CHECK(s.reason == "header_hash");
}

TEST_CASE("altered From or Subject fails on the header hash") {
    for (const char* name : {"relaxed.eml", "simple.eml"}) {
        const message m = split(read(name));
        for (auto [from, to] : {std::pair<std::string_view, std::string_view>{"alice@example.org>", "mallory@example.org>"},
                                {"Quarterly figures", "Quarterly invoice"}}) {
            CAPTURE(name);
            CAPTURE(to);
            const auto s = only(dkim::check(replace(m.headers, from, to), std::nullopt, ours, keys()));
            CHECK(s.result == dkim::outcome::failed);
            CHECK(s.reason == "header_hash");
        }
    }
}

TEST_CASE("h= order of a repeated field, and a field listed in h= but missing") {
    // Two X-Topic fields signed bottom-up: swapped, the hash changes.
    const message m = split(read("relaxed.eml"));
    const std::string swapped =
        replace(m.headers, "X-Topic: figures\r\nX-Topic: quarterly", "X-Topic: quarterly\r\nX-Topic: figures");
    CHECK(only(dkim::check(swapped, std::nullopt, ours, keys())).reason == "header_hash");
    // Reply-To is in h= and was absent when signed: adding one is an alteration.
    const message missing = split(read("missing.eml"));
    CHECK(only(dkim::check(missing.headers, std::nullopt, ours, keys())).result == dkim::outcome::verified);
    const auto s = only(dkim::check(missing.headers + "Reply-To: mallory@evil.test\r\n", std::nullopt, ours, keys()));
    CHECK(s.result == dkim::outcome::failed);
    CHECK(s.reason == "header_hash");
    // A field not in h= may be added (as a relay adds Received).
    CHECK(only(dkim::check("Received: from relay.remote.test by mx.remote.test\r\n" + m.headers, std::nullopt, ours,
                           keys()))
              .result == dkim::outcome::verified);
}

TEST_CASE("the whole body returned: its hash is checked; l= covers only the signed length") {
    const message m = split(read("relaxed.eml"));
    auto s = only(dkim::check(m.headers, m.body, ours, keys()));
    CHECK(s.result == dkim::outcome::verified);
    CHECK(s.body_checked);
    s = only(dkim::check(m.headers, replace(m.body, "attached", "in the link below"), ours, keys()));
    CHECK(s.result == dkim::outcome::failed);
    CHECK(s.reason == "body_hash");
    s = only(dkim::check(m.headers, m.body + "-- appended by a list\r\n", ours, keys()));
    CHECK(s.reason == "body_hash");
    // With l=, text after the signed length does not count; within it, it does.
    const message l = split(read("length.eml"));
    s = only(dkim::check(l.headers, l.body + "-- appended by a list\r\n", ours, keys()));
    CHECK(s.result == dkim::outcome::verified);
    CHECK(s.body_checked);
    s = only(dkim::check(l.headers, replace(l.body, "Hello", "Hallo"), ours, keys()));
    CHECK(s.reason == "body_hash");
}

TEST_CASE("a signature by another domain is ignored; ours without a key is failed, not verified") {
    const message other = split(read("other.eml"));
    const dkim::report r = dkim::check(other.headers, std::nullopt, ours, keys());
    CHECK(r.ours.empty());
    CHECK(r.other_signatures == 1);
    CHECK_FALSE(r.verified());
    // The other domain's key is not even looked up: a DNS function that must not be called.
    dkim::key_source k = keys();
    k.dns_txt = [](const std::string& name) -> std::optional<std::string> {
        FAIL("DNS looked up for " << name);
        return std::nullopt;
    };
    CHECK(dkim::check(other.headers, std::nullopt, ours, k).ours.empty());
    // Our domain, no key anywhere.
    const message m = split(read("relaxed.eml"));
    const auto s = only(dkim::check(m.headers, std::nullopt, ours, dkim::key_source{}));
    CHECK(s.result == dkim::outcome::failed);
    CHECK(s.reason == "no_key");
    // A subdomain of ours is ours; a look-alike is not.
    CHECK(dkim::check(m.headers, std::nullopt, {"org"}, keys()).ours.size() == 1);
    CHECK(dkim::check(m.headers, std::nullopt, {"ample.org"}, keys()).ours.empty());
}

TEST_CASE("keys: a PEM file, the TXT record's text, and a DNS function give the same answer") {
    const message m = split(read("relaxed.eml"));
    const auto txt = dkim::load_key_entries(" example.org:SEL1:" + fixtures + "/ours.txt ");
    REQUIRE(txt.size() == 1);
    CHECK(txt[0].selector == "sel1");
    CHECK(only(dkim::check(m.headers, std::nullopt, ours, {txt, {}})).result == dkim::outcome::verified);
    dkim::key_source dns;
    std::string asked;
    dns.dns_txt = [&](const std::string& name) -> std::optional<std::string> {
        asked = name;
        return txt[0].record;
    };
    CHECK(only(dkim::check(m.headers, std::nullopt, ours, dns)).result == dkim::outcome::verified);
    CHECK(asked == "sel1._domainkey.example.org");
    // The wrong key: the header hash fails.
    const auto other = dkim::load_key_entries("example.org:sel1:" + fixtures + "/other.pub.pem");
    CHECK(only(dkim::check(m.headers, std::nullopt, ours, {other, {}})).reason == "header_hash");
    // Malformed settings and files say which.
    CHECK_THROWS_WITH_AS(dkim::load_key_entries("example.org:sel1"), doctest::Contains("DOMAIN:SELECTOR:FILE"),
                         std::runtime_error);
    CHECK_THROWS_WITH_AS(dkim::load_key_entries("example.org:sel1:" + fixtures + "/none"),
                         doctest::Contains("cannot read"), std::runtime_error);
    CHECK_THROWS_WITH_AS(dkim::load_key_entries("example.org:sel1:" + fixtures + "/ours.key.pem"),
                         doctest::Contains("PUBLIC KEY"), std::runtime_error);
    // A record longer than the bound is refused, and said to be a bad key, not a missing one.
    dkim::key_source big;
    big.dns_txt = [&](const std::string&) -> std::optional<std::string> {
        return txt[0].record + "; n=" + std::string(1100, 'x');
    };
    CHECK(only(dkim::check(m.headers, std::nullopt, ours, big)).reason == "bad_key");
    // A record that is not a key: that signature fails as bad_key, and does not stop the others.
    const message opendkim = split(read("opendkim.eml"));
    const std::string both = replace(opendkim.headers, "s=sel1;", "s=broken;") + m.headers;
    dkim::key_source broken{txt, {}};
    broken.keys.push_back({"example.org", "broken", "v=DKIM1; k=rsa; p=AAAA"});
    const dkim::report two = dkim::check(both, std::nullopt, ours, broken);
    REQUIRE(two.ours.size() == 2);
    CHECK(two.ours[0].selector == "broken");
    CHECK(two.ours[0].result == dkim::outcome::failed);
    CHECK(two.ours[0].reason == "bad_key");
    CHECK(two.ours[1].result == dkim::outcome::verified);
    CHECK(two.verified());
    std::string error;
    CHECK_FALSE(dkim::key_record_from_text("v=DKIM1; p=" + std::string(3000, 'A'), error));
    CHECK(error.find("longer") != std::string::npos);
}

TEST_CASE("bounds: signatures of ours past max_signatures are not checked") {
    const message m = split(read("relaxed.eml"));
    const std::size_t end = m.headers.find("\r\nReceived:");
    const std::string sig = m.headers.substr(0, end + 2);
    std::string many;
    for (int i = 0; i < 12; ++i) many += sig;
    const dkim::report r = dkim::check(many + m.headers.substr(end + 2), std::nullopt, ours, keys());
    CHECK(r.ours.size() == dkim::limits{}.max_signatures);
    CHECK(r.limit_hit);
    dkim::limits small;
    small.max_header_bytes = 200;  // the signature is cut off: nothing to verify, nothing crashes
    CHECK_FALSE(dkim::check(m.headers, std::nullopt, ours, keys(), small).verified());
}

namespace {

std::string dsn(const std::string& returned_type, const std::string& returned) {
    return "From: MAILER-DAEMON@mx.remote.test\r\nTo: alice@example.org\r\nSubject: Undelivered Mail Returned to Sender\r\n"
           "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\r\n\r\n"
           "--b1\r\nContent-Type: text/plain\r\n\r\nThis is the mail system at host mx.remote.test.\r\n"
           "I'm sorry to have to inform you that your message could not be delivered.\r\n\r\n"
           "--b1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.remote.test\r\n\r\n"
           "Final-Recipient: rfc822; bob@remote.test\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
           "--b1\r\nContent-Type: " + returned_type + "\r\n\r\n" + returned + "\r\n--b1--\r\n";
}

}  // namespace

TEST_CASE("through the detector: the returned original's headers, and its body when whole") {
    const std::string signed_message = read("relaxed.eml");
    const message m = split(signed_message);
    {
        const detector::result d = detector::classify(dsn("message/rfc822", signed_message), {{""}});
        REQUIRE(d.klass == detector::message_class::dsn);
        CHECK(d.returned_body_complete);
        CHECK(d.returned_headers.find("DKIM-Signature:") == 0);
        const auto s = only(dkim::check(d.returned_headers, d.returned_body, ours, keys()));
        CHECK(s.result == dkim::outcome::verified);
        CHECK(s.body_checked);
    }
    {
        const detector::result d = detector::classify(dsn("text/rfc822-headers", m.headers), {{""}});
        REQUIRE(d.klass == detector::message_class::dsn);
        CHECK_FALSE(d.returned_body_complete);
        CHECK(d.returned_body.empty());
        const auto s = only(dkim::check(d.returned_headers, std::nullopt, ours, keys()));
        CHECK(s.result == dkim::outcome::verified);
        CHECK_FALSE(s.body_checked);
    }
    {
        // A forged bounce quoting our signature over altered headers.
        const std::string forged = replace(signed_message, "Quarterly figures", "Your invoice");
        const detector::result d = detector::classify(dsn("message/rfc822", forged), {{""}});
        CHECK(only(dkim::check(d.returned_headers, d.returned_body, ours, keys())).reason == "header_hash");
    }
}

TEST_CASE("the detector keeps the body only when the whole original came back") {
    const std::string signed_message = read("relaxed.eml");
    const message m = split(signed_message);
    // The section runs from the first field to the last one's line ending, folds kept.
    const detector::result whole = detector::classify(dsn("message/rfc822", signed_message), {{""}});
    std::string lf_headers;
    for (char c : m.headers)
        if (c != '\r') lf_headers.push_back(c);
    CHECK(whole.returned_headers == lf_headers);
    CHECK(whole.returned_body.find("the figures are attached.") != std::string::npos);
    // A fragment (message/partial) is not the whole body.
    const detector::result partial = detector::classify(dsn("message/partial; id=x; number=1", signed_message), {{""}});
    CHECK_FALSE(partial.returned_body_complete);
    // Cut by max_message_bytes: not whole either, though the headers are there.
    const std::string big = dsn("message/rfc822", signed_message + std::string(4000, 'x'));
    detector::limits lim;
    lim.max_message_bytes = big.size() - 100;
    const detector::result cut = detector::classify(big, {{""}}, lim);
    CHECK_FALSE(cut.returned_body_complete);
    CHECK(cut.returned_headers == lf_headers);
    // Over max_returned_body_bytes: headers only.
    lim = {};
    lim.max_returned_body_bytes = 10;
    const detector::result over = detector::classify(dsn("message/rfc822", signed_message), {{""}}, lim);
    CHECK_FALSE(over.returned_body_complete);
    CHECK(over.returned_body.empty());
    // Not a bounce: nothing is copied.
    CHECK(detector::classify(signed_message).returned_headers.empty());
}

namespace {

// A DNS server on 127.0.0.1 for one query: answers TXT with `strings` (one character-string
// each), or stays silent when `answer` is false. Just enough of RFC 1035 for res_nquery.
class one_query_dns {
public:
    one_query_dns(std::vector<std::string> strings, bool answer) {
        fd_ = socket(AF_INET, SOCK_DGRAM, 0);
        REQUIRE(fd_ >= 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        socklen_t len = sizeof a;
        getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
        thread_ = std::thread([this, strings = std::move(strings), answer] {
            unsigned char q[512];
            sockaddr_in from{};
            socklen_t flen = sizeof from;
            const ssize_t n = recvfrom(fd_, q, sizeof q, 0, reinterpret_cast<sockaddr*>(&from), &flen);
            if (n < 12 || !answer) return;
            std::size_t end = 12;  // the question: a name of labels, then type and class
            while (end < std::size_t(n) && q[end] != 0) end += q[end] + 1u;
            end += 5;
            if (end > std::size_t(n)) return;
            std::string r(reinterpret_cast<const char*>(q), end);
            r[2] = char(0x81);  // a response, recursion desired and available, no error
            r[3] = char(0x80);
            r[6] = 0, r[7] = 1;  // one answer
            r[8] = r[9] = r[10] = r[11] = 0;
            std::string rdata;
            for (const std::string& s : strings) {
                rdata.push_back(char(s.size()));
                rdata += s;
            }
            r += std::string("\xc0\x0c\x00\x10\x00\x01\x00\x00\x00\x3c", 10);
            r.push_back(char(rdata.size() >> 8));
            r.push_back(char(rdata.size() & 0xff));
            r += rdata;
            sendto(fd_, r.data(), r.size(), 0, reinterpret_cast<sockaddr*>(&from), flen);
        });
    }
    ~one_query_dns() {
        shutdown(fd_, SHUT_RDWR);
        close(fd_);  // ends a recvfrom still waiting
        thread_.join();
    }
    std::uint16_t port() const { return port_; }

private:
    int fd_ = -1;
    std::uint16_t port_ = 0;
    std::thread thread_;
};

}  // namespace

TEST_CASE("DNS: a TXT record of several strings is joined; a silent server times out in bound") {
    const std::string record = dkim::load_key_entries("example.org:sel1:" + fixtures + "/ours.pub.pem")[0].record;
    {
        // A 2048-bit key's record is longer than one character-string (255 bytes).
        std::vector<std::string> strings;
        for (std::size_t i = 0; i < record.size(); i += 200) strings.push_back(record.substr(i, 200));
        one_query_dns server(strings, true);
        dkim::dns_options o;
        o.server = "127.0.0.1";
        o.port = server.port();
        const auto txt = dkim::dns_txt_lookup("sel1._domainkey.example.org", o);
        REQUIRE(txt);
        CHECK(*txt == record);
        dkim::key_source k;
        k.dns_txt = [&](const std::string&) { return txt; };
        CHECK(only(dkim::check(split(read("relaxed.eml")).headers, std::nullopt, ours, k)).result ==
              dkim::outcome::verified);
    }
    {
        one_query_dns server({}, false);
        dkim::dns_options o;
        o.server = "127.0.0.1";
        o.port = server.port();
        o.timeout_seconds = 1;
        o.tries = 1;
        const auto start = std::chrono::steady_clock::now();
        CHECK_FALSE(dkim::dns_txt_lookup("sel1._domainkey.example.org", o));
        CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
    }
}

int main(int argc, char** argv) {
    doctest::Context context;
    context.applyCommandLine(argc, argv);
    if (argc < 2) {
        std::fprintf(stderr, "usage: dkim_test FIXTURE_DIR [doctest options]\n");
        return 2;
    }
    fixtures = argv[argc - 1];
    return context.run();
}
