#include "ndrguard/filter/handover.hpp"

#include <sys/socket.h>

#include <boost/asio.hpp>

#include "ndrguard/filter/config.hpp"

namespace ndrguard::filter {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

handover send_once(const transaction& t, const handover_options& o, const std::function<bool()>& at_the_dot) {
    handover h;
    asio::io_context io;
    tcp::socket socket(io);
    try {
        auto hp = split_host_port(o.next_hop);
        if (!hp) throw std::runtime_error("bad next_hop " + o.next_hop);
        tcp::resolver resolver(io);
        asio::connect(socket, resolver.resolve(hp->first, std::to_string(hp->second)));
        timeval tv{};
        tv.tv_sec = o.timeout_seconds;
        ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        smtp_client_session client(o.hostname);
        client.hold_final_dot(true);
        std::string out = client.start(t);
        char buf[4096];
        while (true) {
            if (!out.empty()) asio::write(socket, asio::buffer(out));
            out.clear();
            auto st = client.state();
            if (st == smtp_client_session::status::before_final_dot) {
                if (!at_the_dot()) return h;  // closing now leaves nothing queued
                h.reached = handover::stage::after_dot;
                out = client.final_dot();
                continue;
            }
            if (st == smtp_client_session::status::delivered || st == smtp_client_session::status::refused ||
                st == smtp_client_session::status::broken) {
                h.reply = client.outcome();
                if (st == smtp_client_session::status::delivered) {
                    boost::system::error_code ignore;
                    asio::write(socket, asio::buffer(smtp_client_session::quit()), ignore);
                }
                return h;
            }
            std::size_t n = socket.read_some(asio::buffer(buf));
            out = client.feed(std::string_view(buf, n));
        }
    } catch (const std::exception& e) {
        h.reply = {0, e.what()};
        return h;
    }
}


}  // namespace ndrguard::filter
