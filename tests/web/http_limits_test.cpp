// The HTTP listener's decisions (http_limits.hpp), as tables.
#include <doctest/doctest.h>

#include "ndrguard/web/http_limits.hpp"

using namespace ndrguard::web;
using std::chrono::milliseconds;
using std::chrono::seconds;

TEST_CASE("a request's deadlines: the header's never after the whole request's") {
    const steady_time t0{};
    struct row {
        int header_s, request_s, want_header_s, want_whole_s;
    };
    for (const row& r : {row{10, 30, 10, 30}, row{10, 5, 5, 5}, row{3, 3, 3, 3}, row{1, 3600, 1, 3600}}) {
        http_limits l;
        l.header_timeout = seconds(r.header_s);
        l.request_timeout = seconds(r.request_s);
        const auto d = deadlines_for(t0, l);
        CHECK(d.header == t0 + seconds(r.want_header_s));
        CHECK(d.whole == t0 + seconds(r.want_whole_s));
    }
}

TEST_CASE("connections and requests past their bounds are refused") {
    http_limits l;
    l.max_connections = 3;
    l.workers = 1;
    l.waiting = 1;
    struct row {
        std::size_t n;
        bool connection, request;
    };
    for (const row& r : {row{0, true, true}, row{1, true, true}, row{2, true, false}, row{3, false, false}, row{100, false, false}}) {
        CHECK(take_connection(r.n, l) == r.connection);
        CHECK(take_request(r.n, l) == r.request);
    }
}

TEST_CASE("how long a handler may take, by method") {
    http_limits l;
    l.handler_timeout = milliseconds(1500);
    l.slow_handler_timeout = milliseconds(121500);
    CHECK(handler_deadline("GET", l) == milliseconds(1500));
    CHECK(handler_deadline("HEAD", l) == milliseconds(1500));
    CHECK(handler_deadline("POST", l) == milliseconds(121500));
    CHECK(handler_deadline("PUT", l) == milliseconds(121500));
}
