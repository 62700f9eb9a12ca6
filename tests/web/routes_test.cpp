// The release pages against a fake quarantine: what each request shows and does.
#include <doctest/doctest.h>

#include <map>

#include "ndrguard/web/release_token.hpp"
#include "ndrguard/web/routes.hpp"

using namespace ndrguard::web;

namespace {

const std::string secret = "0123456789abcdef0123456789abcdef";
const std::int64_t now = 1795400000;

struct fake_services : web_services {
    bool db = true;
    std::map<std::int64_t, item_view> items;
    int releases = 0;
    bool database_ok() override { return db; }
    std::optional<item_view> item(std::int64_t id) override {
        auto it = items.find(id);
        if (it == items.end()) return std::nullopt;
        return it->second;
    }
    std::vector<item_view> held_for(const std::string& mailbox, std::size_t limit, const std::string& search) override {
        std::vector<item_view> out;
        for (auto& [id, v] : items)
            if ((mailbox.empty() || v.mailbox == mailbox) && v.state == "held" && out.size() < limit &&
                (search.empty() || v.subject.find(search) != std::string::npos))
                out.push_back(v);
        return out;
    }
    // Storm 3 holds items 7 and 8 for alice.
    std::optional<storm_view> storm(std::int64_t id, const std::string& mailbox) override {
        if (id != 3 || mailbox != "alice@example.org") return std::nullopt;
        storm_view v;
        v.id = 3;
        v.mailbox = mailbox;
        v.started_at = "2026-11-22 02:00 UTC";
        v.bounces = 1243;
        v.top_reporters = {"mx1.spam.test (800)"};
        v.sample_subjects = {"<b>Rolex</b>"};
        for (auto i : {7, 8})
            if (items.count(i) && items[i].state == "held") ++v.held;
        return v;
    }
    int storm_releases = 0;
    storm_release_outcome release_storm(std::int64_t id, const std::string& mailbox, const std::string& who) override {
        ++storm_releases;
        CHECK(id == 3);
        CHECK(mailbox == "alice@example.org");
        CHECK(who == "link:alice@example.org");
        storm_release_outcome out;
        for (auto i : {7, 8}) {
            if (!items.count(i)) continue;
            if (items[i].state == "released") ++out.already;
            else items[i].state = "released", ++out.released;
        }
        return out;
    }
    stats statistics() override { return {static_cast<std::int64_t>(items.size()), 1, 0}; }
    std::string expected_who = "link:alice@example.org";
    release_outcome release(std::int64_t id, const std::string& who) override {
        ++releases;
        CHECK(who == expected_who);
        auto& it = items.at(id);
        if (it.state == "released") return {release_outcome::kind::already_released, ""};
        it.state = "released";
        return {release_outcome::kind::released, ""};
    }
};

fake_services with_item() {
    fake_services f;
    item_view v;
    v.id = 7;
    v.mailbox = "alice@example.org";
    v.state = "held";
    v.held_at = "2026-11-22 02:00 UTC";
    v.reporting_mta = "mx.remote.example";
    v.subject = "Undelivered <script>alert(1)</script>";
    v.original_subject = "Cheap \"watches\" & more";
    v.verification = "unverifiable";
    v.reasons = {"dsn.rfc3464", "ref.none"};
    f.items[7] = v;
    return f;
}

std::string link(std::int64_t id, std::string mailbox = "alice@example.org", std::int64_t expires = now + 3600,
                 token_action a = token_action::release) {
    token_claims c;
    c.action = a;
    c.target = id;
    c.mailbox = std::move(mailbox);
    c.expires_at = expires;
    return "/release/" + make_token(c, secret);
}

}  // namespace

TEST_CASE("GET shows what will be released, escaped, with a POST button, and releases nothing") {
    auto f = with_item();
    auto r = route({"GET", link(7)}, f, secret, now);
    CHECK(r.status == 200);
    CHECK(r.body.find("<form method=\"post\"") != std::string::npos);
    CHECK(r.body.find("mx.remote.example") != std::string::npos);
    CHECK(r.body.find("<script>") == std::string::npos);
    CHECK(r.body.find("&lt;script&gt;") != std::string::npos);
    CHECK(r.body.find("Cheap &quot;watches&quot; &amp; more") != std::string::npos);
    CHECK(r.body.find("name=\"viewport\"") != std::string::npos);
    CHECK(f.releases == 0);
}

