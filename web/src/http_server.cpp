#include "ndrguard/web/http_server.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>

namespace ndrguard::web {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

const http_response busy_answer{503, "text/plain; charset=utf-8", "busy, try again later\n"};
const http_response late_answer{503, "text/plain; charset=utf-8", "try again later\n"};

// Written at once, without waiting, to a connection past max_connections (then closed).
constexpr std::string_view too_many =
    "HTTP/1.1 503 Service Unavailable\r\nServer: ndrguard\r\nContent-Type: text/plain; charset=utf-8\r\n"
    "Cache-Control: no-store\r\nRetry-After: 5\r\nConnection: close\r\nContent-Length: 22\r\n\r\n"
    "busy, try again later\n";

http::response<http::string_body> make_response(http_response out, unsigned version, bool keep_alive, bool head) {
    http::response<http::string_body> res{static_cast<http::status>(out.status), version};
    res.set(http::field::server, "ndrguard");
    res.set(http::field::content_type, out.content_type);
    res.set(http::field::cache_control, "no-store");
    res.set("X-Content-Type-Options", "nosniff");
    res.set("X-Frame-Options", "DENY");
    res.set("Referrer-Policy", "no-referrer");
    res.set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'");
    if (out.status == 503) res.set(http::field::retry_after, "5");
    res.keep_alive(keep_alive);
    if (!head) res.body() = std::move(out.body);
    res.prepare_payload();
    return res;
}

// A parse error of the request itself (answered 400), not a vanished or timed-out client.
bool bad_request(const beast::error_code& ec) {
    if (ec == http::error::end_of_stream || ec == http::error::partial_message) return false;
    return &ec.category() == &http::make_error_code(http::error::bad_target).category();
}

// Counts an event that an attacker can repeat at will; logs it at most every 10 s.
struct rate_limited_count {
    std::uint64_t pending = 0;
    std::chrono::steady_clock::time_point last{};
    bool due() {
        ++pending;
        const auto now = std::chrono::steady_clock::now();
        if (now - last < std::chrono::seconds(10)) return false;
        last = now;
        return true;
    }
};

}  // namespace

struct http_server::impl {
    std::string listen;
    handler handle;
    http_limits limits;
    logger log;
    asio::io_context io;
    std::unique_ptr<asio::thread_pool> workers;  // declared after io: joined before io goes
    std::unique_ptr<tcp::acceptor> acceptor;
    std::atomic<bool> stopping{false};
    std::atomic<std::size_t> in_flight{0};  // handlers running or waiting for a worker, those past their deadline included

    // A request's handler, waited for by its connection (all but `result` on the I/O thread).
    struct job {
        explicit job(asio::io_context& io) : timer(io) {}
        asio::steady_timer timer;
        std::optional<http_response> result;
        std::atomic<bool> abandoned{false};  // its client had a 503: a worker that has not started it skips it
    };

    // The I/O thread's own state.
    std::size_t connections = 0;
    std::set<beast::tcp_stream*> streams;  // to end them on stop()
    std::set<job*> waiting;
    rate_limited_count refused, busy;

    void say(const std::string& line) {
        if (log) log("web: listen=" + listen + " " + line);
    }

    asio::awaitable<http_response> answer(http_request req) {
        if (!take_request(in_flight.load(), limits)) {
            if (busy.due()) say("event=busy count=" + std::to_string(std::exchange(busy.pending, 0)) + " workers=" +
                                std::to_string(limits.workers) + " waiting=" + std::to_string(limits.waiting) + " answer=503");
            co_return busy_answer;
        }
        ++in_flight;
        auto j = std::make_shared<job>(io);
        const auto deadline = handler_deadline(req.method, limits);
        j->timer.expires_after(deadline);
        waiting.insert(j.get());
        // The route only: the rest of a path may be a release token.
        const std::string what = req.method + " " + req.target.substr(0, std::min(req.target.find('/', 1), req.target.find('?'))).substr(0, 40);
        asio::post(*workers, [this, j, r = std::move(req)] {
            if (!j->abandoned) {
                http_response out;
                try {
                    out = handle(r);
                } catch (...) {
                    out = late_answer;
                }
                asio::post(io, [j, o = std::move(out)]() mutable {
                    if (j->abandoned) return;  // the client had its 503 already
                    j->result = std::move(o);
                    j->timer.cancel();
                });
            }
            --in_flight;
        });
        co_await j->timer.async_wait(use_tuple);
        waiting.erase(j.get());
        if (j->result) co_return std::move(*j->result);
        j->abandoned = true;
        if (!stopping)
            say("event=handler_timeout request=\"" + what + "\" after_ms=" + std::to_string(deadline.count()) + " answer=503");
        co_return late_answer;
    }

