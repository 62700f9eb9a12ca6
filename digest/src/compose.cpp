#include "ndrguard/digest/compose.hpp"

#include <mimetic/mimetic.h>

#include <algorithm>
#include <ctime>
#include <map>
#include <sstream>

#include "ndrguard/digest/encode.hpp"
#include "ndrguard/web/url.hpp"

namespace ndrguard::digest {

using web::html_escape;

namespace {

std::tm utc(clock_time t) {
    std::time_t tt = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    return tm;
}

std::string format(clock_time t, const char* fmt) {
    std::tm tm = utc(t);
    char buf[64];
    std::strftime(buf, sizeof buf, fmt, &tm);
    return buf;
}

std::string when(clock_time t) { return format(t, "%Y-%m-%d %H:%M UTC"); }

std::string period(const storm_info& s) {
    if (!s.ended_at) return "since " + when(s.started_at) + ", still going on";
    if (format(s.started_at, "%F") == format(*s.ended_at, "%F"))
        return format(s.started_at, "%Y-%m-%d %H:%M") + "-" + format(*s.ended_at, "%H:%M UTC");
    return format(s.started_at, "%Y-%m-%d %H:%M") + " to " + when(*s.ended_at);
}

std::string plural(std::int64_t n, const char* one, const char* many) { return with_thousands(n) + " " + (n == 1 ? one : many); }

// Text from the network shown to people: control characters out, length bounded.
std::string shown(std::string_view s, std::size_t max = 120) {
    std::string out;
    for (char c : s.substr(0, max)) out.push_back(static_cast<unsigned char>(c) < 0x20 || c == 0x7F ? ' ' : c);
    if (s.size() > max) out += "...";
    return out.empty() ? "(none)" : out;
}

// Who sent the notice: the reporting MTA of a DSN, else the sender of a reply.
std::string reporter(const held_item& it) {
    if (!it.reporting_mta.empty()) return shown(it.reporting_mta, 80);
    if (!it.sender.empty()) return shown(it.sender, 80);
    return "an unknown server";
}

std::string reporters_text(const std::vector<std::pair<std::string, std::int64_t>>& r) {
    std::string out;
    for (std::size_t i = 0; i < r.size() && i < 5; ++i)
        out += (i ? ", " : "") + shown(r[i].first, 80) + " (" + with_thousands(r[i].second) + ")";
    return out;
}

std::string subjects_text(const std::vector<std::string>& s) {
    std::string out;
    for (std::size_t i = 0; i < s.size() && i < 5; ++i) out += (i ? ", " : "") + std::string("\"") + shown(s[i], 80) + "\"";
    return out;
}

std::string subject_line(const digest_groups& g, const std::string& mailbox) {
    std::string s = plural(static_cast<std::int64_t>(g.total), "bounce", "bounces") + " held for " + mailbox;
    if (g.maybe_genuine_total) s += ": " + with_thousands(static_cast<std::int64_t>(g.maybe_genuine_total)) + " may be yours";
    return s;
}

std::string text_body(const digest_input& in, const digest_groups& g) {
    std::ostringstream o;
    o << "Bounces held for " << in.mailbox << "\n";
    o << "Since your last digest, " << plural(static_cast<std::int64_t>(g.total), "bounce was", "bounces were")
      << " held instead of delivered (" << when(in.now) << ").\n";
    o << "Most are backscatter: replies to mail that spammers sent in your name.\n";
    if (g.maybe_genuine_total) {
        o << "\nMAY BE YOURS (" << with_thousands(static_cast<std::int64_t>(g.maybe_genuine_total))
          << "): these could not be checked against the mail you sent.\n";
        int n = 0;
        for (const held_item* it : g.maybe_genuine) {
            o << "\n" << ++n << ". " << when(it->held_at) << ", from " << reporter(*it) << "\n";
            if (it->original_subject.empty()) {
                o << "   Subject: \"" << shown(it->subject) << "\"";
            } else {
                o << "   Your message: \"" << shown(it->original_subject) << "\"";
                if (!it->original_recipient.empty()) o << " to " << shown(it->original_recipient, 80);
            }
            o << "\n   Why held: " << plain_reason(*it) << "\n";
            o << "   Release: " << in.links.release(it->id) << "\n";
        }
        if (g.maybe_genuine_total > g.maybe_genuine.size())
            o << "\n...and " << with_thousands(static_cast<std::int64_t>(g.maybe_genuine_total - g.maybe_genuine.size()))
              << " more on the full list.\n";
    }
    for (const storm_group& s : g.storms) {
        o << "\nSTORM: " << plural(s.storm.bounces, "bounce", "bounces") << " for mail you did not send, " << period(s.storm) << "\n";
        o << "   " << with_thousands(s.held) << " held for you";
        if (s.maybe_genuine) o << " (" << with_thousands(s.maybe_genuine) << " could not be checked)";
        if (s.storm.rejected) o << ", " << with_thousands(s.storm.rejected) << " refused outright";
        o << ".\n";
        if (!s.storm.top_reporters.empty()) o << "   Top reporting MTAs: " << reporters_text(s.storm.top_reporters) << "\n";
        if (!s.storm.sample_subjects.empty()) o << "   Sample subjects: " << subjects_text(s.storm.sample_subjects) << "\n";
        o << "   Release all " << with_thousands(s.held) << ": " << s.release_all_link << "\n";
    }
    if (g.forged) {
        o << "\nFORGED: " << plural(g.forged, "bounce", "bounces")
          << " for mail that was never sent from here (nothing to do; shown for completeness).\n";
        if (!g.forged_reporters.empty()) o << "   Reporting MTAs: " << reporters_text(g.forged_reporters) << "\n";
        if (!g.forged_subjects.empty()) o << "   Subjects: " << subjects_text(g.forged_subjects) << "\n";
    }
    o << "\nEverything held for you, with a release link for each: " << in.links.full_list << "\n";
    o << "Links work until " << format(in.links.valid_until, "%Y-%m-%d")
      << ". Releasing asks for a confirmation first. Held mail is deleted after the retention period.\n";
    return o.str();
}

std::string html_body(const digest_input& in, const digest_groups& g) {
    std::ostringstream o;
    const char* button =
        "display:inline-block;padding:.4rem .9rem;background:#1a5fb4;color:#fff;text-decoration:none;border-radius:4px";
    o << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>"
      << html_escape(subject_line(g, in.mailbox))
      << "</title></head>\n<body style=\"font-family:system-ui,sans-serif;max-width:40rem;margin:1rem auto;padding:0 1rem;"
         "line-height:1.5;color:#222\">\n";
    o << "<h1 style=\"font-size:1.4rem\">Bounces held for " << html_escape(in.mailbox) << "</h1>\n";
    o << "<p>Since your last digest, " << html_escape(plural(static_cast<std::int64_t>(g.total), "bounce was", "bounces were"))
      << " held instead of delivered (" << html_escape(when(in.now))
      << "). Most are backscatter: replies to mail that spammers sent in your name.</p>\n";
    if (g.maybe_genuine_total) {
        o << "<h2 style=\"font-size:1.15rem\">May be yours (" << with_thousands(static_cast<std::int64_t>(g.maybe_genuine_total))
          << ")</h2>\n<p>These could not be checked against the mail you sent.</p>\n<ol>\n";
        for (const held_item* it : g.maybe_genuine) {
            const bool has_original = !it->original_subject.empty();
            o << "<li style=\"margin-bottom:1rem\">" << (has_original ? "Your message " : "")
              << "<strong>&ldquo;" << html_escape(shown(has_original ? it->original_subject : it->subject)) << "&rdquo;</strong>";
            if (has_original && !it->original_recipient.empty()) o << " to " << html_escape(shown(it->original_recipient, 80));
            o << "<br><small>" << html_escape(when(it->held_at)) << " &middot; from " << html_escape(reporter(*it)) << "</small><br>Why held: " << html_escape(plain_reason(*it))
              << "<br><a class=\"release\" style=\"" << button << "\" href=\"" << html_escape(in.links.release(it->id))
              << "\">Release</a></li>\n";
        }
        o << "</ol>\n";
        if (g.maybe_genuine_total > g.maybe_genuine.size())
            o << "<p>&hellip;and " << with_thousands(static_cast<std::int64_t>(g.maybe_genuine_total - g.maybe_genuine.size()))
              << " more on the full list.</p>\n";
    }
    for (const storm_group& s : g.storms) {
        o << "<h2 style=\"font-size:1.15rem\">Storm: " << html_escape(plural(s.storm.bounces, "bounce", "bounces"))
          << " for mail you did not send, " << html_escape(period(s.storm)) << "</h2>\n<p>" << with_thousands(s.held)
          << " held for you";
        if (s.maybe_genuine) o << " (" << with_thousands(s.maybe_genuine) << " could not be checked)";
        if (s.storm.rejected) o << ", " << with_thousands(s.storm.rejected) << " refused outright";
        o << ".</p>\n<ul>\n";
        if (!s.storm.top_reporters.empty())
            o << "<li>Top reporting MTAs: " << html_escape(reporters_text(s.storm.top_reporters)) << "</li>\n";
        if (!s.storm.sample_subjects.empty())
            o << "<li>Sample subjects: " << html_escape(subjects_text(s.storm.sample_subjects)) << "</li>\n";
        o << "</ul>\n<p><a class=\"release-all\" style=\"" << button << "\" href=\"" << html_escape(s.release_all_link)
          << "\">Release all " << with_thousands(s.held) << "</a></p>\n";
    }
    if (g.forged) {
        o << "<h2 style=\"font-size:1.15rem\">Forged: " << html_escape(plural(g.forged, "bounce", "bounces"))
          << "</h2>\n<p>For mail that was never sent from here. Nothing to do; shown for completeness.</p>\n<ul>\n";
        if (!g.forged_reporters.empty()) o << "<li>Reporting MTAs: " << html_escape(reporters_text(g.forged_reporters)) << "</li>\n";
        if (!g.forged_subjects.empty()) o << "<li>Subjects: " << html_escape(subjects_text(g.forged_subjects)) << "</li>\n";
        o << "</ul>\n";
    }
    o << "<p><a class=\"full-list\" href=\"" << html_escape(in.links.full_list)
      << "\">Everything held for you</a>, with a release link for each.</p>\n";
    o << "<p><small>Links work until " << html_escape(format(in.links.valid_until, "%Y-%m-%d"))
      << ". Releasing asks for a confirmation first. Held mail is deleted after the retention period.</small></p>\n";
    o << "</body></html>\n";
    return o.str();
}

mimetic::MimeEntity* text_part(const std::string& content_type, const std::string& body) {
    auto* e = new mimetic::MimeEntity;
    e->header().field("Content-Type").value(content_type);
    e->header().field("Content-Transfer-Encoding").value("quoted-printable");
    e->body().assign(quoted_printable(body));
    return e;
}

}  // namespace

std::string with_thousands(std::int64_t n) {
    std::string digits = std::to_string(n < 0 ? -n : n), out;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return n < 0 ? "-" + out : out;
}

std::string plain_reason(const held_item& it) {
    const std::string& k = it.klass;
    std::string what = k == "dsn" || k == "ndr"  ? "a delivery failure notice"
                       : k == "autoreply"        ? "an automatic reply"
                       : k == "challenge"        ? "a request to confirm you are a real sender"
                       : k == "virus_notice"     ? "a virus warning"
                       : k == "mdn"              ? "a read receipt"
                       : k == "feedback"         ? "a spam complaint"
                                                 : "a message";
    const auto shows = [&](std::string_view tag) { return std::find(it.evidence.begin(), it.evidence.end(), tag) != it.evidence.end(); };
    std::string why = it.verification == "forged"         ? what + " about a message that was never sent from here"
                      : it.verification == "unverifiable" ? what + " that does not say which message it is about"
                      : it.verification == "suspect"
                          ? what + " that may be genuine: it is about a message with no record here, but " +
                                (shows("trace.our_relay") ? "it passed through our mail server" : "it carries our signature") +
                                "; check it"
                          : what + " held by a setting of your mail administrator";
    if (std::find(it.notes.begin(), it.notes.end(), "storm") != it.notes.end()) why += ", during a storm of bounces";
    return why;
}

digest_groups group_items(const digest_input& in) {
    digest_groups g;
    g.total = in.items.size();
    std::map<std::int64_t, std::size_t> storm_index;
    for (const storm_info& s : in.storms) {
        storm_index[s.id] = g.storms.size();
        g.storms.push_back({s, 0, 0, in.links.release_storm ? in.links.release_storm(s.id) : std::string()});
    }
    std::map<std::string, std::int64_t> reporters;
    for (const held_item& it : in.items) {
        const bool maybe_genuine = it.verification != "forged";
        if (auto s = storm_index.find(it.storm_id); it.storm_id && s != storm_index.end()) {
            storm_group& sg = g.storms[s->second];
            ++sg.held;
            if (maybe_genuine) ++sg.maybe_genuine;
        } else if (maybe_genuine) {
            ++g.maybe_genuine_total;
            if (g.maybe_genuine.size() < in.max_listed) g.maybe_genuine.push_back(&it);
        } else {
            ++g.forged;
            ++reporters[reporter(it)];
            const std::string& subj = it.original_subject.empty() ? it.subject : it.original_subject;
            if (g.forged_subjects.size() < 5 && std::find(g.forged_subjects.begin(), g.forged_subjects.end(), subj) == g.forged_subjects.end())
                g.forged_subjects.push_back(subj);
        }
    }
    // A storm none of whose items is in this digest is not shown.
    std::erase_if(g.storms, [](const storm_group& s) { return s.held == 0; });
    g.forged_reporters.assign(reporters.begin(), reporters.end());
    std::stable_sort(g.forged_reporters.begin(), g.forged_reporters.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });
    if (g.forged_reporters.size() > 5) g.forged_reporters.resize(5);
    return g;
}

