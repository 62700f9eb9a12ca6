// `ndrguard doctor`'s core (doctor/), pure: tables. The postconf texts are written here in the
// forms Postfix 3.7.11's postconf(1) printed them for this test's author (`postconf -n`, `-M`,
// `-P` of a private configuration directory; see tests/doctor/e2e_doctor.py for the real runs)
// and in master.cf's own form (master(5): continuation lines start with white space).
// The base configuration is ndrguard's deploy/postfix snippets applied to a small MX; each row
// breaks one thing and names the finding that must appear.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "ndrguard/doctor/audit.hpp"
#include "ndrguard/doctor/postconf.hpp"

namespace d = ndrguard::doctor;

namespace {

const char* const base_main = R"(myhostname = mx.example.org
mydestination = example.org, localhost
content_filter = ndrguard:[127.0.0.1]:10025
receive_override_options = no_address_mappings
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
smtpd_recipient_restrictions = reject_unlisted_recipient, check_policy_service inet:127.0.0.1:10040,
    reject_rbl_client zen.spamhaus.org, check_policy_service inet:127.0.0.1:10023
)";

// master.cf, by service key, in the order written.
const std::vector<std::pair<std::string, std::string>> base_master = {
    {"smtp/inet", "smtp      inet  n       -       y       -       -       smtpd\n"},
    {"submission/inet", "submission inet n       -       y       -       -       smtpd\n"
                        "  -o syslog_name=postfix/submission\n"
                        "  -o smtpd_sasl_auth_enable=yes\n"
                        "  -o content_filter=ndrguard:[127.0.0.1]:10027\n"},
    {"pickup/unix", "pickup    unix  n       -       y       60      1       pickup\n"},
    {"ndrguard/unix", "ndrguard  unix  -       -       n       -       10      smtp\n"
                      "    -o smtp_send_xforward_command=yes\n"
                      "    -o disable_mime_output_conversion=yes\n"},
    {"127.0.0.1:10026/inet", "127.0.0.1:10026 inet n  -       n       -       10      smtpd\n"
                             "    -o syslog_name=postfix/reinject\n"
                             "    -o content_filter=\n"
                             "    -o receive_override_options=no_unknown_recipient_checks,no_header_body_checks,no_milters\n"
                             "    -o smtpd_recipient_restrictions=permit_mynetworks,reject\n"
                             "    -o mynetworks=127.0.0.0/8\n"
                             "    -o smtpd_authorized_xforward_hosts=127.0.0.0/8\n"},
};

struct row {
    const char* what;
    std::string main_extra;                                    // appended: the last setting wins
    std::vector<std::pair<std::string, std::string>> master;  // replaces a service ("" removes), or adds
    std::vector<std::string> expect;                           // finding ids that must be there
    std::vector<std::string> absent = {};                      // and ids that must not
    bool before_queue = false;
    std::vector<std::string> targets = {};
    bool tables_read = false;
};

d::input make(const row& r) {
    d::input in;
    in.main = d::parse_parameters(std::string(base_main) + r.main_extra);
    auto master = base_master;
    for (const auto& [key, text] : r.master) {
        auto it = std::find_if(master.begin(), master.end(), [&](const auto& p) { return p.first == key; });
        if (it == master.end()) master.emplace_back(key, text);
        else it->second = text;
    }
    std::string m;
    for (const auto& [key, text] : master) m += text;
    in.services = d::parse_master(m);
    in.ndrguard.outbound_listen = "127.0.0.1:10027";
    in.ndrguard.before_queue = r.before_queue;
    in.forward_targets = r.targets;
    in.tables_read = r.tables_read;
    return in;
}

std::vector<std::string> ids(const std::vector<d::finding>& f) {
    std::vector<std::string> out;
    for (const auto& x : f) out.push_back(x.id);
    return out;
}

const d::finding* find(const std::vector<d::finding>& f, const std::string& id) {
    for (const auto& x : f)
        if (x.id == id) return &x;
    return nullptr;
}

std::string show(const std::vector<d::finding>& f) {
    std::string s;
    for (const auto& x : f) s += std::string(d::to_string(x.level)) + " " + x.id + " [" + x.where + "]\n";
    return s;
}

}  // namespace