TEST_CASE("a suspect item's page says it may be genuine, and shows its evidence") {
    auto f = with_item();
    f.items[7].verification = "suspect";
    f.items[7].evidence = {"sent_log.missing", "trace.our_relay"};
    auto r = route({"GET", link(7)}, f, secret, now);
    CHECK(r.status == 200);
    CHECK(r.body.find("it may be a genuine bounce") != std::string::npos);
    CHECK(r.body.find("<dt>Evidence</dt><dd>sent_log.missing, trace.our_relay</dd>") != std::string::npos);
    f.items[7].verification = "forged";
    CHECK(route({"GET", link(7)}, f, secret, now).body.find("never sent from here") != std::string::npos);
}

TEST_CASE("POST releases once; the next POST and GET say it was released before") {
    auto f = with_item();
    auto first = route({"POST", link(7)}, f, secret, now);
    CHECK(first.status == 200);
    CHECK(first.body.find("<h1>Released</h1>") != std::string::npos);
    auto again = route({"POST", link(7)}, f, secret, now);
    CHECK(again.body.find("Already released") != std::string::npos);
    CHECK(route({"GET", link(7)}, f, secret, now).body.find("Already released") != std::string::npos);
}

TEST_CASE("bad, altered, expired and foreign links are refused without touching the quarantine") {
    auto f = with_item();
    std::string good = link(7);
    std::string altered = good;
    altered[altered.size() - 5] = altered[altered.size() - 5] == 'A' ? 'B' : 'A';
    CHECK(route({"POST", altered}, f, secret, now).status == 403);
    CHECK(route({"POST", "/release/nonsense"}, f, secret, now).status == 403);
    CHECK(route({"POST", link(7, "alice@example.org", now - 1)}, f, secret, now).status == 410);
    CHECK(route({"POST", link(7, "alice@example.org", now + 60, token_action::list)}, f, secret, now).status == 403);
    // A genuine link for another mailbox's item: as if the item did not exist.
    auto foreign = route({"POST", link(7, "mallory@example.org")}, f, secret, now);
    CHECK(foreign.status == 404);
    CHECK(foreign.body.find("alice") == std::string::npos);
    CHECK(route({"GET", link(99)}, f, secret, now).status == 404);
    CHECK(f.releases == 0);
}

TEST_CASE("health, methods, unknown paths") {
    auto f = with_item();
    CHECK(route({"GET", "/healthz"}, f, secret, now).status == 200);
    f.db = false;
    CHECK(route({"GET", "/healthz"}, f, secret, now).status == 503);
    CHECK(route({"DELETE", link(7)}, f, secret, now).status == 405);
    CHECK(route({"GET", "/"}, f, secret, now).status == 404);
    // Parameters some mail systems append to links are ignored.
    CHECK(route({"GET", link(7) + "?utm_source=mail"}, f, secret, now).status == 200);
}

TEST_CASE("the page of held messages: only that mailbox's, each with a release link that works") {
    auto f = with_item();
    item_view other = f.items[7];
    other.id = 8;
    other.mailbox = "mallory@example.org";
    other.original_subject = "Mallory's secret";
    f.items[8] = other;
    token_claims c{token_action::list, 0, "alice@example.org", now + 3600};
    auto r = route({"GET", "/held/" + make_token(c, secret)}, f, secret, now);
    CHECK(r.status == 200);
    CHECK(r.body.find("Cheap &quot;watches&quot; &amp; more") != std::string::npos);
    CHECK(r.body.find("Mallory") == std::string::npos);
    const auto at = r.body.find("href=\"/release/");
    REQUIRE(at != std::string::npos);
    const auto end = r.body.find('"', at + 6);
    const std::string release_path = r.body.substr(at + 6, end - at - 6);
    CHECK(route({"POST", release_path}, f, secret, now).body.find("<h1>Released</h1>") != std::string::npos);
    // A release link is not a list link, nor the other way round.
    CHECK(route({"GET", "/held/" + release_path.substr(9)}, f, secret, now).status == 403);
    CHECK(route({"GET", "/release/" + make_token(c, secret)}, f, secret, now).status == 403);
    CHECK(route({"POST", "/held/" + make_token(c, secret)}, f, secret, now).status == 405);
    c.expires_at = now - 1;
    CHECK(route({"GET", "/held/" + make_token(c, secret)}, f, secret, now).status == 410);
}

