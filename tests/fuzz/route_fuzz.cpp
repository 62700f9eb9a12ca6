// libFuzzer target for what is ours in HTTP request handling: route() (the release pages and the
// admin API) with a fake quarantine, fed a method, a target and an Authorization header from the
// input (Beast parses the bytes on the wire; the target and the header values reach us as they
// came). Mode bits of the first byte make a token part of the target validly signed, and the
// Authorization header the right admin token, so that what lies behind both checks is reached.
// Invariants: no crash, no exception; a known status and a content type; nothing from the
// quarantine unescaped in an HTML page; a mailbox= that does not decode never lists every mailbox;
// the admin API answers nothing without its token.
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>

#include "ndrguard/web/release_token.hpp"
#include "ndrguard/web/routes.hpp"
#include "ndrguard/web/url.hpp"

using namespace ndrguard::web;

namespace {

const std::string secret = "fuzz-secret-0123456789abcdef0123";
const std::string admin = "fuzz-admin-token-0123456789abcdef";
constexpr std::int64_t now = 1795400000;

struct fake_services : web_services {
    std::map<std::int64_t, item_view> items;
    bool listed_every_mailbox = false;
    fake_services() {
        for (std::int64_t id : {1, 2, 7}) {
            item_view v;
            v.id = id;
            v.mailbox = id == 2 ? "bob@example.org" : "alice@example.org";
            v.state = id == 1 ? "released" : "held";
            v.held_at = "2026-11-22 02:00 UTC";
            v.reporting_mta = "<script>mx</script>";
            v.subject = "<script>alert(1)</script>";
            v.original_subject = "\"'&<>";
            v.verification = "forged";
            v.reasons = {"<script>"};
            items[id] = v;
        }
    }
    bool database_ok() override { return true; }
    std::optional<item_view> item(std::int64_t id) override {
        auto it = items.find(id);
        if (it == items.end()) return std::nullopt;
        return it->second;
    }
    release_outcome release(std::int64_t id, const std::string&) override {
        auto it = items.find(id);
        if (it == items.end()) return {release_outcome::kind::unknown_item, ""};
        if (it->second.state == "released") return {release_outcome::kind::already_released, ""};
        return {static_cast<release_outcome::kind>(id % 7), "<script>"};
    }
    std::vector<item_view> held_for(const std::string& mailbox, std::size_t limit, const std::string&) override {
        if (mailbox.empty()) listed_every_mailbox = true;
        std::vector<item_view> out;
        for (auto& [id, v] : items)
            if ((mailbox.empty() || v.mailbox == mailbox) && out.size() < limit) out.push_back(v);
        return out;
    }
    std::optional<storm_view> storm(std::int64_t id, const std::string& mailbox) override {
        if (id != 3) return std::nullopt;
        storm_view v;
        v.id = 3;
        v.mailbox = mailbox;
        v.started_at = "<script>";
        v.held = id;
        v.top_reporters = {"<script>"};
        v.sample_subjects = {"<script>"};
        return v;
    }
    storm_release_outcome release_storm(std::int64_t id, const std::string&, const std::string&) override {
        return {id, 1, id % 2, 0};
    }
    stats statistics() override { return {3, 2, 1}; }
};

const char* const methods[] = {"GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "get", ""};
const char* const prefixes[] = {"", "/release/", "/held/", "/release-storm/", "/api/items/", "/api/held?", "/api/", "/healthz"};

bool known_status(int s) {
    switch (s) {
        case 200: case 400: case 401: case 403: case 404: case 405: case 409: case 410: case 503: return true;
        default: return false;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    const std::uint8_t mode = data[0], shape = data[1];
    std::string_view rest(reinterpret_cast<const char*>(data + 2), size - 2);
    // target \n authorization (the rest of the input)
    const std::size_t nl = rest.find('\n');
    std::string target(rest.substr(0, nl));
    std::string authorization(nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1));
    const std::string method = methods[shape & 7];
    const std::string prefix = prefixes[(shape >> 3) & 7];
    if (mode & 1) {
        // Sign the target's bytes as a token's payload: the claims parser behind the signature.
        const std::string signed_part = "v1." + base64url(target);
        target = signed_part + "." + base64url(hmac_sha256(secret, signed_part));
    } else if (mode & 2) {
        // A valid token of the fuzzer's choosing of action, id and mailbox.
        token_claims c;
        c.action = static_cast<token_action>((mode >> 2) % 3);
        c.target = (mode >> 4) % 9;
        c.mailbox = target.empty() ? "alice@example.org" : target.substr(0, 320);
        c.expires_at = mode & 0x80 ? now - 1 : now + 3600;
        target = make_token(c, secret);
    }
    target = prefix + target;
    const bool right_token = mode & 0x40;
    if (right_token) authorization = "Bearer " + admin;

    fake_services services;
    const http_request req{method, target, authorization};
    const http_response r = route(req, services, secret, now, mode & 0x20 ? std::string_view{} : std::string_view(admin));
    if (!known_status(r.status) || r.content_type.empty()) std::abort();
    // Everything from the quarantine is escaped in pages (JSON is served as such, with nosniff).
    if (r.content_type.rfind("text/html", 0) == 0 && r.body.find("<script") != std::string::npos) std::abort();
    std::string_view path = target, query;
    if (auto q = path.find('?'); q != std::string_view::npos) query = path.substr(q + 1), path = path.substr(0, q);
    if (path.substr(0, 5) == "/api/") {
        const bool authorised = !(mode & 0x20) && authorization == "Bearer " + admin;
        if (!authorised && r.status != 401 && r.status != 404) std::abort();
        if (!authorised && r.body.find("\"id\"") != std::string::npos) std::abort();
        if (query_value_malformed(query, "mailbox") && services.listed_every_mailbox) std::abort();
    }
    return 0;
}
