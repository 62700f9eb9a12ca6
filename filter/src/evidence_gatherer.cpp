#include "ndrguard/filter/evidence_gatherer.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "ndrguard/detector/ascii.hpp"
#include "ndrguard/evidence/strength.hpp"

namespace ndrguard::filter {

namespace det = ndrguard::detector;
namespace ev = ndrguard::evidence;

namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) s.remove_suffix(1);
    return s;
}

bool loopback_name(std::string_view host) {
    return det::ascii::iequals(host, "localhost") || det::ascii::iequals(host, "localhost.localdomain") ||
           host.substr(0, 4) == "127." || host == "::1";
}

constexpr auto found_key_kept = std::chrono::hours(1);
constexpr auto missing_key_kept = std::chrono::minutes(5);
constexpr std::size_t max_cached_keys = 1000;

}  // namespace

std::vector<ev::batv_key> load_batv_keys(std::string_view setting) {
    std::vector<ev::batv_key> keys;
    std::size_t pos = 0;
    while (pos <= setting.size()) {
        std::size_t comma = setting.find(',', pos);
        if (comma == std::string_view::npos) comma = setting.size();
        const std::string_view entry = trim(setting.substr(pos, comma - pos));
        pos = comma + 1;
        if (entry.empty()) continue;
        const std::size_t colon = entry.find(':');
        if (colon != 1 || entry[0] < '0' || entry[0] > '9' || colon + 1 >= entry.size())
            throw std::runtime_error("batv_keys: \"" + std::string(entry) + "\" is not K:FILE");
        const std::string file(entry.substr(colon + 1));
        std::ifstream in(file, std::ios::binary);
        if (!in) throw std::runtime_error("batv_keys: cannot read " + file + ": " + std::strerror(errno));
        std::string text(4096, '\0');  // a secret is one short line
        in.read(text.data(), std::streamsize(text.size()));
        text.resize(std::size_t(in.gcount()));
        const std::string first_line = text.substr(0, text.find('\n'));
        const std::string_view secret = trim(first_line);
        if (secret.empty()) throw std::runtime_error("batv_keys: " + file + " holds no secret");
        for (const auto& k : keys)
            if (k.number == unsigned(entry[0] - '0')) throw std::runtime_error("batv_keys: key " + std::string(1, entry[0]) + " twice");
        keys.push_back({unsigned(entry[0] - '0'), std::string(secret)});
    }
    return keys;
}

std::vector<std::string> relays_of(const serve_config& cfg) {
    if (!cfg.our_relays.empty()) return cfg.our_relays;
    if (loopback_name(cfg.hostname)) return {};
    return {det::ascii::to_lower(cfg.hostname)};
}

evidence_gatherer::evidence_gatherer(const serve_config& cfg)
    : our_domains_(cfg.our_domains), dns_(cfg.dkim_dns) {
    trace_.our_domains = cfg.our_domains;
    trace_.our_relays = relays_of(cfg);
    batv_.keys = load_batv_keys(cfg.batv_keys);
    batv_.validity_days = static_cast<unsigned>(cfg.batv_validity_days);
    keys_.keys = ev::dkim::load_key_entries(cfg.dkim_keys);
    dns_options_.timeout_seconds = cfg.dkim_dns_timeout_seconds;
    dns_options_.tries = 2;
    if (dns_) keys_.dns_txt = [this](const std::string& name) { return dns_key(name); };
}

std::optional<std::string> evidence_gatherer::dns_key(const std::string& name) const {
    const auto now = std::chrono::steady_clock::now();
    {
        std::lock_guard lock(cache_mu_);
        auto it = cache_.find(name);
        if (it != cache_.end() && it->second.until > now) return it->second.record;
    }
    // Outside the lock: other bounces need not wait on this one's lookup (two may look up the
    // same name at once; both answers are the same).
    std::optional<std::string> record = ev::dkim::dns_txt_lookup(name, dns_options_);
    std::lock_guard lock(cache_mu_);
    if (cache_.size() >= max_cached_keys) cache_.clear();  // bounded: names come from hostile mail
    cache_[name] = {record, now + (record ? found_key_kept : missing_key_kept)};
    return record;
}

bool evidence_gatherer::may_block(const det::result& r) const {
    if (!dns_ || our_domains_.empty() || r.returned_headers.empty()) return false;
    static constexpr std::string_view field = "dkim-signature";
    const std::string_view h = r.returned_headers;
    for (std::size_t i = 0; i + field.size() <= h.size(); ++i)
        if (det::ascii::iequals(h.substr(i, field.size()), field)) return true;
    return false;
}

std::string evidence_gatherer::untagged(std::string_view address) {
    ev::batv_tag tag;
    if (!ev::parse_batv(address, tag)) return std::string(address);
    return std::string(tag.local_part) + "@" + std::string(tag.domain);
}

gathered_evidence evidence_gatherer::gather(const det::result& r, const std::vector<std::string>& envelope_recipients,
                                            std::chrono::system_clock::time_point now) const {
    gathered_evidence g;
    origin_evidence& e = g.findings;
    e.names_ids = !r.message_ids.empty();
    e.strength = ev::strength_of(r);

    if (!our_domains_.empty() && !r.returned_headers.empty()) {
        std::optional<std::string_view> body;
        if (r.returned_body_complete) body = r.returned_body;
        const ev::dkim::report rep = ev::dkim::check(r.returned_headers, body, our_domains_, keys_);
        for (const auto& sig : rep.ours) {
            if (sig.result == ev::dkim::outcome::verified) {
                e.dkim = dkim_finding::verified;
                g.dkim_domain = sig.domain;
                g.dkim_reason = {};
                break;
            }
            if (e.dkim == dkim_finding::none) {
                e.dkim = dkim_finding::failed;
                g.dkim_reason = sig.reason;
                g.dkim_domain = sig.domain;
            }
        }
    }

    if (!batv_.keys.empty()) {  // without our keys every tag would read as "not ours"
        const std::int64_t today = ev::day_number(std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count());
        for (const auto& rcpt : envelope_recipients) {
            ev::batv_result b = ev::verify_batv(rcpt, batv_, today);
            if (b.status == ev::batv_status::not_tagged) continue;
            if (b.status == ev::batv_status::valid || e.batv == ev::batv_status::not_tagged) {
                e.batv = b.status;
                e.batv_reason = b.reason;
            }
            if (b.status == ev::batv_status::valid) break;  // one of ours is enough
        }
    }

    if (!r.returned_headers.empty()) {
        const ev::trace_evidence t = ev::read_trace(r.returned_headers, trace_);
        e.our_relay = t.our_relay;
        e.spf_fail = t.spf_fail;
        e.dmarc_fail = t.dmarc_fail;
        e.foreign_origin = t.foreign_origin;
    }
    return g;
}

}  // namespace ndrguard::filter