TEST_CASE("admin API: bearer token required, JSON answers, release exactly once") {
    auto f = with_item();
    f.expected_who = "api";
    const std::string admin = "admin-token-0123456789abcdef0123";
    auto call = [&](std::string method, std::string target, std::string auth) {
        return route({std::move(method), std::move(target), std::move(auth)}, f, secret, now, admin);
    };
    CHECK(call("GET", "/api/stats", "").status == 401);
    CHECK(call("GET", "/api/stats", "Bearer wrong-token-0123456789abcdef012").status == 401);
    CHECK(call("GET", "/api/stats", "Bearer " + admin + "x").status == 401);
    CHECK(route({"GET", "/api/stats", "Bearer " + admin}, f, secret, now).status == 404);  // API off without a token
    auto stats = call("GET", "/api/stats", "Bearer " + admin);
    CHECK(stats.status == 200);
    CHECK(stats.content_type == "application/json");
    CHECK(stats.body.find("\"held_items\": 1") != std::string::npos);
    auto held = call("GET", "/api/held?mailbox=ALICE%40example.org&limit=10", "Bearer " + admin);
    CHECK(held.status == 200);
    CHECK(held.body.find("\"id\": 7") != std::string::npos);
    CHECK(call("GET", "/api/held?mailbox=bob%40example.org", "Bearer " + admin).body == "[]\n");
    CHECK(call("GET", "/api/held?limit=0", "Bearer " + admin).status == 400);
    CHECK(call("GET", "/api/items/7", "Bearer " + admin).body.find("alice@example.org") != std::string::npos);
    CHECK(call("GET", "/api/items/99", "Bearer " + admin).status == 404);
    auto released = call("POST", "/api/items/7/release", "Bearer " + admin);
    CHECK(released.status == 200);
    CHECK(released.body.find("\"released\"") != std::string::npos);
    CHECK(call("POST", "/api/items/7/release", "Bearer " + admin).body.find("already_released") != std::string::npos);
    CHECK(f.releases == 2);
    CHECK(call("GET", "/api/items/7/release", "Bearer " + admin).status == 405);
    CHECK(call("GET", "/api/nothing", "Bearer " + admin).status == 404);
}

TEST_CASE("query strings: percent-decoding and values") {
    std::string out;
    CHECK(url_decode("a%40b.c+d%2b", out));
    CHECK(out == "a@b.c d+");
    CHECK_FALSE(url_decode("%4", out));
    CHECK_FALSE(url_decode("%zz", out));
    CHECK_FALSE(url_decode("abc%", out));
    CHECK(query_value("a=1&mailbox=x%40y&b", "mailbox") == std::optional<std::string>("x@y"));
    CHECK(query_value("a=1&b", "b") == std::optional<std::string>(""));
    CHECK_FALSE(query_value("a=1", "mailbox").has_value());
    CHECK_FALSE(query_value("mailbox=%G1", "mailbox").has_value());
}

TEST_CASE("a storm's release-all link: GET shows the storm and releases nothing, POST releases what is held") {
    auto f = with_item();
    f.items[8] = f.items[7];
    f.items[8].id = 8;
    const std::string path = "/release-storm/" + make_token({token_action::release_storm, 3, "alice@example.org", now + 3600}, secret);
    auto r = route({"GET", path}, f, secret, now);
    CHECK(r.status == 200);
    CHECK(r.body.find("Release all 2 to my mailbox") != std::string::npos);
    CHECK(r.body.find("&lt;b&gt;Rolex&lt;/b&gt;") != std::string::npos);
    CHECK(r.body.find("<form method=\"post\" action=\"" + path + "\"") != std::string::npos);
    CHECK(f.storm_releases == 0);
    r = route({"POST", path}, f, secret, now);
    CHECK(r.status == 200);
    CHECK(r.body.find("2 released") != std::string::npos);
    CHECK(f.items[7].state == "released");
    r = route({"GET", path}, f, secret, now);
    CHECK(r.body.find("Nothing left to release") != std::string::npos);
    // Another mailbox's storm, a release link used as a storm link, an altered one, an expired one.
    CHECK(route({"GET", "/release-storm/" + make_token({token_action::release_storm, 3, "bob@example.org", now + 3600}, secret)}, f,
                secret, now).status == 404);
    CHECK(route({"POST", "/release-storm/" + make_token({token_action::release, 3, "alice@example.org", now + 3600}, secret)}, f,
                secret, now).status == 403);
    std::string altered = path;
    altered[altered.size() - 3] = altered[altered.size() - 3] == 'A' ? 'B' : 'A';
    CHECK(route({"POST", altered}, f, secret, now).status == 403);
    CHECK(route({"POST", "/release-storm/" + make_token({token_action::release_storm, 3, "alice@example.org", now - 1}, secret)}, f,
                secret, now).status == 410);
    CHECK(f.storm_releases == 1);
}

