// The audit's rules. Each says where it comes from: Postfix 3.7's postconf(5) and master(5)
// manual pages, BACKSCATTER_README, LOCAL_RECIPIENT_README, FILTER_README, SMTPD_PROXY_README,
// SMTPD_POLICY_README, XFORWARD_README and ADDRESS_VERIFICATION_README (www.postfix.org), and
// ndrguard's own deploy/postfix snippets. Values are effective values (postconf -x) or
// Postfix's defaults; a master.cf -o override wins over main.cf for its service (master(5)).
#include "ndrguard/doctor/audit.hpp"

#include <algorithm>
#include <array>
#include <set>
#include <utility>

namespace ndrguard::doctor {

std::string_view to_string(severity s) {
    switch (s) {
        case severity::error: return "error";
        case severity::warning: return "warning";
        case severity::info: return "info";
    }
    return "warning";
}

namespace {

// Postfix 3.7's defaults for what the audit reads, as `postconf -d` prints them at
// compatibility_level 3.6 (Debian 12's fresh install); relay_domains' default is empty from
// compatibility level 2 on (postconf(5) relay_domains).
constexpr std::pair<std::string_view, std::string_view> defaults[] = {
    {"2bounce_notice_recipient", "postmaster"},
    {"access_map_reject_code", "554"},
    {"alias_maps", "hash:/etc/aliases, nis:mail.aliases"},
    {"body_checks", ""},
    {"bounce_notice_recipient", "postmaster"},
    {"canonical_maps", ""},
    {"content_filter", ""},
    {"delay_notice_recipient", "postmaster"},
    {"header_checks", ""},
    {"inet_interfaces", "all"},
    {"local_recipient_maps", "proxy:unix:passwd.byname $alias_maps"},
    {"luser_relay", ""},
    {"maps_rbl_reject_code", "554"},
    {"mime_header_checks", "$header_checks"},
    {"mydestination", "$myhostname, localhost.$mydomain, localhost"},
    {"mydomain", "localdomain"},
    {"myhostname", "localhost"},
    {"mynetworks", "127.0.0.0/8 [::ffff:127.0.0.0]/104 [::1]/128"},
    {"nested_header_checks", "$header_checks"},
    {"notify_classes", "resource, software"},
    {"receive_override_options", ""},
    {"recipient_canonical_maps", ""},
    {"reject_code", "554"},
    {"relay_domains", ""},
    {"relay_domains_reject_code", "554"},
    {"relay_recipient_maps", ""},
    {"sender_canonical_maps", ""},
    {"smtp_send_xforward_command", "no"},
    {"smtpd_authorized_xforward_hosts", ""},
    {"smtpd_client_restrictions", ""},
    {"smtpd_data_restrictions", ""},
    {"smtpd_end_of_data_restrictions", ""},
    {"smtpd_etrn_restrictions", ""},
    {"smtpd_helo_restrictions", ""},
    {"smtpd_milters", ""},
    {"smtpd_proxy_filter", ""},
    {"smtpd_recipient_restrictions", ""},
    {"smtpd_reject_unlisted_recipient", "yes"},
    {"smtpd_relay_restrictions", "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination"},
    {"smtpd_sasl_auth_enable", "no"},
    {"smtpd_sender_restrictions", ""},
    {"smtpd_tls_wrappermode", "no"},
    {"soft_bounce", "no"},
    {"syslog_name", "postfix"},
    {"unknown_local_recipient_reject_code", "550"},
    {"unknown_relay_recipient_reject_code", "550"},
    {"unknown_virtual_alias_reject_code", "550"},
    {"unknown_virtual_mailbox_reject_code", "550"},
    {"virtual_alias_domains", "$virtual_alias_maps"},
    {"virtual_alias_maps", ""},
    {"virtual_mailbox_domains", "$virtual_mailbox_maps"},
    {"virtual_mailbox_maps", ""},
    {"non_smtpd_milters", ""},
    {"sender_canonical_classes", "envelope_sender, header_sender"},
    {"smtpd_proxy_options", ""},
};

// The parameters a restriction list may be in (postconf(5), smtpd_*_restrictions). Postfix
// evaluates relay before recipient restrictions (postconf(5) smtpd_relay_restrictions).
constexpr std::array<std::string_view, 8> restriction_lists{
    "smtpd_client_restrictions",  "smtpd_helo_restrictions",  "smtpd_sender_restrictions",
    "smtpd_relay_restrictions",   "smtpd_recipient_restrictions", "smtpd_data_restrictions",
    "smtpd_end_of_data_restrictions", "smtpd_etrn_restrictions"};

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

bool contains(std::string_view hay, std::string_view needle) { return hay.find(needle) != std::string_view::npos; }

bool has_item(const std::vector<std::string>& items, std::string_view v) {
    return std::find(items.begin(), items.end(), v) != items.end();
}

std::string join(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& i : items) {
        if (!out.empty()) out += ", ";
        out += i;
    }
    return out;
}

// A restriction that takes the next item as its argument (postconf(5): check_*_access
// type:table, check_policy_service server, reject_rbl_client domain, ...).
bool takes_argument(std::string_view item) {
    return (item.rfind("check_", 0) == 0 && item != "check_relay_domains") || item.rfind("reject_rhsbl_", 0) == 0 ||
           item == "reject_rbl_client" || item == "permit_dnswl_client" || item == "permit_rhswl_client";
}
// A restriction list written back: "check_policy_service inet:..., reject_rbl_client zen..., x".
std::string join_restrictions(const std::vector<std::string>& items) {
    std::string out;
    for (std::size_t i = 0; i < items.size(); ++i) {
        if (i > 0) out += takes_argument(items[i - 1]) ? " " : ", ";
        out += items[i];
    }
    return out;
}

// A shell word in single quotes (a value may hold anything).
std::string quoted(std::string_view s) {
    std::string out = "'";
    for (char c : s) {
        if (c == '\'') out += "'\\''";
        else out += c;
    }
    return out + "'";
}

std::string set_main(std::string_view name, std::string_view value) {
    return "postconf -e " + quoted(std::string(name) + " = " + std::string(value));
}
std::string set_service(const service& s, std::string_view name, std::string_view value) {
    return "postconf -P " + quoted(s.key() + "/" + std::string(name) + "=" + std::string(value));
}

// host:port in the forms Postfix writes a next hop or a listener: "[127.0.0.1]:10025",
// "inet:127.0.0.1:10025", "localhost:10025"; lower-cased, brackets and "inet:" gone, and
// localhost made 127.0.0.1 (what it resolves to in /etc/hosts on Debian).
std::string normal_endpoint(std::string_view v) {
    std::string s = lower(v);
    if (s.rfind("inet:", 0) == 0) s.erase(0, 5);
    std::string out;
    for (char c : s)
        if (c != '[' && c != ']') out += c;
    if (out.rfind("localhost:", 0) == 0) out = "127.0.0.1" + out.substr(9);
    return out;
}

struct destination {
    std::string transport, nexthop;
};
// content_filter's "transport:destination" (postconf(5) content_filter).
destination parse_filter(std::string_view v) {
    const std::size_t colon = v.find(':');
    if (colon == std::string_view::npos) return {std::string(v), {}};
    return {std::string(v.substr(0, colon)), std::string(v.substr(colon + 1))};
}

class auditor {
public:
    auditor(const input& in, const limits& lim) : in_(in), lim_(lim) {
        for (const auto& s : in_.services.services) {
            if (s.command != "smtpd" || (s.type != "inet" && s.type != "pass")) continue;
            if (is_reinjection(s)) reinjection_ = &s;
            else receivers_.push_back(&s);
        }
    }