TEST_CASE("the deploy snippets on a small MX: nothing to say") {
    const auto f = d::audit(make({"base", "", {}, {}}));
    INFO(show(f));
    CHECK(f.empty());
}

TEST_CASE("one broken setting, one finding") {
    const std::string smtp = "smtp      inet  n       -       y       -       -       smtpd\n";
    // Before queue, submission still filters after the queue (deploy/postfix/master.cf.snippet 3).
    const std::string submission_bq = "submission inet n - y - - smtpd\n  -o smtpd_sasl_auth_enable=yes\n"
                                      "  -o content_filter=ndrguard:[127.0.0.1]:10027\n  -o receive_override_options=no_address_mappings\n";
    const std::string reinject_head = "127.0.0.1:10026 inet n  -       n       -       10      smtpd\n";
    const std::vector<row> rows = {
        {"450 for unknown local users", "unknown_local_recipient_reject_code = 450\n", {}, {"reject_code_4xx"}},
        {"450 for RBL hits", "maps_rbl_reject_code = 450\n", {}, {"reject_code_4xx"}},
        {"a 4xx override on one smtpd", "", {{"smtp/inet", smtp + "  -o unknown_virtual_alias_reject_code=450\n"}}, {"reject_code_4xx"}},
        {"soft_bounce", "soft_bounce = yes\n", {}, {"soft_bounce"}},
        {"no local recipient table", "local_recipient_maps =\n", {}, {"local_recipient_maps_empty"}},
        {"relay domains, no recipients", "relay_domains = example.net\n", {}, {"relay_recipients_unvalidated"}},
        {"relay domains with recipients", "relay_domains = example.net\nrelay_recipient_maps = hash:/etc/postfix/relay_recipients\n",
         {}, {}, {"relay_recipients_unvalidated"}},
        {"relay domains, address verification", "relay_domains = example.net\n"
         "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination, reject_unverified_recipient\n",
         {}, {}, {"relay_recipients_unvalidated"}},
        {"virtual mailbox domains, no mailboxes", "virtual_mailbox_domains = example.com\n", {}, {"virtual_mailbox_unvalidated"}},
        {"unlisted recipients accepted", "smtpd_reject_unlisted_recipient = no\nsmtpd_recipient_restrictions = permit_mynetworks\n",
         {}, {"unlisted_recipient_accepted"}},
        {"unlisted off, but the restriction is there", "smtpd_reject_unlisted_recipient = no\n", {}, {}, {"unlisted_recipient_accepted"}},
        {"Debian's submission template: authenticated users only", "",
         {{"submission/inet", "submission inet n - y - - smtpd\n  -o smtpd_sasl_auth_enable=yes\n"
                              "  -o smtpd_reject_unlisted_recipient=no\n  -o smtpd_relay_restrictions=\n"
                              "  -o smtpd_recipient_restrictions=permit_sasl_authenticated,reject\n"
                              "  -o content_filter=ndrguard:[127.0.0.1]:10027\n"}},
         {}, {"unlisted_recipient_accepted"}},
        {"the same without the final reject", "",
         {{"submission/inet", "submission inet n - y - - smtpd\n  -o smtpd_sasl_auth_enable=yes\n"
                              "  -o smtpd_reject_unlisted_recipient=no\n"
                              "  -o smtpd_recipient_restrictions=permit_sasl_authenticated\n"
                              "  -o content_filter=ndrguard:[127.0.0.1]:10027\n"}},
         {"unlisted_recipient_accepted"}},
        {"no recipient checks on the public smtpd", "",
         {{"smtp/inet", smtp + "  -o receive_override_options=no_unknown_recipient_checks,no_address_mappings\n"}},
         {"unknown_recipient_checks_off"}},
        {"catch-all", "luser_relay = catchall\n", {}, {"luser_relay"}},
        {"no reject_unauth_destination", "smtpd_relay_restrictions = permit_mynetworks\n", {}, {"reject_unauth_destination_missing"}},
        {"an open relay", "smtpd_relay_restrictions = permit_mynetworks, permit, reject_unauth_destination\n", {},
         {"reject_unauth_destination_missing"}},
        {"Postfix's default relay restrictions (defer_unauth_destination)",
         "smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination\n", {}, {},
         {"reject_unauth_destination_missing"}},
        {"forwarding outside, no SRS", "", {}, {"forwarding_without_srs"}, {}, false,
         {"bob@mail.example.net", "alice, carol@example.org", "|/usr/bin/procmail"}, true},
        {"forwarding inside only", "", {}, {}, {"forwarding_without_srs"}, false, {"alice, carol@example.org", "root@localhost"}, true},
        {"forwarding outside with postsrsd", "sender_canonical_maps = tcp:localhost:10001\n", {}, {}, {"forwarding_without_srs"}, false,
         {"bob@mail.example.net"}, true},
        {"aliases not readable", "virtual_alias_maps = pgsql:/etc/postfix/virtual.cf\n", {}, {"forwarding_unchecked"}},
        {"sender callouts", "smtpd_sender_restrictions = reject_non_fqdn_sender, reject_unverified_sender\n", {}, {"sender_callouts"}},
        {"bounce notices to the postmaster", "notify_classes = bounce, resource, software\n", {}, {"notify_classes"}},
        {"a pipe content filter", "content_filter = filter:dummy\n",
         {{"filter/unix", "filter    unix  -       n       n       -       10      pipe\n"
                          "  flags=Rq user=filter argv=/usr/local/bin/filter -f ${sender} -- ${recipient}\n"}},
         {"content_filter_pipe", "smtpd_bypasses_ndrguard"}},
        {"ndrguard nowhere", "content_filter =\n",
         {{"submission/inet", "submission inet n - y - - smtpd\n  -o smtpd_sasl_auth_enable=yes\n"}}, {"ndrguard_not_wired"}},
        {"before-queue ndrguard behind content_filter", "", {}, {"mode_mismatch"}, {}, true},
        {"a transport that is not there", "content_filter = ndrguard2:[127.0.0.1]:10025\n", {}, {"filter_transport_missing"}},
        {"no XFORWARD to ndrguard", "", {{"ndrguard/unix", "ndrguard  unix  -       -       n       -       10      smtp\n"}},
         {"filter_transport_no_xforward"}},
        {"no reinjection listener", "", {{"127.0.0.1:10026/inet", ""}}, {"reinjection_missing"}},
        {"reinjection filtered again", "",
         {{"127.0.0.1:10026/inet", reinject_head + "    -o receive_override_options=no_unknown_recipient_checks,no_header_body_checks,no_milters\n"
                                   "    -o smtpd_authorized_xforward_hosts=127.0.0.0/8\n"}},
         {"reinjection_filtered_again"}},
        {"reinjection without override options", "",
         {{"127.0.0.1:10026/inet", reinject_head + "    -o content_filter=\n    -o smtpd_authorized_xforward_hosts=127.0.0.0/8\n"}},
         {"reinjection_override_options"}, {"header_checks_after_queue"}},
        {"header checks after the queue", "header_checks = regexp:/etc/postfix/header_checks\n",
         {{"127.0.0.1:10026/inet", reinject_head + "    -o content_filter=\n    -o smtpd_authorized_xforward_hosts=127.0.0.0/8\n"}},
         {"header_checks_after_queue"}},
        {"reinjection without XFORWARD", "",
         {{"127.0.0.1:10026/inet", reinject_head + "    -o content_filter=\n"
                                   "    -o receive_override_options=no_unknown_recipient_checks,no_header_body_checks,no_milters\n"}},
         {"reinjection_xforward_not_authorised"}},
        {"submission past ndrguard", "",
         {{"submission/inet", "submission inet n - y - - smtpd\n  -o smtpd_sasl_auth_enable=yes\n  -o content_filter=\n"}},
         {"submission_bypasses_ndrguard"}},
        {"smtps past ndrguard, by name", "", {{"smtps/inet", "smtps inet n - y - - smtpd\n  -o content_filter=\n"}},
         {"submission_bypasses_ndrguard"}},
        {"submission to the inbound listener", "",
         {{"submission/inet", "submission inet n - y - - smtpd\n  -o smtpd_sasl_auth_enable=yes\n"}}, {"submission_not_outbound"}},
        {"a second smtpd past ndrguard", "", {{"2525/inet", "2525 inet n - y - - smtpd\n  -o content_filter=\n"}},
         {"smtpd_bypasses_ndrguard"}},
        {"another filter's loopback reinjection listener", "",
         {{"127.0.0.1:10025/inet", "127.0.0.1:10025 inet n - n - - smtpd\n  -o content_filter=\n"}}, {"smtpd_bypasses_ndrguard"}},
        {"address mappings twice", "receive_override_options =\n", {}, {"address_mappings_twice"}},
        {"before queue: sendmail past ndrguard", "content_filter =\nreceive_override_options =\n",
         {{"smtp/inet", smtp + "  -o smtpd_proxy_filter=127.0.0.1:10025\n  -o smtpd_proxy_options=speed_adjust\n"},
          {"submission/inet", submission_bq}},
         {"local_submission_bypasses_ndrguard"}, {"address_mappings_twice", "mode_mismatch"}, true},
        {"before queue, pickup filtered", "content_filter =\nreceive_override_options =\n",
         {{"smtp/inet", smtp + "  -o smtpd_proxy_filter=127.0.0.1:10025\n"},
          {"submission/inet", submission_bq},
          {"pickup/unix", "pickup unix n - y 60 1 pickup\n  -o content_filter=ndrguard:[127.0.0.1]:10027\n"
                          "  -o receive_override_options=no_address_mappings\n"}},
         {}, {"local_submission_bypasses_ndrguard", "ndrguard_not_wired"}, true},
        {"postgrey before ndrguard's policy", "smtpd_recipient_restrictions = reject_unlisted_recipient, "
         "check_policy_service inet:127.0.0.1:10023, check_policy_service inet:127.0.0.1:10040\n",
         {}, {"policy_after_greylisting"}},
        {"ndrguard's policy before reject_unauth_destination", "smtpd_relay_restrictions =\n"
         "smtpd_recipient_restrictions = permit_mynetworks, check_policy_service inet:127.0.0.1:10040, reject_unauth_destination\n",
         {}, {"policy_before_unauth_destination"}},
        {"greylisting before 5xx checks", "smtpd_recipient_restrictions = reject_unlisted_recipient, "
         "check_policy_service unix:postgrey/socket, reject_rbl_client zen.spamhaus.org\n",
         {}, {"greylisting_before_rejects"}},
    };
    for (const auto& r : rows) {
        CAPTURE(r.what);
        const auto f = d::audit(make(r));
        INFO(show(f));
        const auto got = ids(f);
        for (const auto& e : r.expect) CHECK(std::count(got.begin(), got.end(), e) >= 1);
        for (const auto& a : r.absent) CHECK(std::count(got.begin(), got.end(), a) == 0);
        if (r.expect.empty()) CHECK(f.empty());
        for (const auto& x : f) {
            CHECK(!x.why.empty());
            CHECK(!x.fix.empty());
            CHECK(!x.source.empty());
        }
    }
}

