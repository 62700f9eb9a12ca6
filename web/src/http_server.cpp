#include "ndrguard/web/http_server.hpp"

#include <sys/socket.h>
#include <sys/time.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

namespace ndrguard::web {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct http_server::impl {
    std::string listen;
    handler handle;
    std::size_t max_connections;
    asio::io_context io;
    std::unique_ptr<tcp::acceptor> acceptor;
    std::atomic<bool> stopping{false};
    std::mutex mu;
    std::condition_variable ended;
    std::set<int> open;  // connection descriptors, to end them on stop()
    std::size_t running = 0;  // under mu

    void serve(tcp::socket socket) {
        timeval tv{};
        tv.tv_sec = 30;
        ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        beast::flat_buffer buffer(16 * 1024);
        for (int requests = 0; requests < 100 && !stopping; ++requests) {
            http::request_parser<http::string_body> parser;
            parser.header_limit(8 * 1024);
            parser.body_limit(16 * 1024);
            beast::error_code ec;
            http::read(socket, buffer, parser, ec);
            if (ec) {
                if (ec == http::error::header_limit || ec == http::error::body_limit || ec == http::error::bad_target ||
                    ec == http::error::bad_method || ec == http::error::bad_version) {
                    http::response<http::string_body> bad{http::status::bad_request, 11};
                    bad.set(http::field::content_type, "text/plain; charset=utf-8");
                    bad.set(http::field::connection, "close");
                    bad.body() = "bad request\n";
                    bad.prepare_payload();
                    http::write(socket, bad, ec);
                }
                break;
            }
            const auto& req = parser.get();
            http_request r{std::string(req.method_string()), std::string(req.target()),
                           std::string(req[http::field::authorization])};
            http_response out;
            try {
                out = handle(r);
            } catch (const std::exception&) {
                out = {503, "text/plain; charset=utf-8", "try again later\n"};
            }
            http::response<http::string_body> res{static_cast<http::status>(out.status), req.version()};
            res.set(http::field::server, "ndrguard");
            res.set(http::field::content_type, out.content_type);
            res.set(http::field::cache_control, "no-store");
            res.set("X-Content-Type-Options", "nosniff");
            res.set("X-Frame-Options", "DENY");
            res.set("Referrer-Policy", "no-referrer");
            res.set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'");
            res.keep_alive(req.keep_alive());
            if (req.method() != http::verb::head) res.body() = std::move(out.body);
            res.prepare_payload();
            http::write(socket, res, ec);
            if (ec || !res.keep_alive()) break;
        }
        beast::error_code ignore;
        socket.shutdown(tcp::socket::shutdown_both, ignore);
    }
};

http_server::http_server(std::string listen, handler h, std::size_t max_connections)
    : impl_(std::make_unique<impl>()) {
    impl_->listen = std::move(listen);
    impl_->handle = std::move(h);
    impl_->max_connections = max_connections;
}

http_server::~http_server() = default;

void http_server::bind() {
    const std::string& where = impl_->listen;
    const auto colon = where.rfind(':');
    if (colon == std::string::npos) throw std::runtime_error("want host:port, got " + where);
    std::string host = where.substr(0, colon);
    if (host.size() > 1 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    const auto port = static_cast<unsigned short>(std::stoi(where.substr(colon + 1)));
    tcp::endpoint ep(asio::ip::make_address(host), port);
    auto a = std::make_unique<tcp::acceptor>(impl_->io);
    a->open(ep.protocol());
    a->set_option(tcp::acceptor::reuse_address(true));
    a->bind(ep);
    a->listen();
    impl_->acceptor = std::move(a);
}

void http_server::run() {
    impl& m = *impl_;
    while (!m.stopping) {
        tcp::socket socket(m.io);
        beast::error_code ec;
        m.acceptor->accept(socket, ec);
        if (ec) {
            if (m.stopping) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
            continue;
        }
        std::unique_lock lock(m.mu);
        // Beyond the bound, wait for a connection to end (the client waits in the backlog).
        m.ended.wait(lock, [&] { return m.running < m.max_connections || m.stopping; });
        if (m.stopping) break;
        ++m.running;
        const int fd = socket.native_handle();
        m.open.insert(fd);
        std::thread([&m, fd, s = std::move(socket)]() mutable {
            m.serve(std::move(s));
            std::lock_guard done(m.mu);
            m.open.erase(fd);
            --m.running;
            m.ended.notify_all();
        }).detach();
    }
    // Connections end at once (stop() shut them); the object must outlive their threads.
    std::unique_lock lock(m.mu);
    m.ended.wait(lock, [&] { return m.running == 0; });
}

void http_server::stop() {
    impl_->stopping = true;
    if (impl_->acceptor) ::shutdown(impl_->acceptor->native_handle(), SHUT_RDWR);
    std::lock_guard lock(impl_->mu);
    for (int fd : impl_->open) ::shutdown(fd, SHUT_RDWR);
    impl_->ended.notify_all();
}

}  // namespace ndrguard::web