    std::vector<finding> run() {
        reject_codes();
        soft_bounce();
        recipient_validation();
        luser_relay();
        unauth_destination();
        forwarding();
        sender_callouts();
        notify_classes();
        bouncing_content_filter();
        wiring();
        policy_order();
        std::stable_sort(out_.begin(), out_.end(),
                         [](const finding& a, const finding& b) { return a.level < b.level; });
        return std::move(out_);
    }

private:
    const input& in_;
    const limits& lim_;
    const service* reinjection_ = nullptr;
    std::vector<const service*> receivers_;  // smtpd services but the reinjection one
    std::vector<finding> out_;
    std::set<std::pair<std::string, std::string>> seen_;

    void add(std::string id, severity level, std::string where, std::string why, std::vector<std::string> fix,
             std::string source) {
        if (!seen_.emplace(id, where).second) return;
        out_.push_back({std::move(id), level, std::move(where), std::move(why), std::move(fix), std::move(source)});
    }

    // $name and ${name} expanded (postconf(5): "$name expansion"), at most 8 levels deep and
    // max_line_bytes long; conditional forms (${name?value}, ${name:value}, ${{...}}) are left
    // as they are.
    // Every top-level expansion has a budget of 10,000 references in all: "a = $b$b$b..." with
    // "b = $c$c$c..." would otherwise grow as the product of their lengths.
    std::string expand(std::string_view v) const {
        std::size_t budget = 10000;
        return expand(v, 0, budget);
    }
    std::string expand(std::string_view v, int depth, std::size_t& budget) const {
        if (depth > 8 || budget == 0 || !contains(v, "$")) return std::string(v);
        std::string out;
        for (std::size_t i = 0; i < v.size() && out.size() < lim_.max_line_bytes;) {
            if (v[i] != '$' || i + 1 >= v.size()) {
                out += v[i++];
                continue;
            }
            std::size_t b = i + 1, e = b;
            bool braced = v[b] == '{';
            if (braced) ++b, e = b;
            while (e < v.size() && ((v[e] >= 'a' && v[e] <= 'z') || (v[e] >= 'A' && v[e] <= 'Z') ||
                                    (v[e] >= '0' && v[e] <= '9') || v[e] == '_'))
                ++e;
            if (e == b || (braced && (e >= v.size() || v[e] != '}'))) {
                out += v[i++];
                continue;
            }
            if (budget == 0) {
                out += v[i++];
                continue;
            }
            --budget;
            out += expand(raw(v.substr(b, e - b)), depth + 1, budget);
            i = braced ? e + 1 : e;
        }
        if (out.size() > lim_.max_line_bytes) out.resize(lim_.max_line_bytes);
        return out;
    }

    std::string raw(std::string_view name) const {
        auto it = in_.main.values.find(name);
        if (it != in_.main.values.end()) return it->second;
        return std::string(default_value(name));
    }

public:
    // main.cf's effective value.
    std::string get(std::string_view name) const { return expand(raw(name)); }
    bool overridden(const service& s, std::string_view name) const { return s.overrides.count(name) != 0; }
    // The service's value: its -o override, else main.cf's.
    std::string get(const service& s, std::string_view name) const {
        auto it = s.overrides.find(name);
        return it != s.overrides.end() ? expand(it->second) : get(name);
    }
    // Where the value a service uses is set.
    static std::string where(const service& s, bool override) {
        return override ? "master.cf " + s.key() : std::string("main.cf");
    }
    std::vector<std::string> list(std::string_view value) const { return split_list(value, lim_); }

private:
    bool yes(std::string_view v) const { return lower(v) == "yes" || lower(v) == "true"; }

    // An inet service's name as the listening address (master(5): "host:port" or "port").
    static std::string listen_address(const service& s) {
        std::string n = normal_endpoint(s.name);
        if (n.find(':') == std::string::npos) n = "*:" + n;
        return n;
    }
    bool is_reinjection(const service& s) const {
        if (s.type != "inet") return false;
        const std::string hop = normal_endpoint(in_.ndrguard.next_hop);
        const std::string here = listen_address(s);
        if (here == hop) return true;
        const std::size_t c = hop.rfind(':');
        return c != std::string::npos && here == "*:" + hop.substr(c + 1);  // all interfaces
    }

