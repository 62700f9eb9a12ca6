#include "ndrguard/smtp/handover.hpp"

#include <boost/asio.hpp>
#include <chrono>

#include "ndrguard/smtp/address.hpp"
#include "ndrguard/smtp/next_hop_connection.hpp"

namespace ndrguard::smtp {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

namespace {

// The next hop's addresses: a numeric one at once (the usual 127.0.0.1:10026: no resolver
// thread), a name through the resolver within the step timeout. Empty with `why` set on failure.
std::vector<tcp::endpoint> endpoints_of(asio::io_context& io, const std::string& host, std::uint16_t port,
                                        std::chrono::seconds timeout, std::string& why) {
    error_code not_numeric;
    const auto address = asio::ip::make_address(host, not_numeric);
    if (!not_numeric) return {tcp::endpoint(address, port)};
    tcp::resolver resolver(io);
    asio::steady_timer timer(io, timeout);
    bool expired = false;
    error_code result;
    std::vector<tcp::endpoint> found;
    timer.async_wait([&](error_code ec) {
        if (ec) return;  // resolved first
        expired = true;
        resolver.cancel();
    });
    resolver.async_resolve(host, std::to_string(port), [&](error_code ec, tcp::resolver::results_type r) {
        result = ec;
        for (const auto& e : r) found.push_back(e.endpoint());
        timer.cancel();
    });
    io.run();
    io.restart();
    if (expired) why = "no connection within " + std::to_string(timeout.count()) + " s (reinject_timeout_seconds)";
    else if (result) why = "connection: " + result.message();
    if (!why.empty()) found.clear();
    return found;
}

}  // namespace

// A private io_context running one next_hop_connection to its end: every step is bounded by
// the connection's timers, so this returns within a few timeouts at most.
handover send_once(const transaction& t, const handover_options& o, const std::function<bool()>& at_the_dot) {
    handover h;
    auto hp = split_host_port(o.next_hop);
    if (!hp) {
        h.reply = {0, "bad next_hop " + o.next_hop};
        return h;
    }
    const std::chrono::seconds timeout(o.timeout_seconds);
    asio::io_context io;
    std::string why;
    const std::vector<tcp::endpoint> to = endpoints_of(io, hp->first, hp->second, timeout, why);
    if (to.empty()) {
        h.reply = {0, why.empty() ? "connection: no address for " + hp->first : why};
        return h;
    }
    auto connection = std::make_shared<next_hop_connection>(io, o.hostname, timeout);
    connection->send(to, t, [&](smtp_reply r) { h.reply = std::move(r); }, at_the_dot);
    io.run();
    if (connection->dot_sent()) h.reached = handover::stage::after_dot;
    if (h.reply.code == 250) {  // an orderly end: the next hop's smtpd process is free at once
        connection->quit();
    } else {
        connection->close();
    }
    return h;
}

}  // namespace ndrguard::smtp