TEST_CASE("severities and the exact fixes") {
    auto f = d::audit(make({"", "unknown_local_recipient_reject_code = 450\n", {}, {}}));
    REQUIRE(f.size() == 1);
    CHECK(f[0].level == d::severity::error);
    CHECK(f[0].where == "main.cf unknown_local_recipient_reject_code");
    CHECK(f[0].fix == std::vector<std::string>{"postconf -e 'unknown_local_recipient_reject_code = 550'"});

    f = d::audit(make({"", "maps_rbl_reject_code = 450\n", {}, {}}));
    REQUIRE(f.size() == 1);
    CHECK(f[0].level == d::severity::warning);

    f = d::audit(make({"", "smtpd_sender_restrictions = reject_non_fqdn_sender, reject_unverified_sender\n", {}, {}}));
    REQUIRE(f.size() == 1);
    CHECK(f[0].fix == std::vector<std::string>{"postconf -e 'smtpd_sender_restrictions = reject_non_fqdn_sender'"});

    // Reordered: ndrguard's right after the (relay list's) guard, i.e. first; postgrey after
    // the last 5xx check.
    f = d::audit(make({"", "smtpd_recipient_restrictions = check_policy_service inet:127.0.0.1:10023, "
                           "reject_unlisted_recipient, check_policy_service inet:127.0.0.1:10040, reject_rbl_client zen.spamhaus.org, permit\n",
                       {}, {}}));
    const d::finding* p = find(f, "policy_after_greylisting");
    REQUIRE(p != nullptr);
    CHECK(p->fix == std::vector<std::string>{
                        "postconf -e 'smtpd_recipient_restrictions = check_policy_service inet:127.0.0.1:10040, "
                        "reject_unlisted_recipient, reject_rbl_client zen.spamhaus.org, check_policy_service inet:127.0.0.1:10023, permit'"});
    CHECK(find(f, "greylisting_before_rejects") != nullptr);

    // A service's own override is fixed on the service (postconf -P), not in main.cf.
    f = d::audit(make({"", "", {{"submission/inet", "submission inet n - y - - smtpd\n  -o smtpd_sasl_auth_enable=yes\n  -o content_filter=\n"}}, {}}));
    p = find(f, "submission_bypasses_ndrguard");
    REQUIRE(p != nullptr);
    CHECK(p->level == d::severity::error);
    CHECK(p->where == "master.cf submission/inet");
    CHECK(p->fix == std::vector<std::string>{"postconf -P 'submission/inet/content_filter=ndrguard:[127.0.0.1]:10027'"});

    // A public second port is an error, a loopback one (another filter's reinjection) a warning.
    f = d::audit(make({"", "", {{"2525/inet", "2525 inet n - y - - smtpd\n  -o content_filter=\n"}}, {}}));
    REQUIRE(f.size() == 1);
    CHECK(f[0].level == d::severity::error);
    f = d::audit(make({"", "", {{"127.0.0.1:10024/inet", "127.0.0.1:10024 inet n - n - - smtpd\n  -o content_filter=\n"}}, {}}));
    REQUIRE(f.size() == 1);
    CHECK(f[0].level == d::severity::warning);
    CHECK(f[0].fix == std::vector<std::string>{"postconf -P '127.0.0.1:10024/inet/content_filter=ndrguard:[127.0.0.1]:10025'"});

    // notify_classes: a note, a warning once the notices leave our domains.
    f = d::audit(make({"", "notify_classes = bounce, resource\n", {}, {}}));
    REQUIRE(f.size() == 1);
    CHECK(f[0].level == d::severity::info);
    f = d::audit(make({"", "notify_classes = bounce, resource\nbounce_notice_recipient = pm@mail.example.net\n", {}, {}}));
    REQUIRE(f.size() == 1);
    CHECK(f[0].level == d::severity::warning);

    // Errors come first.
    f = d::audit(make({"", "notify_classes = 2bounce\nsoft_bounce = yes\nlocal_recipient_maps =\n", {}, {}}));
    REQUIRE(f.size() == 3);
    CHECK(f[0].level == d::severity::error);
    CHECK(f[1].level == d::severity::warning);
    CHECK(f[2].level == d::severity::info);
}