    enum class target { none, inbound, outbound };
    target points_at(std::string_view endpoint) const {
        if (endpoint.empty()) return target::none;
        const std::string e = normal_endpoint(endpoint);
        if (!in_.ndrguard.outbound_listen.empty() && e == normal_endpoint(in_.ndrguard.outbound_listen))
            return target::outbound;
        if (e == normal_endpoint(in_.ndrguard.listen)) return target::inbound;
        return target::none;
    }
    // content_filter = transport:[127.0.0.1]:10025 with ndrguard's address as the next hop.
    target filter_target(std::string_view content_filter) const {
        return points_at(parse_filter(content_filter).nexthop);
    }
    const service* find_service(std::string_view name, std::string_view type) const {
        for (const auto& s : in_.services.services)
            if (s.name == name && s.type == type) return &s;
        return nullptr;
    }
    static bool is_submission(const service& s, const auditor& a) {
        return s.name == "submission" || s.name == "submissions" || s.name == "smtps" || s.name == "587" ||
               s.name == "465" || (a.overridden(s, "smtpd_sasl_auth_enable") && a.yes(a.get(s, "smtpd_sasl_auth_enable")));
    }
    // The content_filter value that leads to ndrguard: its listen, or for outbound-only mail its
    // outbound_listen (deploy/postfix/master.cf.snippet 3 suggests 127.0.0.1:10027 when unset).
    std::string filter_line(bool outbound) const {
        const std::string addr = !outbound ? in_.ndrguard.listen
                                 : in_.ndrguard.outbound_listen.empty() ? std::string("127.0.0.1:10027")
                                                                        : in_.ndrguard.outbound_listen;
        const std::size_t c = addr.rfind(':');
        return "ndrguard:[" + (c == std::string::npos ? addr : addr.substr(0, c)) + "]" +
               (c == std::string::npos ? "" : addr.substr(c));
    }

    // The fix lines that send a service's mail to ndrguard as outbound.
    std::vector<std::string> outbound_fix(const service& s) const {
        std::vector<std::string> fix;
        if (in_.ndrguard.outbound_listen.empty()) fix.push_back("# ndrguard.conf: outbound_listen = 127.0.0.1:10027");
        fix.push_back(set_service(s, "content_filter", filter_line(true)));
        return fix;
    }

    // --- accept-then-bounce -----------------------------------------------------------

    // postconf(5) unknown_*_reject_code: 550 by default, "safer to initially use 450" only
    // while the recipient tables are being tested. A 4xx keeps the sending MTA retrying for
    // days instead of giving up at once; a relay that forwarded a forged message then bounces it
    // to the forged sender, and random-address spam is never refused for good
    // (BACKSCATTER_README: reject unknown recipients at SMTP time).
    void reject_codes() {
        static constexpr std::array<std::pair<std::string_view, severity>, 7> codes{{
            {"unknown_local_recipient_reject_code", severity::error},
            {"unknown_virtual_alias_reject_code", severity::error},
            {"unknown_virtual_mailbox_reject_code", severity::error},
            {"unknown_relay_recipient_reject_code", severity::error},
            {"reject_code", severity::warning},
            {"maps_rbl_reject_code", severity::warning},
            {"access_map_reject_code", severity::warning},
        }};
        for (const auto& code : codes) {
            const std::string_view name = code.first;
            const severity level = code.second;
            auto check = [&](const std::string& value, const std::string& place, const service* s) {
                if (value.empty() || value.front() != '4') return;
                const std::string right = std::string(default_value(name));
                add("reject_code_4xx", level, place + " " + std::string(name),
                    std::string(name) + " = " + value + ": the refusal is temporary, so the client retries for days; " +
                        "a relay that passed on forged mail gives up in the end and bounces it to the forged sender, " +
                        "and nothing is ever refused for good (Postfix's default is " + right + ")",
                    {s ? set_service(*s, name, right) : set_main(name, right)},
                    "postconf(5) " + std::string(name) + "; BACKSCATTER_README");
            };
            check(get(name), "main.cf", nullptr);
            for (const service* s : receivers_)
                if (overridden(*s, name)) check(get(*s, name), "master.cf " + s->key(), s);
        }
    }

    // postconf(5) soft_bounce: "changes 5xx reply codes into 4xx" and keeps bounces queued; a
    // safety net while testing, not a setting to keep: refused spam retries, and when it is
    // switched off the queue's accumulated bounces go out at once.
    void soft_bounce() {
        auto msg = std::string("soft_bounce = yes: every 5xx this server gives becomes a 4xx, so refused mail keeps "
                               "coming back, and mail that should bounce waits in the queue to be bounced all at once "
                               "when soft_bounce is switched off (it is meant for testing)");
        if (yes(get("soft_bounce"))) add("soft_bounce", severity::warning, "main.cf soft_bounce", msg, {set_main("soft_bounce", "no")}, "postconf(5) soft_bounce");
        for (const auto& s : in_.services.services)
            if (overridden(s, "soft_bounce") && yes(get(s, "soft_bounce")))
                add("soft_bounce", severity::warning, "master.cf " + s.key() + " soft_bounce", msg,
                    {"postconf -PX " + quoted(s.key() + "/soft_bounce")}, "postconf(5) soft_bounce");
    }