TEST_CASE("admin API: q= searches") {
    auto f = with_item();
    const std::string token = "admintoken0123456789";
    auto r = route({"GET", "/api/held?q=Undelivered", "Bearer " + token}, f, secret, now, token);
    CHECK(r.status == 200);
    CHECK(r.body.find("\"id\": 7") != std::string::npos);
    r = route({"GET", "/api/held?q=nothing-like-this", "Bearer " + token}, f, secret, now, token);
    CHECK(r.status == 200);
    CHECK(r.body.find("\"id\"") == std::string::npos);
}

TEST_CASE("admin API: a query value that does not decode is refused, never taken as absent") {
    auto f = with_item();
    const std::string token = "admintoken0123456789";
    // mailbox= absent lists every mailbox: a bad one must not fall back to that.
    for (const char* target : {"/api/held?mailbox=%zz", "/api/held?mailbox=bob%4", "/api/held?mailbox=%", "/api/held?limit=1&mailbox=a%G0b",
                               "/api/held?q=%zz", "/api/held?limit=%31%"}) {
        auto r = route({"GET", target, "Bearer " + token}, f, secret, now, token);
        CHECK_MESSAGE(r.status == 400, target);
        CHECK_MESSAGE(r.body.find("\"id\"") == std::string::npos, target);
        CHECK_MESSAGE(r.body.find("bad %-encoding") != std::string::npos, target);
    }
    // Good encodings and other keys' bad ones still work as before.
    CHECK(route({"GET", "/api/held?mailbox=alice%40example.org", "Bearer " + token}, f, secret, now, token).status == 200);
    CHECK(route({"GET", "/api/held?other=%zz", "Bearer " + token}, f, secret, now, token).status == 200);
}

TEST_CASE("query strings: which values are malformed") {
    struct row {
        const char* query;
        const char* name;
        bool malformed;
    };
    for (const row& r : {row{"mailbox=%zz", "mailbox", true}, row{"mailbox=a%4", "mailbox", true}, row{"a=1&mailbox=%", "mailbox", true},
                         row{"mailbox=a%40b", "mailbox", false}, row{"mailbox", "mailbox", false}, row{"mailbox=", "mailbox", false},
                         row{"other=%zz", "mailbox", false}, row{"", "mailbox", false}, row{"%zz=1", "mailbox", false},
                         row{"mailbox=ok&mailbox=%zz", "mailbox", false}})  // the first one counts, as in query_value
        CHECK_MESSAGE(query_value_malformed(r.query, r.name) == r.malformed, r.query);
}

#include "ndrguard/web/held_item_json.hpp"

TEST_CASE("the admin API gives a held item in the one JSON form, the CLI's (quarantine show --json)") {
    auto f = with_item();
    f.items[7].held_at_iso = "2026-11-22T02:00:00Z";
    f.items[7].klass = "dsn";
    f.items[7].storm_id = 3;
    f.items[7].message_ids = {"m1@example.org"};
    const std::string admin = "admin-token-0123456789abcdef0123";
    auto one = route({"GET", "/api/items/7", "Bearer " + admin}, f, secret, now, admin);
    REQUIRE(one.status == 200);
    const auto j = nlohmann::json::parse(one.body);
    CHECK(j == held_item_json(f.items[7]));
    std::vector<std::string> keys;
    for (const auto& [k, v] : j.items()) keys.push_back(k);
    CHECK(keys == std::vector<std::string>{"class", "evidence", "held_at", "id", "mailbox", "message_ids", "notes",
                                           "original_recipient", "original_subject", "reasons", "reporting_mta", "sender",
                                           "size", "state", "storm_id", "subject", "verification"});
    CHECK(j["held_at"] == "2026-11-22T02:00:00Z");  // machine time, not the pages' "2026-11-22 02:00 UTC"
    auto list = route({"GET", "/api/held", "Bearer " + admin}, f, secret, now, admin);
    CHECK(nlohmann::json::parse(list.body) == nlohmann::json::array({held_item_json(f.items[7])}));
}