    asio::awaitable<void> session(tcp::socket socket) {
        beast::tcp_stream stream(std::move(socket));
        streams.insert(&stream);
        struct done {
            impl& m;
            beast::tcp_stream* s;
            ~done() {
                m.streams.erase(s);
                --m.connections;
            }
        } guard{*this, &stream};
        beast::flat_buffer buffer;
        auto start = std::chrono::steady_clock::now();  // the first request's deadlines run from the connection
        for (int n = 0; n < limits.max_requests_per_connection && !stopping; ++n) {
            if (n > 0) {
                if (buffer.size() == 0) {  // idle between requests: keepalive_timeout for the first byte
                    stream.expires_after(limits.keepalive_timeout);
                    auto [ec, got] = co_await stream.async_read_some(buffer.prepare(4096), use_tuple);
                    if (ec) break;
                    buffer.commit(got);
                }
                start = std::chrono::steady_clock::now();
            }
            const request_deadlines due = deadlines_for(start, limits);
            http::request_parser<http::string_body> parser;
            parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
            parser.body_limit(static_cast<std::uint64_t>(limits.max_body_bytes));
            // One deadline for the whole header: a byte now and then does not extend it.
            stream.expires_at(due.header);
            auto [ec, got] = co_await http::async_read_header(stream, buffer, parser, use_tuple);
            if (!ec && !parser.is_done()) {
                stream.expires_at(due.whole);
                std::tie(ec, got) = co_await http::async_read(stream, buffer, parser, use_tuple);
            }
            if (ec) {
                if (bad_request(ec) && !stopping) {
                    auto bad = make_response({400, "text/plain; charset=utf-8", "bad request\n"}, 11, false, false);
                    stream.expires_after(limits.request_timeout);
                    co_await http::async_write(stream, bad, use_tuple);
                }
                break;
            }
            const auto& req = parser.get();
            const bool head = req.method() == http::verb::head;
            const bool keep_alive = req.keep_alive() && n + 1 < limits.max_requests_per_connection;
            const unsigned version = req.version();
            http_request r{std::string(req.method_string()), std::string(req.target()),
                           std::string(req[http::field::authorization])};
            auto res = make_response(co_await answer(std::move(r)), version, keep_alive, head);
            if (stopping) break;
            stream.expires_after(limits.request_timeout);
            auto [wec, wrote] = co_await http::async_write(stream, res, use_tuple);
            if (wec || !res.keep_alive()) break;
        }
        beast::error_code ignore;
        stream.socket().shutdown(tcp::socket::shutdown_send, ignore);
        stream.close();
    }

    asio::awaitable<void> accept_loop() {
        asio::steady_timer pause(io);
        while (!stopping) {
            auto [ec, socket] = co_await acceptor->async_accept(use_tuple);
            if (stopping) break;
            if (ec) {  // out of descriptors, a connection reset before accept: go on a moment later
                pause.expires_after(std::chrono::milliseconds(50));
                co_await pause.async_wait(use_tuple);
                continue;
            }
            if (!take_connection(connections, limits)) {
                // Never waits: what the kernel takes now is all the client gets.
                (void)::send(socket.native_handle(), too_many.data(), too_many.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
                beast::error_code ignore;
                socket.close(ignore);
                if (refused.due())
                    say("event=connections_refused count=" + std::to_string(std::exchange(refused.pending, 0)) +
                        " max_connections=" + std::to_string(limits.max_connections) + " answer=503");
                continue;
            }
            ++connections;
            asio::co_spawn(io, session(std::move(socket)), asio::detached);
        }
    }

    void end_everything() {  // on the I/O thread
        stopping = true;
        beast::error_code ignore;
        if (acceptor) acceptor->close(ignore);
        for (auto* s : streams) s->close();
        for (auto* j : waiting) j->timer.cancel();
    }
};

http_server::http_server(std::string listen, handler h, http_limits limits, logger log) : impl_(std::make_unique<impl>()) {
    impl_->listen = std::move(listen);
    impl_->handle = std::move(h);
    impl_->limits = limits;
    impl_->log = std::move(log);
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
    m.workers = std::make_unique<asio::thread_pool>(m.limits.workers);
    if (m.acceptor && !m.stopping) asio::co_spawn(m.io, m.accept_loop(), asio::detached);
    m.io.run();
    // Handlers still running finish first: they use what the caller owns. Their answers go
    // to the stopped io_context and are dropped with it.
    m.workers->join();
}

void http_server::stop() {
    impl_->stopping = true;
    asio::post(impl_->io, [m = impl_.get()] { m->end_everything(); });
}

}  // namespace ndrguard::web