TEST_CASE("a default that refers to another parameter is expanded") {
    // mime_header_checks' default is $header_checks (postconf(5)): a header_checks setting
    // alone makes it count.
    row r{"", "header_checks = pcre:/etc/postfix/hc\n",
          {{"127.0.0.1:10026/inet", "127.0.0.1:10026 inet n - n - 10 smtpd\n  -o content_filter=\n"
                                    "  -o receive_override_options=no_unknown_recipient_checks,no_milters\n"
                                    "  -o smtpd_authorized_xforward_hosts=127.0.0.0/8\n"}},
          {"header_checks_after_queue"}};
    const auto f = d::audit(make(r));
    CHECK(find(f, "header_checks_after_queue") != nullptr);
    // ...and the audit's defaults are the ones it asks postconf for.
    CHECK(std::find(d::parameters_used().begin(), d::parameters_used().end(), "mime_header_checks") != d::parameters_used().end());
    CHECK(d::default_value("smtpd_reject_unlisted_recipient") == "yes");
    CHECK(d::default_value("no_such_parameter").empty());
}

TEST_CASE("postconf -n / -x text") {
    const auto p = d::parse_parameters("# a comment\n"
                                       "alias_maps = hash:/etc/aliases\n"
                                       "smtpd_recipient_restrictions = permit_mynetworks,\n"
                                       "    reject_unauth_destination\n"
                                       "\n"
                                       "not a setting\n"
                                       "   a continuation after a bad line is part of it\n"
                                       "empty =\n"
                                       "alias_maps = hash:/etc/postfix/aliases\r\n"
                                       "bad-name = x\n");
    CHECK(p.values.at("alias_maps") == "hash:/etc/postfix/aliases");
    CHECK(p.values.at("smtpd_recipient_restrictions") == "permit_mynetworks, reject_unauth_destination");
    CHECK(p.values.at("empty").empty());
    CHECK(p.values.size() == 3);
    CHECK(p.bad_lines == 2);
    CHECK(!p.truncated);

    d::limits lim;
    lim.max_parameters = 2;
    auto q = d::parse_parameters("a = 1\nb = 2\nc = 3\na = 4\n", lim);
    CHECK(q.values.size() == 2);
    CHECK(q.truncated);
    CHECK(q.values.at("a") == "4");  // a known name is still updated

    lim = {};
    lim.max_line_bytes = 16;
    q = d::parse_parameters("a = 1\nlong = 0123456789abcdef\nb = 2\n    and more\n", lim);
    CHECK(q.values.size() == 2);
    CHECK(q.bad_lines == 1);
    CHECK(q.values.at("b") == "2 and more");

    lim = {};
    lim.max_input_bytes = 12;
    q = d::parse_parameters("a = 1\nb = 2\nc = 333333\n", lim);
    CHECK(q.truncated);
    CHECK(q.values.size() == 2);  // the cut line is dropped, not read half
    CHECK(d::parse_parameters("").values.empty());
    CHECK(d::parse_parameters("   leading continuation\n").bad_lines == 1);
}

