// deliver_exactly_once against a real next hop on a loopback socket (a scripted SMTP server in
// a thread) and an in-memory ledger: what reaches the next hop's "queue" and what is recorded,
// for each way a hand-over can end.
#include <doctest/doctest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "ndrguard/smtp/exactly_once.hpp"

using namespace ndrguard::smtp;

namespace {

// One SMTP session on 127.0.0.1 (an ephemeral port): 220, EHLO, MAIL, RCPT (or `rcpt_reply`),
// DATA, the content, then at the final dot either "250 ... queued as QID1" or silence
// (`answer_dot` false). A message counts as queued once its final dot arrived.
class scripted_next_hop {
public:
    explicit scripted_next_hop(std::string rcpt_reply = "250 2.1.5 Ok", bool answer_dot = true)
        : rcpt_reply_(std::move(rcpt_reply)), answer_dot_(answer_dot) {
        listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        REQUIRE(::listen(listener_, 1) == 0);
        socklen_t len = sizeof a;
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
        thread_ = std::thread([this] { serve(); });
    }
    ~scripted_next_hop() {
        wait();
        ::close(listener_);
    }
    std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
    // Until the session ended (the client closed or quit).
    void wait() {
        if (thread_.joinable()) thread_.join();
    }
    bool queued() const { return queued_; }
    bool content_arrived() const { return content_arrived_; }

private:
    void serve() {
        const int c = ::accept(listener_, nullptr, nullptr);
        if (c < 0) return;
        auto say = [&](const std::string& line) { (void)::send(c, (line + "\r\n").data(), line.size() + 2, MSG_NOSIGNAL); };
        say("220 hop.test ESMTP");
        std::string in;
        bool in_data = false;
        char buf[4096];
        while (true) {
            const ssize_t n = ::read(c, buf, sizeof buf);
            if (n <= 0) break;  // the client closed: what it sent is all there is
            in.append(buf, static_cast<std::size_t>(n));
            while (true) {
                if (in_data) {
                    const auto end = in.find("\r\n.\r\n");
                    if (end == std::string::npos) {
                        content_arrived_ = in.find("Subject: exactly once") != std::string::npos;
                        break;
                    }
                    content_arrived_ = true;
                    queued_ = true;
                    in.erase(0, end + 5);
                    in_data = false;
                    if (answer_dot_) say("250 2.0.0 Ok: queued as QID1");
                    continue;
                }
                const auto eol = in.find("\r\n");
                if (eol == std::string::npos) break;
                const std::string cmd = in.substr(0, eol);
                in.erase(0, eol + 2);
                if (cmd.rfind("EHLO", 0) == 0) say("250-hop.test\r\n250 8BITMIME");
                else if (cmd.rfind("MAIL", 0) == 0) say("250 2.1.0 Ok");
                else if (cmd.rfind("RCPT", 0) == 0) say(rcpt_reply_);
                else if (cmd == "DATA") { say("354 End data with <CR><LF>.<CR><LF>"); in_data = true; }
                else if (cmd == "RSET") say("250 2.0.0 Ok");
                else if (cmd == "QUIT") { say("221 2.0.0 Bye"); ::close(c); return; }
                else say("502 5.5.2 Error: command not recognized");
            }
        }
        ::close(c);
    }

    std::string rcpt_reply_;
    bool answer_dot_;
    int listener_ = -1;
    std::uint16_t port_ = 0;
    std::thread thread_;
    std::atomic<bool> queued_{false}, content_arrived_{false};
};

// The ledger in memory: what the routine recorded, in order.
struct memory_ledger final : handover_ledger {
    bool take_over = false;      // sending_starts() finds the claim taken over
    bool fail_at_dot = false;    // sending_starts() throws
    std::vector<std::string> calls;
    bool sending_starts() override {
        calls.push_back("sending_starts");
        if (fail_at_dot) throw std::runtime_error("database gone");
        return !take_over;
    }
    void finish(bool delivered, const std::string& reply) override {
        calls.push_back(std::string(delivered ? "finish delivered: " : "finish failed: ") + reply);
    }
};

transaction message_for(const std::string& mailbox) {
    transaction t;
    t.esmtp = true;
    t.mail_from = "postmaster@example.org";
    t.recipients.push_back({mailbox, {}});
    t.message = "From: postmaster@example.org\r\nSubject: exactly once\r\n\r\nbody\r\n";
    return t;
}

handover_options options_for(const std::string& next_hop) { return {next_hop, "ndrguard.test", 1}; }

}  // namespace