    // Recipient validation at SMTP time (BACKSCATTER_README, "How do I block backscatter mail to
    // random recipient addresses?"; LOCAL_RECIPIENT_README; postconf(5) local_recipient_maps,
    // relay_recipient_maps, smtpd_reject_unlisted_recipient, receive_override_options).
    void recipient_validation() {
        const bool verifies = [&] {
            for (auto name : {"smtpd_relay_restrictions", "smtpd_recipient_restrictions"})
                if (has_item(list(get(name)), "reject_unverified_recipient")) return true;
            return false;
        }();
        if (!list(get("mydestination")).empty() && list(get("local_recipient_maps")).empty())
            add("local_recipient_maps_empty", severity::error, "main.cf local_recipient_maps",
                "local_recipient_maps is empty: mail to any address in mydestination (" + get("mydestination") +
                    ") is accepted and then bounced by local(8) when the user does not exist, to a sender that is "
                    "usually forged",
                {set_main("local_recipient_maps", "proxy:unix:passwd.byname $alias_maps")},
                "postconf(5) local_recipient_maps; LOCAL_RECIPIENT_README; BACKSCATTER_README");
        if (!list(get("relay_domains")).empty() && list(get("relay_recipient_maps")).empty() && !verifies)
            add("relay_recipients_unvalidated", severity::error, "main.cf relay_recipient_maps",
                "relay_domains (" + get("relay_domains") +
                    ") has no relay_recipient_maps: every address in those domains is accepted, and what the "
                    "final server refuses is bounced from here (postconf(5): \"become a source of backscatter\")",
                {"# list every valid address as \"user@domain x\" in /etc/postfix/relay_recipients, then:",
                 "postmap /etc/postfix/relay_recipients",
                 set_main("relay_recipient_maps", "hash:/etc/postfix/relay_recipients")},
                "postconf(5) relay_recipient_maps; BACKSCATTER_README");
        if (!list(get("virtual_mailbox_domains")).empty() && list(get("virtual_mailbox_maps")).empty())
            add("virtual_mailbox_unvalidated", severity::error, "main.cf virtual_mailbox_maps",
                "virtual_mailbox_domains is set but virtual_mailbox_maps is empty: the SMTP server cannot tell a "
                "mailbox from a made-up address in those domains and accepts both",
                {set_main("virtual_mailbox_maps", "hash:/etc/postfix/vmailbox")},
                "postconf(5) smtpd_reject_unlisted_recipient, virtual_mailbox_maps");
        for (const service* s : receivers_) {
            // Debian's submission template: smtpd_reject_unlisted_recipient=no and
            // "permit_sasl_authenticated,reject": only our own users, whose mistakes bounce to them.
            if (authenticated_only(*s)) continue;
            const bool ov = overridden(*s, "smtpd_reject_unlisted_recipient");
            if (!yes(get(*s, "smtpd_reject_unlisted_recipient")) &&
                !has_item(list(get(*s, "smtpd_recipient_restrictions")), "reject_unlisted_recipient") &&
                !has_item(list(get(*s, "smtpd_relay_restrictions")), "reject_unlisted_recipient"))
                add("unlisted_recipient_accepted", severity::error, where(*s, ov) + " smtpd_reject_unlisted_recipient",
                    "smtpd_reject_unlisted_recipient = no and no reject_unlisted_recipient: mail to unknown "
                    "recipients is accepted and bounced later",
                    {ov ? "postconf -PX " + quoted(s->key() + "/smtpd_reject_unlisted_recipient")
                        : set_main("smtpd_reject_unlisted_recipient", "yes")},
                    "postconf(5) smtpd_reject_unlisted_recipient");
            const bool rov = overridden(*s, "receive_override_options");
            if (contains(get(*s, "receive_override_options"), "no_unknown_recipient_checks")) {
                auto items = list(get(*s, "receive_override_options"));
                items.erase(std::remove(items.begin(), items.end(), "no_unknown_recipient_checks"), items.end());
                add("unknown_recipient_checks_off", severity::error, where(*s, rov) + " receive_override_options",
                    "receive_override_options has no_unknown_recipient_checks on " + s->key() +
                        ", which receives mail from outside: unknown recipients are accepted and bounced later "
                        "(it belongs only on the reinjection listener after a content filter)",
                    {rov ? set_service(*s, "receive_override_options", join(items))
                         : set_main("receive_override_options", join(items))},
                    "postconf(5) receive_override_options; FILTER_README");
            }
        }
    }

    // A service whose relay and recipient restrictions refuse everyone who is not ours (only
    // permit_sasl_authenticated, permit_mynetworks or a client certificate before a "reject").
    bool authenticated_only(const service& s) const {
        auto items = list(get(s, "smtpd_relay_restrictions"));
        const auto rcpt = list(get(s, "smtpd_recipient_restrictions"));
        items.insert(items.end(), rcpt.begin(), rcpt.end());
        for (const auto& i : items) {
            if (i == "reject") return true;
            if (i != "permit_sasl_authenticated" && i != "permit_mynetworks" && i != "permit_tls_clientcerts" &&
                i != "permit_tls_all_clientcerts")
                return false;
        }
        return false;
    }

    // postconf(5) luser_relay: a catch-all for unknown local(8) recipients; LOCAL_RECIPIENT_README
    // asks for an empty local_recipient_maps with it, which makes every made-up address
    // accepted; whatever it forwards to may then refuse and we bounce.
    void luser_relay() {
        const std::string v = get("luser_relay");
        if (v.empty()) return;
        add("luser_relay", severity::warning, "main.cf luser_relay",
            "luser_relay = " + v +
                ": every unknown local address is delivered to the catch-all instead of being refused; spam to "
                "made-up addresses is accepted, and if the catch-all forwards or fails, it is bounced from here",
            {"postconf -X luser_relay"}, "postconf(5) luser_relay, local_recipient_maps; LOCAL_RECIPIENT_README");
    }

    // postconf(5) smtpd_relay_restrictions: "at least one of reject, defer, defer_if_permit,
    // reject_unauth_destination or defer_unauth_destination", relay restrictions first, then
    // recipient restrictions; a bare permit before it makes an open relay (SMTPD_ACCESS_README).
    void unauth_destination() {
        static constexpr std::array<std::string_view, 5> guards{"reject_unauth_destination", "defer_unauth_destination",
                                                                "reject", "defer", "defer_if_permit"};
        for (const service* s : receivers_) {
            const bool ov = overridden(*s, "smtpd_relay_restrictions") || overridden(*s, "smtpd_recipient_restrictions");
            auto items = list(get(*s, "smtpd_relay_restrictions"));
            auto rcpt = list(get(*s, "smtpd_recipient_restrictions"));
            items.insert(items.end(), rcpt.begin(), rcpt.end());
            bool guarded = false, open = false;
            for (const auto& i : items) {
                if (std::find(guards.begin(), guards.end(), i) != guards.end()) {
                    guarded = true;
                    break;
                }
                if (i == "permit") {
                    open = true;
                    break;
                }
            }
            if (guarded) continue;
            const std::string right = "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination";
            add("reject_unauth_destination_missing", severity::error, where(*s, ov) + " smtpd_relay_restrictions",
                open ? "a bare permit comes before reject_unauth_destination: this server relays for anyone (an "
                       "open relay), and relayed spam bounces from here"
                     : "neither smtpd_relay_restrictions nor smtpd_recipient_restrictions has "
                       "reject_unauth_destination (or defer_unauth_destination): Postfix refuses all mail, or "
                       "relays for anyone",
                {ov ? set_service(*s, "smtpd_relay_restrictions", right) : set_main("smtpd_relay_restrictions", right)},
                "postconf(5) smtpd_relay_restrictions; SMTPD_ACCESS_README");
        }
    }