digest_mail compose_digest(const digest_input& in) {
    const digest_groups g = group_items(in);
    digest_mail mail;
    mail.subject = subject_line(g, in.mailbox);
    mail.text = text_body(in, g);
    mail.html = html_body(in, g);

    mimetic::MultipartAlternative top;
    auto& h = top.header();
    h.field("MIME-Version").value("1.0");
    // The display name may be anything the administrator wrote: encode it when it is not ASCII.
    std::string from = in.from;
    if (auto lt = from.rfind('<'); lt != std::string::npos && lt > 0) {
        std::string name = from.substr(0, lt);
        while (!name.empty() && name.back() == ' ') name.pop_back();
        from = encode_header_text(name, 6) + " " + from.substr(lt);
    }
    h.field("From").value(from);
    h.field("To").value("<" + in.mailbox + ">");
    h.field("Subject").value(encode_header_text(mail.subject, 9));
    h.field("Date").value(format(in.now, "%a, %d %b %Y %H:%M:%S +0000"));
    h.field("Message-ID").value("<" + in.message_id + ">");
    h.field("Auto-Submitted").value("auto-generated");  // RFC 3834: no auto-replies to this
    h.field("X-Auto-Response-Suppress").value("All");
    h.field("X-NDRGuard-Digest").value(std::to_string(in.digest_id));
    top.body().preamble("This is a digest of bounces held for you, in text and HTML.\r\n");
    top.body().parts().push_back(text_part("text/plain; charset=utf-8", mail.text));
    top.body().parts().push_back(text_part("text/html; charset=utf-8", mail.html));
    std::ostringstream out;
    out << top;
    mail.message = out.str();
    return mail;
}

}  // namespace ndrguard::digest