TEST_CASE("delivered: 250 after the dot, recorded as sending then delivered, with the queue id") {
    scripted_next_hop hop;
    memory_ledger ledger;
    const handover_outcome h = deliver_exactly_once(message_for("alice@example.org"), options_for(hop.address()), ledger);
    hop.wait();
    CHECK(h.what == handover_outcome::kind::delivered);
    CHECK(h.reply.code == 250);
    CHECK(h.queue_id == "QID1");
    CHECK(h.accepted);
    CHECK(hop.queued());
    CHECK(ledger.calls == std::vector<std::string>{"sending_starts", "finish delivered: 250 2.0.0 Ok: queued as QID1"});
}

TEST_CASE("refused before the dot: the next hop's 550 at RCPT, nothing sent, recorded as failed") {
    scripted_next_hop hop("550 5.1.1 <nobody@example.org>: Recipient address rejected");
    memory_ledger ledger;
    const handover_outcome h = deliver_exactly_once(message_for("nobody@example.org"), options_for(hop.address()), ledger);
    hop.wait();
    CHECK(h.what == handover_outcome::kind::refused);
    CHECK(h.reply.code == 550);
    CHECK_FALSE(h.accepted);
    CHECK_FALSE(hop.content_arrived());
    CHECK_FALSE(hop.queued());
    CHECK(ledger.calls ==
          std::vector<std::string>{"finish failed: 550 5.1.1 <nobody@example.org>: Recipient address rejected"});
}

TEST_CASE("taken over at the dot: the content went, the dot did not; nothing queued, nothing recorded") {
    scripted_next_hop hop;
    memory_ledger ledger;
    ledger.take_over = true;
    const handover_outcome h = deliver_exactly_once(message_for("alice@example.org"), options_for(hop.address()), ledger);
    hop.wait();
    CHECK(h.what == handover_outcome::kind::taken_over);
    CHECK(hop.content_arrived());
    CHECK_FALSE(hop.queued());
    CHECK(ledger.calls == std::vector<std::string>{"sending_starts"});
}

TEST_CASE("no answer after the dot: uncertain (it may be queued), left on record as sending") {
    scripted_next_hop hop("250 2.1.5 Ok", /*answer_dot=*/false);
    memory_ledger ledger;
    const handover_outcome h = deliver_exactly_once(message_for("alice@example.org"), options_for(hop.address()), ledger);
    hop.wait();
    CHECK(h.what == handover_outcome::kind::uncertain);
    CHECK(h.reply.code == 0);
    CHECK(h.reply.text == "no reply within 1 s (reinject_timeout_seconds)");
    CHECK(hop.queued());
    CHECK(ledger.calls == std::vector<std::string>{"sending_starts"});
}

TEST_CASE("the ledger failing at the dot: nothing queued, recorded as failed with the ledger's error") {
    scripted_next_hop hop;
    memory_ledger ledger;
    ledger.fail_at_dot = true;
    const handover_outcome h = deliver_exactly_once(message_for("alice@example.org"), options_for(hop.address()), ledger);
    hop.wait();
    CHECK(h.what == handover_outcome::kind::ledger_failure);
    CHECK(h.ledger_error == "database gone");
    CHECK(h.recorded);
    CHECK_FALSE(hop.queued());
    CHECK(ledger.calls == std::vector<std::string>{"sending_starts", "finish failed: database gone"});
}

TEST_CASE("unreachable: nothing listens on the port, recorded as failed with the reason") {
    // A port bound but never listened on: connections to it are refused.
    const int s = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
    const std::string address = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
    memory_ledger ledger;
    const handover_outcome h = deliver_exactly_once(message_for("alice@example.org"), options_for(address), ledger);
    CHECK(h.what == handover_outcome::kind::unreachable);
    CHECK(h.reply.code == 0);
    CHECK(h.reply.text == "connection: Connection refused");
    CHECK(ledger.calls == std::vector<std::string>{"finish failed: connection: Connection refused"});
    ::close(s);
}