    // Forwarding (issue 16): an alias to an outside mailbox sends every spam on with its forged
    // envelope sender; the outside provider checks SPF against our address and refuses, and
    // our Postfix bounces the refusal to the forged sender. Sender rewriting (SRS, postsrsd's
    // documented lines for Debian's postsrsd 1.10) makes the forwarded envelope sender ours.
    bool has_srs() const {
        const std::string maps = lower(get("sender_canonical_maps") + " " + get("canonical_maps"));
        return contains(maps, "srs") || contains(maps, ":10001");
    }
    std::set<std::string> our_domains() const {
        std::set<std::string> d{"localhost"};
        d.insert(lower(get("myhostname")));
        for (auto name : {"mydestination", "virtual_alias_domains", "virtual_mailbox_domains", "relay_domains"})
            for (const auto& i : list(get(name)))
                if (!contains(i, ":") && !contains(i, "/")) d.insert(lower(i));
        return d;
    }
    void forwarding() {
        if (has_srs()) return;
        const std::vector<std::string> fix{
            "apt-get install postsrsd",
            set_main("sender_canonical_maps", "tcp:localhost:10001"),
            set_main("sender_canonical_classes", "envelope_sender"),
            set_main("recipient_canonical_maps", "tcp:localhost:10002"),
            set_main("recipient_canonical_classes", "envelope_recipient, header_recipient")};
        const auto ours = our_domains();
        std::vector<std::string> outside;
        std::size_t count = 0;
        for (const auto& rhs : in_.forward_targets) {
            for (const auto& a : list(rhs)) {
                if (a.empty() || a.front() == '|' || a.front() == '/' || a.front() == ':' || a.front() == '"') continue;
                const std::size_t at = a.rfind('@');
                if (at == std::string::npos) continue;  // a local name
                std::string dom = lower(a.substr(at + 1));
                while (!dom.empty() && (dom.back() == '>' || dom.back() == '.')) dom.pop_back();
                if (ours.count(dom)) continue;
                ++count;
                if (outside.size() < 5) outside.push_back(a);
            }
        }
        if (!in_.tables_read && !list(get("virtual_alias_maps")).empty())
            add("forwarding_unchecked", severity::info, "main.cf virtual_alias_maps",
                "virtual_alias_maps could not be read here (only hash, btree, lmdb, cdb, dbm and sdbm tables are), "
                "and there is no sender rewriting (SRS): if an alias forwards to an outside domain, spam with a "
                "forged sender is forwarded, refused there, and bounced from here to the forged sender",
                fix, "issue 16; postsrsd README");
        if (count == 0) return;
        add("forwarding_without_srs", severity::warning, "main.cf sender_canonical_maps",
            std::to_string(count) + " alias target(s) outside our domains (" + join(outside) + (count > 5 ? ", ..." : "") +
                ") and no sender rewriting (SRS): forwarded spam keeps its forged sender, is refused by the outside "
                "provider (SPF), and the refusal is bounced from here to the forged sender",
            fix, "issue 16; postsrsd README; BACKSCATTER_README");
    }

    // ADDRESS_VERIFICATION_README: "Sender address verification may cause your site to be
    // blacklisted"; backscatterer.org lists servers that send callouts to its traps.
    void sender_callouts() {
        auto check = [&](const std::string& value, std::string_view name, const service* s) {
            auto items = list(value);
            if (!has_item(items, "reject_unverified_sender")) return;
            items.erase(std::remove(items.begin(), items.end(), "reject_unverified_sender"), items.end());
            add("sender_callouts", severity::warning, (s ? "master.cf " + s->key() : std::string("main.cf")) + " " + std::string(name),
                "reject_unverified_sender probes the (often forged) sender's server for every message: these "
                "callouts reach spam traps, and ips.backscatterer.org lists servers that send them",
                {s ? set_service(*s, name, join_restrictions(items)) : set_main(name, join_restrictions(items))},
                "ADDRESS_VERIFICATION_README; postconf(5) reject_unverified_sender");
        };
        for (auto name : restriction_lists) {
            check(get(name), name, nullptr);
            for (const service* s : receivers_)
                if (overridden(*s, name)) check(get(*s, name), name, s);
        }
    }

    // postconf(5) notify_classes: "bounce" mails the postmaster a copy of every bounce and a
    // transcript of every refused SMTP session, "2bounce" every double bounce, "delay" every
    // delayed message: in a storm, one more message per spam; forwarded outside, they bounce
    // around.
    void notify_classes() {
        const auto items = list(lower(get("notify_classes")));
        const auto ours = our_domains();
        auto outside = [&](const std::string& rcpt) {
            const std::size_t at = rcpt.rfind('@');
            return at != std::string::npos && !ours.count(lower(rcpt.substr(at + 1)));
        };
        std::vector<std::string> noisy;
        bool leaves = false;
        for (auto [cls, rcpt] : {std::pair{"bounce", "bounce_notice_recipient"}, std::pair{"2bounce", "2bounce_notice_recipient"},
                                 std::pair{"delay", "delay_notice_recipient"}})
            if (has_item(items, cls)) {
                noisy.emplace_back(cls);
                if (outside(get(rcpt))) leaves = true;
            }
        if (noisy.empty()) return;
        add("notify_classes", leaves ? severity::warning : severity::info, "main.cf notify_classes",
            "notify_classes has " + join(noisy) +
                ": the postmaster gets a copy of every bounce (and of every refused session with bounce), one more "
                "message per spam in a storm" +
                (leaves ? std::string(", and the notices go to an outside address, where they can bounce again") : std::string()),
            {set_main("notify_classes", "resource, software")}, "postconf(5) notify_classes");
    }

    // FILTER_README, "Simple content filter example": a pipe(8) filter that exits with anything
    // but 0 or EX_TEMPFAIL (75) makes Postfix bounce the message to its sender, after the queue.
    void bouncing_content_filter() {
        auto check = [&](const std::string& cf, const std::string& place) {
            if (cf.empty()) return;
            const auto d = parse_filter(cf);
            for (const auto& s : in_.services.services)
                if (s.name == d.transport && s.type == "unix" && s.command == "pipe")
                    add("content_filter_pipe", severity::warning, place + " content_filter",
                        "content_filter " + cf + " is a pipe(8) command: when it exits with anything but 0 or "
                            "EX_TEMPFAIL (75), Postfix bounces the message to its (often forged) sender after the queue",
                        {"# make the command exit 75 (EX_TEMPFAIL) or 0 and discard, never reject; or an SMTP filter "
                         "that answers 5xx only to null senders"},
                        "FILTER_README (simple content filter); pipe(8)");
        };
        check(get("content_filter"), "main.cf");
        for (const auto& s : in_.services.services)
            if (overridden(s, "content_filter")) check(get(s, "content_filter"), "master.cf " + s.key());
    }