TEST_CASE("postconf -M and -P text") {
    // As postconf -M printed it (one line an entry, braces kept), and master.cf's own folding.
    const auto m = d::parse_master(
        "smtp       inet  n       -       y       -       -       smtpd\n"
        "submission inet  n       -       y       -       -       smtpd -o syslog_name=postfix/submission "
        "-o {smtpd_client_restrictions=permit_sasl_authenticated, reject} -o content_filter=\n"
        "mailman    unix  -       n       n       -       -       pipe flags=FRX user=list argv=/x ${nexthop} ${user}\n"
        "relay      unix  -       -       n       -       -       smtp\n"
        "    -o smtp_fallback_relay=\n"
        "    -o { smtp_helo_timeout = 5 }\n"
        "short      unix  -   -\n"
        "odd        unix  -       -       n       -       -       smtp -o =x -o\n",
        "submission/inet/content_filter = ndrguard:[127.0.0.1]:10027\n"
        "relay/unix/smtp_helo_timeout = 7\n"
        "nosuch/unix/x = 1\n"
        "garbage\n");
    REQUIRE(m.services.size() == 5);
    CHECK(m.services[0].key() == "smtp/inet");
    CHECK(m.services[1].overrides.at("smtpd_client_restrictions") == "permit_sasl_authenticated, reject");
    CHECK(m.services[1].overrides.at("content_filter") == "ndrguard:[127.0.0.1]:10027");  // -P wins
    CHECK(m.services[1].overrides.at("syslog_name") == "postfix/submission");
    CHECK(m.services[2].command == "pipe");
    CHECK(m.services[2].arguments == std::vector<std::string>{"flags=FRX", "user=list", "argv=/x", "${nexthop}", "${user}"});
    CHECK(m.services[3].overrides.at("smtp_fallback_relay").empty());
    CHECK(m.services[3].overrides.at("smtp_helo_timeout") == "7");
    CHECK(m.services[4].name == "odd");
    CHECK(m.bad_lines == 3);  // "short", "-o =x", "garbage"

    d::limits lim;
    lim.max_services = 1;
    const auto few = d::parse_master("a unix - - n - - smtp\nb unix - - n - - smtp\n", {}, lim);
    CHECK(few.services.size() == 1);
    CHECK(few.truncated);
}

TEST_CASE("lists") {
    CHECK(d::split_list("permit_mynetworks,reject_unauth_destination  check_policy_service inet:127.0.0.1:10040,,") ==
          std::vector<std::string>{"permit_mynetworks", "reject_unauth_destination", "check_policy_service", "inet:127.0.0.1:10040"});
    CHECK(d::split_list("a, { b c }, d") == std::vector<std::string>{"a", "{ b c }", "d"});
    CHECK(d::split_list("{ unclosed, x").size() == 1);
    d::limits lim;
    lim.max_list_items = 2;
    CHECK(d::split_list("a b c d", lim).size() == 2);
}