    // --- ndrguard's wiring (deploy/postfix; FILTER_README, SMTPD_PROXY_README) ------------

    // How mail reaches ndrguard through a receiving service.
    struct route {
        target via = target::none;
        bool content_filter = false;  // after queue (else before queue, or none)
        std::string filter;           // the content_filter value
    };
    route route_of(const service& s) const {
        route r;
        if (auto t = points_at(get(s, "smtpd_proxy_filter")); t != target::none) r.via = t;
        else if (const std::string cf = get(s, "content_filter"); filter_target(cf) != target::none) {
            r.via = filter_target(cf);
            r.content_filter = true;
            r.filter = cf;
        }
        return r;
    }

    void wiring() {
        const std::string main_cf = get("content_filter");
        const bool main_to_us = filter_target(main_cf) != target::none;
        bool any = main_to_us;
        for (const service* s : receivers_)
            if (route_of(*s).via != target::none) any = true;
        for (const auto& s : in_.services.services)
            if (s.command == "pickup" && filter_target(get(s, "content_filter")) != target::none) any = true;
        if (!any) {
            std::vector<std::string> fix;
            if (in_.ndrguard.before_queue) {
                const service* smtp = find_service("smtp", "inet");
                const service target_svc = smtp ? *smtp : service{"smtp", "inet", "n", "-", "y", "-", "-", "smtpd", {}, {}};
                fix = {set_service(target_svc, "smtpd_proxy_filter", in_.ndrguard.listen),
                       set_service(target_svc, "smtpd_proxy_options", "speed_adjust")};
            } else {
                fix = {set_main("content_filter", filter_line(false)), set_main("receive_override_options", "no_address_mappings")};
            }
            add("ndrguard_not_wired", severity::error, "main.cf content_filter",
                "no content_filter or smtpd_proxy_filter leads to ndrguard (" + in_.ndrguard.listen +
                    "): it sees no mail, the sent log stays empty, and no bounce is checked",
                fix, "deploy/postfix/main.cf.snippet, before-queue.snippet; FILTER_README; SMTPD_PROXY_README");
            return;
        }
        // ndrguard's mode must match the hook: in before-queue mode it answers 5xx to anyone,
        // which after the queue makes Postfix bounce (DESIGN.md, "Postfix facts").
        const auto cf_check = [&](const std::string& cf, const std::string& place, const service* s) {
            if (filter_target(cf) == target::none) return;
            if (in_.ndrguard.before_queue && filter_target(cf) == target::inbound)
                add("mode_mismatch", severity::error, place + " content_filter",
                    "ndrguard runs with mode = before_queue but this content_filter hands it mail after the queue: "
                    "its 5xx to a non-null sender makes Postfix bounce the message (backscatter from us)",
                    {"# ndrguard.conf: mode = after_queue (or use smtpd_proxy_filter instead of content_filter)"},
                    "deploy/postfix/before-queue.snippet; FILTER_README");
            transport_checks(cf, place);
            (void)s;
        };
        cf_check(main_cf, "main.cf", nullptr);
        for (const auto& s : in_.services.services)
            if (overridden(s, "content_filter")) cf_check(get(s, "content_filter"), "master.cf " + s.key(), &s);
        reinjection_checks();
        receiver_checks(main_to_us);
    }

    // The content_filter's transport: an smtp(8) client in master.cf that sends XFORWARD
    // (FILTER_README "advanced content filter"; XFORWARD_README), as master.cf.snippet part 1.
    void transport_checks(const std::string& cf, const std::string& place) {
        const auto d = parse_filter(cf);
        const service* t = find_service(d.transport, "unix");
        const std::string entry = d.transport + "  unix  -       -       n       -       10      smtp";
        if (!t || (t->command != "smtp" && t->command != "lmtp")) {
            add("filter_transport_missing", severity::error, place + " content_filter",
                "content_filter names the transport \"" + d.transport +
                    "\", which is not an smtp(8) service in master.cf: mail waits in the queue (\"mail transport "
                    "unavailable\") and never reaches ndrguard",
                {"postconf -M " + quoted(d.transport + "/unix=" + entry),
                 "postconf -P " + quoted(d.transport + "/unix/smtp_send_xforward_command=yes"),
                 "postconf -P " + quoted(d.transport + "/unix/disable_mime_output_conversion=yes")},
                "deploy/postfix/master.cf.snippet (1); FILTER_README; master(5)");
            return;
        }
        if (!yes(get(*t, "smtp_send_xforward_command")))
            add("filter_transport_no_xforward", severity::error, "master.cf " + t->key(),
                "the transport to ndrguard does not send XFORWARD: ndrguard sees every message as coming from "
                "Postfix's own address, so inbound mail looks outbound (recorded in the sent log) or outbound mail "
                "looks inbound (missing from it)",
                {set_service(*t, "smtp_send_xforward_command", "yes")},
                "deploy/postfix/master.cf.snippet (1); XFORWARD_README; FILTER_README");
    }

    // The way back in (master.cf.snippet part 2, FILTER_README's 127.0.0.1:10026 smtpd).
    void reinjection_checks() {
        const std::string hop = in_.ndrguard.next_hop;
        if (!reinjection_) {
            const std::string key = hop + "/inet";
            add("reinjection_missing", severity::error, "master.cf",
                "no smtpd listens on ndrguard's next_hop (" + hop +
                    "): ndrguard cannot hand accepted mail back, answers 451, and every message stays queued",
                {"postconf -M " + quoted(key + "=" + hop + " inet n  -       n       -       10      smtpd"),
                 "postconf -P " + quoted(key + "/content_filter="),
                 "postconf -P " + quoted(key + "/receive_override_options=no_unknown_recipient_checks,no_header_body_checks,no_milters"),
                 "postconf -P " + quoted(key + "/smtpd_recipient_restrictions=permit_mynetworks,reject"),
                 "postconf -P " + quoted(key + "/mynetworks=127.0.0.0/8"),
                 "postconf -P " + quoted(key + "/smtpd_authorized_xforward_hosts=127.0.0.0/8")},
                "deploy/postfix/master.cf.snippet (2); FILTER_README");
            return;
        }
        const service& r = *reinjection_;
        const std::string place = "master.cf " + r.key();
        if (!get(r, "content_filter").empty())
            add("reinjection_filtered_again", severity::error, place + " content_filter",
                "the reinjection listener has content_filter = " + get(r, "content_filter") +
                    ": mail ndrguard hands back is sent to a filter again (to ndrguard: a loop; every message is "
                    "recorded and checked twice, or never delivered)",
                {set_service(r, "content_filter", "")}, "FILTER_README (\"-o content_filter=\"); deploy/postfix/master.cf.snippet (2)");
        if (!get(r, "smtpd_proxy_filter").empty())
            add("reinjection_filtered_again", severity::error, place + " smtpd_proxy_filter",
                "the reinjection listener has smtpd_proxy_filter = " + get(r, "smtpd_proxy_filter") +
                    ": mail ndrguard hands back goes through a before-queue filter again",
                {set_service(r, "smtpd_proxy_filter", "")}, "SMTPD_PROXY_README; deploy/postfix/master.cf.snippet (2)");
        const auto opts = list(get(r, "receive_override_options"));
        std::vector<std::string> missing;
        for (auto o : {"no_unknown_recipient_checks", "no_header_body_checks", "no_milters"})
            if (!has_item(opts, o)) missing.emplace_back(o);
        if (!missing.empty()) {
            bool checks = false;
            for (auto n : {"header_checks", "body_checks", "mime_header_checks", "nested_header_checks"})
                if (!get(r, n).empty()) checks = true;
            const bool hb = has_item(missing, "no_header_body_checks") && checks;
            add(hb ? "header_checks_after_queue" : "reinjection_override_options", severity::warning,
                place + " receive_override_options",
                "the reinjection listener lacks " + join(missing) +
                    (hb ? ": header/body checks run again after the queue, and a REJECT there refuses mail Postfix "
                          "has already accepted (a bounce if anything but ndrguard handed it over)"
                        : ": checks the public smtpd made already run again on the way back (twice the milters, "
                          "recipient lookups that can refuse accepted mail)"),
                {set_service(r, "receive_override_options", "no_unknown_recipient_checks,no_header_body_checks,no_milters")},
                "FILTER_README (advanced content filter); postconf(5) receive_override_options; BUILTIN_FILTER_README");
        }
        bool loopback = false;
        for (const auto& h : list(get(r, "smtpd_authorized_xforward_hosts")))
            if (h.rfind("127.", 0) == 0 || h.rfind("[::ffff:127.", 0) == 0) loopback = true;
        if (!loopback)
            add("reinjection_xforward_not_authorised", severity::warning, place + " smtpd_authorized_xforward_hosts",
                "the reinjection listener does not accept XFORWARD from ndrguard: Postfix's log shows every "
                "message as coming from localhost instead of the real client (and the backfill of the sent log "
                "from the log cannot tell outbound mail)",
                {set_service(r, "smtpd_authorized_xforward_hosts", "127.0.0.0/8")}, "XFORWARD_README; FILTER_README");
    }

    // Every other smtpd, and local submission: through ndrguard, in the right direction.
    void receiver_checks(bool main_to_us) {
        for (const service* s : receivers_) {
            const route r = route_of(*s);
            const bool submission = is_submission(*s, *this);
            if (r.via == target::none) {
                const std::string cf = get(*s, "content_filter");
                // A loopback listener (127.0.0.1:10025, as amavisd-new's reinjection) is most often
                // another filter's way back in: a warning, since mail there may have passed
                // ndrguard before that filter.
                const std::string addr = listen_address(*s);
                const bool loopback = s->type == "inet" && (addr.rfind("127.", 0) == 0 || addr.rfind("::1:", 0) == 0);
                add(submission ? "submission_bypasses_ndrguard" : "smtpd_bypasses_ndrguard",
                    loopback && !submission ? severity::warning : severity::error, "master.cf " + s->key(),
                    s->key() + (cf.empty() ? " hands its mail to no filter" : " hands its mail to " + cf + ", not ndrguard") +
                        (submission ? ": what users send through it is missing from the sent log, so the genuine "
                                      "bounces it causes are judged forged"
                                    : ": bounces received through it are never checked, and mail sent through it is "
                                      "missing from the sent log") +
                        (cf.empty() ? std::string() : std::string(" (unless that filter passes its mail on to ndrguard)")) +
                        (loopback && !submission ? std::string(" (a loopback listener: if another content filter "
                                                               "reinjects here, put ndrguard after it)")
                                                 : std::string()),
                    submission ? outbound_fix(*s) : std::vector<std::string>{set_service(*s, "content_filter", filter_line(false))},
                    "deploy/postfix/master.cf.snippet (3); FILTER_README");
                continue;
            }
            if (submission && r.via == target::inbound)
                add("submission_not_outbound", severity::warning, "master.cf " + s->key(),
                    s->key() + " hands its mail to ndrguard's inbound listener (" + in_.ndrguard.listen +
                        "): authenticated users outside our_networks look inbound, so their mail is not recorded "
                        "in the sent log",
                    outbound_fix(*s),
                    "deploy/postfix/master.cf.snippet (3)");
            // FILTER_README: no_address_mappings before the filter, or virtual aliases and
            // canonical maps are applied twice (the reinjection applies them again).
            if (r.content_filter && !has_item(list(get(*s, "receive_override_options")), "no_address_mappings")) {
                const bool rov = overridden(*s, "receive_override_options");
                auto items = list(get(*s, "receive_override_options"));
                items.emplace_back("no_address_mappings");
                add("address_mappings_twice", severity::warning, where(*s, rov) + " receive_override_options",
                    s->key() + " filters after the queue without no_address_mappings: virtual aliases and canonical "
                               "maps are applied before ndrguard and again on reinjection (duplicate deliveries, "
                               "an alias expanded twice)",
                    {rov ? set_service(*s, "receive_override_options", join(items))
                         : set_main("receive_override_options", join(items))},
                    "FILTER_README (advanced content filter); deploy/postfix/main.cf.snippet");
            }
        }
        // Local submission (sendmail(1) -> pickup(8)): after queue, main.cf's content_filter
        // covers it; before queue it needs its own (FILTER_README: "-o content_filter=" on pickup).
        if (!main_to_us)
            for (const auto& s : in_.services.services)
                if (s.command == "pickup" && filter_target(get(s, "content_filter")) == target::none)
                    add("local_submission_bypasses_ndrguard", severity::warning, "master.cf " + s.key(),
                        "mail sent on this host with sendmail(1) (webmail, scripts, cron) reaches no filter: it is "
                        "missing from the sent log, so bounces to it are judged forged",
                        [&] {
                            auto fix = outbound_fix(s);
                            fix.push_back(set_service(s, "receive_override_options", "no_address_mappings"));
                            return fix;
                        }(),
                        "FILTER_README; pickup(8)");
    }

    // SMTPD_POLICY_README: check_policy_service after reject_unauth_destination; issue 17: ndrguard's
    // policy service before postgrey's, so that storm bounces get 550 instead of a greylisting
    // 450 that makes them come back. Greylisting (postgrey's README) before the checks that
    // answer 5xx keeps spam that would be refused for good coming back.
    void policy_order() {
        static constexpr std::array<std::string_view, 17> hard{
            "reject_rbl_client", "reject_rhsbl_client", "reject_rhsbl_sender", "reject_rhsbl_helo",
            "reject_rhsbl_reverse_client", "reject_rhsbl_recipient", "reject_unknown_sender_domain",
            "reject_unknown_recipient_domain", "reject_non_fqdn_sender", "reject_non_fqdn_recipient",
            "reject_non_fqdn_helo_hostname", "reject_invalid_helo_hostname", "reject_unknown_helo_hostname",
            "reject_unknown_client_hostname", "reject_unknown_reverse_client_hostname", "reject_unlisted_recipient",
            "reject_unauth_pipelining"};
        const std::string ours = normal_endpoint(in_.ndrguard.policy_service);
        auto is_postgrey = [](const std::string& arg) {
            const std::string a = lower(arg);
            return contains(a, "postgrey") || contains(a, ":10023");
        };
        auto check = [&](const service* s) {
            const bool ov = s && (overridden(*s, "smtpd_recipient_restrictions") || overridden(*s, "smtpd_relay_restrictions"));
            if (s && !ov) return;
            auto relay = list(s ? get(*s, "smtpd_relay_restrictions") : get("smtpd_relay_restrictions"));
            auto rcpt = list(s ? get(*s, "smtpd_recipient_restrictions") : get("smtpd_recipient_restrictions"));
            std::vector<std::string> all = relay;
            all.insert(all.end(), rcpt.begin(), rcpt.end());
            std::ptrdiff_t guard = -1, policy = -1, grey = -1, last_hard = -1;
            for (std::size_t i = 0; i < all.size(); ++i) {
                const auto p = static_cast<std::ptrdiff_t>(i);
                if ((all[i] == "reject_unauth_destination" || all[i] == "defer_unauth_destination") && guard < 0) guard = p;
                if (all[i] == "check_policy_service" && i + 1 < all.size()) {
                    if (normal_endpoint(all[i + 1]) == ours && policy < 0) policy = p;
                    else if (is_postgrey(all[i + 1]) && grey < 0) grey = p;
                }
                if (std::find(hard.begin(), hard.end(), all[i]) != hard.end()) last_hard = p;
            }
            if (policy < 0 && grey < 0) return;
            const std::string place = (s ? "master.cf " + s->key() : std::string("main.cf")) + " smtpd_recipient_restrictions";
            const auto fix = [&] {
                const std::string v = join_restrictions(reordered(rcpt, ours, is_postgrey));
                return s ? set_service(*s, "smtpd_recipient_restrictions", v) : set_main("smtpd_recipient_restrictions", v);
            };
            if (policy >= 0 && (guard < 0 || policy < guard))
                add("policy_before_unauth_destination", severity::warning, place,
                    "ndrguard's check_policy_service " + in_.ndrguard.policy_service +
                        " comes before reject_unauth_destination: relay attempts reach the policy service (and a "
                        "policy answer other than DUNNO could open a relay)",
                    {fix()}, "SMTPD_POLICY_README; issue 17");
            if (policy >= 0 && grey >= 0 && grey < policy)
                add("policy_after_greylisting", severity::warning, place,
                    "postgrey's check_policy_service comes before ndrguard's: storm bounces get greylisting's 450 and "
                    "come back, instead of ndrguard's 550",
                    {fix()}, "issue 17; SMTPD_POLICY_README");
            if (grey >= 0 && last_hard > grey)
                add("greylisting_before_rejects", severity::warning, place,
                    "postgrey's check_policy_service comes before checks that refuse with 5xx: spam they would "
                    "refuse for good is greylisted (450) first and comes back",
                    {fix()}, "postgrey(8); SMTPD_ACCESS_README; issue 16");
        };
        check(nullptr);
        for (const service* s : receivers_) check(s);
    }

    // The recipient restrictions in the order the rules above ask for: ndrguard's policy
    // service right after reject_unauth_destination, postgrey's after the last 5xx check (before
    // a final permit).
    template <class Grey>
    static std::vector<std::string> reordered(std::vector<std::string> items, const std::string& ours, Grey is_postgrey) {
        std::vector<std::string> policy, grey, rest;
        for (std::size_t i = 0; i < items.size(); ++i) {
            if (items[i] == "check_policy_service" && i + 1 < items.size()) {
                if (normal_endpoint(items[i + 1]) == ours) {
                    policy = {items[i], items[i + 1]};
                    ++i;
                    continue;
                }
                if (is_postgrey(items[i + 1])) {
                    grey = {items[i], items[i + 1]};
                    ++i;
                    continue;
                }
            }
            rest.push_back(items[i]);
        }
        auto at = std::find(rest.begin(), rest.end(), "reject_unauth_destination");
        if (at == rest.end()) at = std::find(rest.begin(), rest.end(), "defer_unauth_destination");
        auto pos = at == rest.end() ? rest.begin() : at + 1;
        pos = rest.insert(pos, policy.begin(), policy.end());
        std::size_t end = rest.size();
        if (end > 0 && rest[end - 1] == "permit") --end;
        rest.insert(rest.begin() + static_cast<std::ptrdiff_t>(end), grey.begin(), grey.end());
        return rest;
    }
};

}  // namespace

const std::vector<std::string_view>& parameters_used() {
    static const std::vector<std::string_view> names = [] {
        std::vector<std::string_view> n;
        for (const auto& [k, v] : defaults) n.push_back(k);
        return n;
    }();
    return names;
}

std::string_view default_value(std::string_view name) {
    for (const auto& [k, v] : defaults)
        if (k == name) return v;
    return {};
}

std::vector<finding> audit(const input& in, const limits& lim) { return auditor(in, lim).run(); }

}  // namespace ndrguard::doctor
