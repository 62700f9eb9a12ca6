// classify(): structure first (RFC 3464/8098/5965 reports), then evidence for the
// non-standard kinds, then references. See detector.hpp for the contract.
//
// Evidence is gathered as independent signals and a class is named only when two of them
// agree (or one structural one is present). The thresholds are what keeps ham at zero while
// the corpus test holds recall: change them only with tests/corpus numbers in hand.

#include <algorithm>
#include <deque>
#include <initializer_list>
#include <string>

#include "mime.hpp"
#include "ndrguard/detector/detector.hpp"
#include "phrase_scanner.hpp"
#include "references.hpp"
#include "ses.hpp"
#include "signals.hpp"
#include "text.hpp"

namespace ndrguard::detector {

std::string_view to_string(message_class c) {
    switch (c) {
        case message_class::not_bounce: return "not_bounce";
        case message_class::dsn: return "dsn";
        case message_class::ndr: return "ndr";
        case message_class::autoreply: return "autoreply";
        case message_class::challenge: return "challenge";
        case message_class::virus_notice: return "virus_notice";
        case message_class::mdn: return "mdn";
        case message_class::feedback: return "feedback";
    }
    return "not_bounce";
}

std::optional<message_class> parse_message_class(std::string_view name) {
    for (auto c : {message_class::not_bounce, message_class::dsn, message_class::ndr, message_class::autoreply,
                   message_class::challenge, message_class::virus_notice, message_class::mdn, message_class::feedback})
        if (to_string(c) == name) return c;
    return std::nullopt;
}

bool is_bounce(message_class c) { return c != message_class::not_bounce && c != message_class::mdn; }

std::string_view to_string(recipient_action a) {
    switch (a) {
        case recipient_action::unknown: return "";
        case recipient_action::failed: return "failed";
        case recipient_action::delayed: return "delayed";
        case recipient_action::delivered: return "delivered";
        case recipient_action::relayed: return "relayed";
        case recipient_action::expanded: return "expanded";
    }
    return "";
}

std::vector<std::string_view> flag_names(std::uint32_t flags) {
    static constexpr std::pair<std::uint32_t, std::string_view> names[] = {
        {flag_truncated, "truncated"},
        {flag_header_too_large, "header_too_large"},
        {flag_too_many_header_fields, "too_many_header_fields"},
        {flag_mime_too_deep, "mime_too_deep"},
        {flag_too_many_parts, "too_many_parts"},
        {flag_missing_boundary, "missing_boundary"},
        {flag_unterminated_multipart, "unterminated_multipart"},
        {flag_bad_encoding, "bad_encoding"},
        {flag_nul_byte, "nul_byte"},
        {flag_malformed_header, "malformed_header"},
        {flag_text_truncated, "text_truncated"},
        {flag_too_many_references, "too_many_references"},
        {flag_bad_delivery_status, "bad_delivery_status"},
    };
    std::vector<std::string_view> out;
    for (auto& [bit, name] : names)
        if (flags & bit) out.push_back(name);
    return out;
}

namespace {

using mime::entity;
using text::icontains;
using text::trim;

template <std::size_t N>
bool contains_any(std::string_view lower_hay, const std::string_view (&needles)[N]) {
    for (auto n : needles)
        if (lower_hay.find(n) != std::string_view::npos) return true;
    return false;
}

// CRLF and lone CR become LF, so every parser below sees one line ending.
std::string_view normalize_line_endings(std::string_view in, std::string& storage) {
    if (in.find('\r') == std::string_view::npos) return in;
    storage.clear();
    storage.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        char c = in[i];
        if (c == '\r') {
            storage.push_back('\n');
            if (i + 1 < in.size() && in[i + 1] == '\n') ++i;
        } else {
            storage.push_back(c);
        }
    }
    return storage;
}

std::string_view local_part(std::string_view address) {
    std::size_t at = address.rfind('@');
    return at == std::string_view::npos ? address : address.substr(0, at);
}

bool is_daemon_address(std::string_view address) {
    std::string lp = text::to_lower(local_part(address));
    for (auto d : signals::daemon_local_parts)
        if (lp == d) return true;
    return text::istarts_with(lp, "microsoftexchange") || text::istarts_with(lp, "mailer-daemon");
}

bool is_reply_or_forward(std::string_view lower_subject) {
    // English, German (AW, WG), French (TR), Nordic (SV, VS), Dutch (Antw, Doorst), Italian (R, RIF),
    // Portuguese (RES, ENC), Polish (Odp, PD), Czech (Odp, Fwd), Turkish (YNT, İLT), Chinese.
    static constexpr std::string_view prefixes[] = {"re:", "re :", "fw:", "fwd:", "aw:", "wg:", "tr:", "sv:", "vs:",
                                                    "antw:", "doorst:", "rif:", "r:", "res:", "enc:", "odp:", "pd:",
                                                    "ynt:", "回复:", "回复：", "答复:", "答复：", "转发:", "回覆:", "轉寄:"};
    std::string_view s = trim(lower_subject);
    for (auto p : prefixes)
        if (s.substr(0, p.size()) == p) return true;
    return false;
}

// "Automatic reply: X", "Out of Office: X", "Auto: X", "[Auto-Reply] X", "自動応答: X": the
// auto-reply phrase stands before the colon (or inside the leading brackets), as autoresponders
// prefix the subject they answer; "Out of office next week" is a sentence, not a prefix.
bool is_autoreply_prefix(std::string_view lower_subject) {
    std::string_view s = trim(lower_subject);
    // Autoresponders that write a sentence instead (Lotus Notes: "Bob/Acme is out of the office.").
    if (contains_any(s, signals::autoreply_subject_sentences)) return true;
    std::string_view head;
    if (!s.empty() && s.front() == '[') {
        head = s.substr(1, s.find(']') == std::string_view::npos ? 0 : s.find(']') - 1);
    } else {
        std::size_t colon = std::min(s.find(':'), s.find("："));  // also the full-width colon
        if (colon == std::string_view::npos || colon > 64) return false;
        head = s.substr(0, colon);
    }
    for (auto p : signals::autoreply_subjects)
        if (head.find(p) != std::string_view::npos) return true;
    // "Auto:" itself ends in the colon.
    return text::istarts_with(s, "auto:") || text::istarts_with(s, "auto :");
}

// Everything the decision looks at, gathered once.
struct evidence {
    // Envelope and top header.
    bool null_sender = false;      // MAIL FROM:<> (from the envelope, when known)
    bool null_return_path = false; // Return-Path: <>
    bool daemon_from = false;      // From: MAILER-DAEMON, postmaster, "Mail Delivery System" ...
    bool ndr_subject = false;
    bool reply_subject = false;    // "Re:", "Fwd:": a person answering
    bool autoreply_header = false; // Auto-Submitted: auto-replied, X-Autoreply, Precedence: auto_reply
    bool auto_generated = false;   // Auto-Submitted: auto-generated (DSNs carry it too)
    bool autoreply_subject = false;
    bool challenge_header = false;
    bool challenge_subject = false;
    bool virus_subject = false;
    bool feedback_subject = false;
    bool virus_sender = false;
    bool human_mailer = false;     // In-Reply-To/References (or a list) plus a MUA's headers
    bool list_mail = false;        // List-Id, List-Unsubscribe, List-Post: a list's post or a newsletter
    bool list_human = false;       // a person's post to a list: a MUA, a list, no daemon sender
    bool threading = false;        // In-Reply-To or References
    bool mua = false;              // User-Agent, a MUA's X-Mailer, Thread-Index
    bool automatic = false;        // Precedence: bulk/junk outside lists, X-Auto-Response-Suppress
    bool autoreply_prefix = false; // the subject is "<auto-reply phrase>: ..." or "[<phrase>] ..."

    // Structure.
    bool report_dsn = false, report_mdn = false, report_feedback = false;
    bool returned_part = false;    // message/rfc822, text/rfc822-headers, message/global*, .eml

    // Text.
    int ndr_banners = 0;           // distinct MTA sentences (capped)
    bool returned_marker = false;  // "below this line is a copy of the message" and the like
    bool quoted_original = false;  // a quoted header block with a Message-ID or Received line
    bool delay_phrase = false;
    bool challenge_phrase = false;
    int virus_phrases = 0;
    bool mdn_phrase = false;
    bool autoreply_phrase = false; // an out-of-office sentence
    bool arf_fields = false;       // RFC 5965 fields (Feedback-Type, Version) in a text part
    bool dsn_fields = false;       // RFC 3464 fields (Final-Recipient, Action/Status) in the text
    bool multipart_report = false; // a multipart/report, whatever its report-type says

    bool sender_signal() const { return null_sender || null_return_path || daemon_from; }
    bool returned_signal() const { return returned_part || returned_marker || quoted_original; }
};

struct context {
    context(const limits& l, mime::mime_document& d, result& r) : lim(l), doc(d), out(r) {}
    const limits& lim;
    mime::mime_document& doc;
    result& out;
    evidence ev;
    std::string own_message_id;  // the bounce's own id, never reported as a reference
    std::string lower_text;      // decoded human-readable text of the report, lower case
    std::string text;            // same, original case (for references)
    std::vector<std::string> ids_returned, ids_quoted, ids_header;
    const mime::header_section* returned_headers = nullptr;  // of the returned original
    bool returned_whole = false;       // returned_headers belong to a whole embedded message
    std::string_view returned_reason;  // how its id was found
    std::deque<mime::header_section> header_storage;  // parsed text/rfc822-headers bodies
    std::string from_address;                // the report's From address
    std::string quoted_to;                   // first To address of an inline-quoted original
    std::string quoted_for;                  // its topmost Received line's "for" address
    std::optional<ses::notification> ses;    // an Amazon SES notification, when it is one
    std::vector<std::string> own_recipients; // the bounce's own: its To
    std::vector<std::string> delivered_to;   // those and Delivered-To, X-Original-To, Envelope-To: a last resort
    std::string own_domains;                 // their domains, "@a.example @b.example "
};

// A list's return address: Mailman's LIST-bounces (and its VERP form LIST-bounces+user=host@)
// always; LIST-admin (Mailman 2.0's envelope sender), LIST-owner, LIST-request and owner-LIST
// (majordomo, Sympa) when the bounce itself went to that domain (a list server's bounce), since
// "it-admin@" elsewhere is a mailbox like any other. Bounces are sent to these; they are never
// the address that failed.
bool is_list_return_address(std::string_view address, std::string_view own_domains = {}) {
    std::string lp = text::to_lower(local_part(address));
    auto ends_with = [&lp](std::string_view suf) {
        return lp.size() > suf.size() && lp.compare(lp.size() - suf.size(), suf.size(), suf) == 0;
    };
    if (ends_with("-bounces") || lp.find("-bounces+") != std::string::npos) return true;
    if (!(ends_with("-admin") || ends_with("-owner") || ends_with("-request") || lp.rfind("owner-", 0) == 0)) return false;
    std::size_t at = address.rfind('@');
    if (at == std::string_view::npos) return false;
    std::string domain = "@" + text::to_lower(address.substr(at + 1)) + " ";
    return own_domains.find(domain) != std::string_view::npos;
}

// The mailboxes the bounce itself was sent to: its To is never the failed recipient, nor is a
// list's return address. The delivery agents' marks (Delivered-To, Postfix's X-Original-To,
// Exim's Envelope-To) name the mailbox it was delivered to: an address only they name is
// taken only when the report names no other (stored or forwarded copies may carry the
// original's marks instead of the bounce's).
void read_own_recipients(context& cx) {
    const auto& h = cx.doc.entities().front().headers;
    for (const auto& f : h.fields) {
        const bool to = text::iequals(f.name, "to");
        if (!(to || text::iequals(f.name, "delivered-to") || text::iequals(f.name, "x-original-to") ||
              text::iequals(f.name, "envelope-to") || text::iequals(f.name, "x-envelope-to") ||
              text::iequals(f.name, "x-delivered-to")))
            continue;
        if (cx.delivered_to.size() >= 16) continue;
        std::string a = text::to_lower(text::extract_address(f.value));
        if (a.empty()) continue;
        if (to) cx.own_recipients.push_back(a);
        cx.own_domains.append(a.substr(a.rfind('@'))).push_back(' ');
        cx.delivered_to.push_back(std::move(a));
    }
}

bool in_list(const std::vector<std::string>& list, std::string_view address) {
    std::string a = text::to_lower(address);
    return std::find(list.begin(), list.end(), a) != list.end();
}

bool is_own_recipient(const context& cx, std::string_view address) {
    return is_list_return_address(address, cx.own_domains) || in_list(cx.own_recipients, address);
}

// Puts the recipients only the delivery marks name behind the others, and drops them when
// others are there.
void demote_delivered_to(context& cx) {
    auto& rs = cx.out.recipients;
    if (cx.delivered_to.empty() || rs.size() < 2) return;
    auto keep = std::stable_partition(rs.begin(), rs.end(), [&](const recipient_report& r) {
        return !in_list(cx.delivered_to, r.address);
    });
    if (keep != rs.begin()) rs.erase(keep, rs.end());
}

void add_reason(result& r, std::string_view tag) {
    if (std::find(r.reasons.begin(), r.reasons.end(), tag) == r.reasons.end()) r.reasons.push_back(tag);
}

bool is_returned_headers_type(const entity& e) {
    // "rfc822-header" (singular) is a misspelling seen in the wild.
    return (e.type.type == "text" && (e.type.subtype == "rfc822-headers" || e.type.subtype == "rfc822" ||
                                      e.type.subtype == "rfc822-header")) ||
           (e.type.type == "message" && (e.type.subtype == "global-headers" || e.type.subtype == "rfc822-headers"));
}

void read_top_header(context& cx, const envelope& env) {
    const auto& h = cx.doc.entities().front().headers;
    evidence& ev = cx.ev;
    if (env.mail_from) {
        std::string_view mf = trim(*env.mail_from);
        ev.null_sender = mf.empty() || mf == "<>";
    }
    if (std::string_view rp = h.get("return-path"); !rp.empty()) {
        std::string v = text::unfold(rp);
        ev.null_return_path = trim(v) == "<>" || trim(v).empty();
    }
    std::string from_raw = mime::decode_rfc2047(h.get("from"));
    std::string from_lower = text::to_lower(from_raw);
    std::string from_addr = text::extract_address(from_raw);
    ev.daemon_from = (!from_addr.empty() && is_daemon_address(from_addr)) ||
                     (from_addr.empty() && !from_lower.empty() && contains_any(from_lower, signals::daemon_local_parts));
    if (!ev.daemon_from) {
        // Display name only, before the address: "Mail Delivery System <x@y>".
        std::string_view display = from_lower;
        if (std::size_t lt = display.find('<'); lt != std::string_view::npos) display = display.substr(0, lt);
        for (auto name : signals::daemon_display_names)
            if (display.find(name) != std::string_view::npos) ev.daemon_from = true;
    }
    cx.from_address = text::to_lower(from_addr);
    std::string lower_from_lp = text::to_lower(local_part(from_addr));
    for (auto v : signals::virus_senders)
        if (lower_from_lp.find(v) != std::string::npos) ev.virus_sender = true;

    cx.out.subject = mime::decode_rfc2047(h.get("subject"));
    std::string subj = text::to_lower_utf8(cx.out.subject);
    ev.ndr_subject = contains_any(subj, signals::ndr_subjects);
    ev.reply_subject = is_reply_or_forward(subj);
    ev.autoreply_subject = contains_any(subj, signals::autoreply_subjects) ||
                           contains_any(subj, signals::autoreply_subject_sentences);
    ev.autoreply_prefix = ev.autoreply_subject && is_autoreply_prefix(subj);
    ev.challenge_subject = contains_any(subj, signals::challenge_subjects);
    ev.virus_subject = contains_any(subj, signals::virus_subjects);
    ev.feedback_subject = !ev.reply_subject && contains_any(subj, signals::feedback_subjects);

    std::string auto_submitted = text::to_lower(trim(text::unfold(h.get("auto-submitted"))));
    if (auto_submitted.rfind("auto-replied", 0) == 0) ev.autoreply_header = true;
    if (auto_submitted.rfind("auto-generated", 0) == 0 || auto_submitted.rfind("auto-notified", 0) == 0)
        ev.auto_generated = true;
    std::string precedence = text::to_lower(trim(text::unfold(h.get("precedence"))));
    if (precedence == "auto_reply" || precedence == "auto-reply") ev.autoreply_header = true;
    if (h.has("x-autoreply") || h.has("x-autorespond") || h.has("x-autoresponder") || h.has("x-auto-reply") ||
        h.has("x-mail-autoreply") || h.has("x-autoreply-from") || h.has("x-vacation") ||
        icontains(h.get("delivered-by-the-graces-of"), "vacation") ||
        text::iequals(trim(text::unfold(h.get("x-autogenerated"))), "reply") ||
        text::iequals(trim(text::unfold(h.get("x-precedence"))), "auto_reply"))
        ev.autoreply_header = true;
    if (h.has("x-boxtrapper") || h.has("x-bluebottle-request") || h.has("x-spamarrest-noauth") ||
        h.has("x-spamarrest-confirm") || h.has("x-askversion") || h.has("x-qurb") || h.has("x-vanquish") ||
        icontains(h.get("message-id"), "-tmda-confirm") ||
        icontains(h.get("from"), "-confirm-") || text::iequals(trim(text::unfold(h.get("precedence"))), "spam"))
        ev.challenge_header = true;

    cx.own_message_id = normalize_message_id(h.get("message-id"));
    bool has_threading = h.has("in-reply-to") || h.has("references");
    static constexpr std::string_view mua_mailers[] = {
        "outlook", "thunderbird", "mutt", "apple mail", "iphone mail", "ipad mail", "evolution", "kmail", "claws mail",
        "sylpheed", "roundcube", "squirrelmail", "horde", "alpine", "gnus", "eudora", "the bat!", "becky!", "mailmate",
        "postbox", "em client", "seamonkey"};
    std::string mailer = text::to_lower(h.get("x-mailer"));
    bool has_mua = h.has("user-agent") || h.has("thread-index") || contains_any(mailer, mua_mailers);
    ev.threading = has_threading;
    ev.mua = has_mua;
    // RFC 2369 / 2919 list fields: a list's post or a newsletter, written by a person or a
    // mailing program, never by an MTA about a delivery.
    ev.list_mail = h.has("list-id") || h.has("list-unsubscribe") || h.has("list-post") || h.has("mailing-list");
    ev.human_mailer = (has_threading || ev.list_mail) && has_mua && !ev.sender_signal();
    ev.list_human = ev.list_mail && has_mua && !ev.sender_signal();
    // Automatic senders: vacation(1) writes Precedence: bulk (its manual's example message),
    // Exchange marks its automatic replies X-Auto-Response-Suppress; a list's bulk mail does not count.
    ev.automatic = (!ev.list_mail && (precedence == "bulk" || precedence == "junk")) || h.has("x-auto-response-suppress");
}

void read_structure(context& cx) {
    evidence& ev = cx.ev;
    const auto& ents = cx.doc.entities();
    for (std::size_t i = 0; i < ents.size(); ++i) {
        const entity& e = ents[i];
        if (e.message_level != 0) continue;
        const std::string& t = e.type.type;
        const std::string& st = e.type.subtype;
        if (t == "multipart" && st == "report") {
            ev.multipart_report = true;
            std::string rt = text::to_lower(e.type.param("report-type"));
            if (rt == "delivery-status" || rt == "global-delivery-status") ev.report_dsn = true;
            if (rt == "disposition-notification" || rt == "global-disposition-notification") ev.report_mdn = true;
            if (rt == "feedback-report") ev.report_feedback = true;
        }
        if (t == "message" && (st == "delivery-status" || st == "global-delivery-status")) ev.report_dsn = true;
        if (t == "message" && (st == "disposition-notification" || st == "global-disposition-notification"))
            ev.report_mdn = true;
        if (t == "message" && st == "feedback-report") ev.report_feedback = true;
        bool embedded = t == "message" && (st == "rfc822" || st == "global" || st == "partial");
        bool eml = text::iends_with(e.filename, ".eml") && t != "multipart";
        if ((embedded || eml || is_returned_headers_type(e)) && i > 0) ev.returned_part = true;
    }
}

// The human-readable text of the report: the text/* parts outside the returned original.
void gather_text(context& cx) {
    const auto& ents = cx.doc.entities();
    for (const entity& e : ents) {
        if (e.message_level != 0) continue;
        // A multipart without a boundary cannot be split: its body is read as plain text.
        const bool unsplit = e.type.type == "multipart" && e.type.param("boundary").empty();
        if (!unsplit) {
            if (e.type.type != "text" || is_returned_headers_type(e)) continue;
            if (e.attachment && !text::iends_with(e.filename, ".txt")) continue;
            if (e.type.subtype != "plain" && e.type.subtype != "html" && e.type.subtype != "enriched") continue;
        }
        if (cx.text.size() >= cx.lim.max_text_bytes) {
            cx.out.flags |= flag_text_truncated;
            break;
        }
        std::string_view body = cx.doc.decoded_body(e);
        std::string converted;
        std::string charset = e.type.param("charset");
        if (!charset.empty()) {
            converted = mime::to_utf8(body, charset);
            body = converted;
        }
        std::string html;
        if (e.type.subtype == "html") {
            html = mime::html_to_text(body);
            body = html;
        }
        std::size_t room = cx.lim.max_text_bytes - cx.text.size();
        if (body.size() > room) {
            body = body.substr(0, room);
            cx.out.flags |= flag_text_truncated;
        }
        cx.text.append(body);
        cx.text.push_back('\n');
    }
    cx.lower_text = text::to_lower_utf8(cx.text);
}

void read_text_signals(context& cx) {
    evidence& ev = cx.ev;
    const std::string& t = cx.lower_text;
    // Built on first use and never changed: the one piece of shared state, read-only.
    static const phrase_scanner scanner({signals::ndr_banners, signals::returned_markers, signals::delay_phrases,
                                         signals::challenge_phrases, signals::virus_phrases, signals::autoreply_phrases});
    const std::vector<int> hits = scanner.count(t);
    ev.ndr_banners = std::min(hits[0], 3);
    ev.returned_marker = hits[1] > 0;
    ev.delay_phrase = hits[2] > 0;
    ev.challenge_phrase = hits[3] > 0;
    ev.virus_phrases = std::min(hits[4], 2);
    ev.mdn_phrase = t.find("was read on") != std::string::npos || t.find("has been displayed") != std::string::npos ||
                    t.find("was displayed") != std::string::npos;
    ev.autoreply_phrase = hits[5] > 0;
    // Report fields written as text: an RFC 5965 report whose second part is not labelled
    // message/feedback-report, or a delivery-status part that lost its MIME type. Fields at the
    // start of a line, as in a header section: prose that names them does not count.
    auto field_at_line_start = [&t](std::string_view name) {
        for (std::size_t p = t.find(name); p != std::string::npos; p = t.find(name, p + 1))
            if (p == 0 || t[p - 1] == '\n') return true;
        return false;
    };
    ev.arf_fields = field_at_line_start("feedback-type:") &&
                    (field_at_line_start("version:") || field_at_line_start("user-agent:"));
    ev.dsn_fields = field_at_line_start("final-recipient:") &&
                    (field_at_line_start("action:") || field_at_line_start("status:"));
}

// Amazon SES mails its bounce, complaint and delivery events as JSON from SNS. Only mail from
// Amazon's own domains is read this way: anyone can write that JSON into a message.
void read_ses_notification(context& cx) {
    std::string_view from = cx.from_address;
    std::size_t at = from.rfind('@');
    if (at == std::string_view::npos) return;
    std::string_view domain = from.substr(at + 1);
    if (!text::iends_with(domain, "amazonaws.com") && !text::iends_with(domain, "amazonses.com")) return;
    cx.ses = ses::parse_notification(cx.text, cx.lim.max_text_bytes, cx.lim.max_references);
}

void take_ses_references(context& cx) {
    result& r = cx.out;
    refs::unique_list ids(cx.ids_returned, cx.lim.max_references, r.flags);
    ids.add(normalize_message_id(cx.ses->message_id));
    ids.add(cx.ses->header_message_id);
    if (!cx.ids_returned.empty()) cx.returned_reason = "ref.msgid.ses_notification";
    r.recipients = std::move(cx.ses->recipients);
    if (r.reporting_mta.empty()) r.reporting_mta = cx.ses->reporting_mta;
    if (r.original_from.empty()) r.original_from = cx.ses->source;
}

// ---------------------------------------------------------------- references

// "from a by b with ESMTP id X for <bob@example.net>; date" -> "bob@example.net".
std::string received_for(std::string_view value) {
    std::string v = text::unfold(value);
    std::string_view s(v);
    if (std::size_t semi = s.rfind(';'); semi != std::string_view::npos) s = s.substr(0, semi);
    std::size_t p = text::ifind(s, " for ");
    if (p == std::string_view::npos) return {};
    std::string_view rest = trim(s.substr(p + 5));
    rest = rest.substr(0, rest.find_first_of(" \t"));
    return text::extract_address(rest);
}


void read_returned_original(context& cx) {
    const auto& ents = cx.doc.entities();
    const mime::header_section* first_seen = nullptr;
    bool first_whole = false;
    for (std::size_t i = 1; i < ents.size(); ++i) {
        const entity& e = ents[i];
        const mime::header_section* h = nullptr;
        if (e.message_level == 1 && e.parent >= 0 && ents[std::size_t(e.parent)].message_level == 0) {
            h = &e.headers;  // the embedded message itself
        } else if (e.message_level == 0 && is_returned_headers_type(e)) {
            // Header-only blobs often lack the final newline: without it the last field is lost.
            std::string owned(cx.doc.decoded_body(e));
            owned.append("\n\n");
            std::string_view kept = cx.doc.keep(std::move(owned));
            h = &cx.header_storage.emplace_back(mime::parse_header_section(kept, cx.lim, cx.out.flags));
        }
        if (h == nullptr || h->fields.empty()) continue;
        // message/partial carries a fragment: its body is not the original's.
        const bool whole = e.message_level == 1 && ents[std::size_t(e.parent)].type.subtype != "partial";
        if (first_seen == nullptr) {
            first_seen = h;
            first_whole = whole;
        }
        std::string id = normalize_message_id(h->get("message-id"));
        // The returned original's id is taken even when it equals the bounce's own: a copy
        // said to be ours is what the sent log must judge, not the detector.
        if (id.empty()) continue;
        if (cx.ids_returned.empty()) {
            cx.returned_headers = h;
            cx.returned_whole = whole;
            cx.returned_reason = e.message_level == 1 ? "ref.msgid.rfc822" : "ref.msgid.rfc822_headers";
        }
        cx.ids_returned.push_back(id);
    }
    if (cx.returned_headers == nullptr) {
        cx.returned_headers = first_seen;
        cx.returned_whole = first_whole;
    }
}

// The returned original's raw bytes: its fields are views into one buffer (the message, or a
// decoded part kept by the document), so the section runs from the first field to the line
// ending after the last one.
void copy_returned_original(context& cx) {
    const mime::header_section& h = *cx.returned_headers;
    result& r = cx.out;
    const char* begin = h.fields.front().name.data();
    const auto& last = h.fields.back();
    const char* end = last.value.data() + last.value.size();
    const char* limit = h.body.data() != nullptr ? h.body.data() : end;
    if (limit > end && *end == '\n') ++end;  // the last field's own line ending
    r.returned_headers.assign(begin, std::size_t(end - begin));
    // Whole only when nothing was cut: not the message, a part's decoding, nor this header.
    const bool cut = (r.flags & (flag_truncated | flag_header_too_large | flag_too_many_header_fields |
                                 flag_malformed_header | flag_unterminated_multipart)) != 0;
    if (cx.returned_whole && !cut && h.body.data() != nullptr && h.body.size() <= cx.lim.max_returned_body_bytes) {
        r.returned_body.assign(h.body);
        r.returned_body_complete = true;
    }
}

void fill_original_details(context& cx, const mime::header_section& h) {
    result& r = cx.out;
    if (r.original_from.empty()) r.original_from = text::extract_address(mime::decode_rfc2047(h.get("from")));
    if (r.original_return_path.empty()) r.original_return_path = text::extract_address(h.get("return-path"));
    if (r.original_subject.empty()) r.original_subject = mime::decode_rfc2047(h.get("subject"));
    refs::unique_list hosts(r.received_hosts, cx.lim.max_references, r.flags);
    for (const auto& f : h.fields)
        if (text::iequals(f.name, "received"))
            for (auto& host : refs::received_hosts(f.value)) hosts.add(std::move(host));
}

void read_quoted_original(context& cx) {
    if (cx.text.empty()) return;
    auto blocks = refs::quoted_header_blocks(cx.text, 8);
    bool details_taken = cx.returned_headers != nullptr;
    for (const auto& b : blocks) {
        std::string id = normalize_message_id(b.get("message-id"));
        if (!id.empty()) {
            cx.ids_quoted.push_back(id);
            cx.ev.quoted_original = true;
        } else if (!b.get("received").empty()) {
            cx.ev.quoted_original = true;
        }
        if (!details_taken && cx.ev.quoted_original) {
            result& r = cx.out;
            r.original_from = text::extract_address(mime::decode_rfc2047(b.get("from")));
            r.original_return_path = text::extract_address(b.get("return-path"));
            r.original_subject = mime::decode_rfc2047(b.get("subject"));
            cx.quoted_to = text::extract_address(mime::decode_rfc2047(b.get("to")));
            cx.quoted_for = received_for(b.get("received"));
            refs::unique_list hosts(r.received_hosts, cx.lim.max_references, r.flags);
            for (const auto& [name, value] : b.fields)
                if (text::iequals(name, "received"))
                    for (auto& host : refs::received_hosts(value)) hosts.add(std::move(host));
            details_taken = true;
        }
    }
}

// Last resort for reports whose MIME structure lies (a closing boundary that does not match,
// a part announced as text but holding the original): look for a quoted header block in the
// raw body, as a person reading the source would.
void read_raw_body_ids(context& cx) {
    const message_class k = cx.out.klass;
    if (k != message_class::dsn && k != message_class::ndr && k != message_class::virus_notice &&
        k != message_class::challenge && k != message_class::feedback)
        return;
    std::string_view raw = cx.doc.entities().front().headers.body.substr(0, cx.lim.max_text_bytes);
    refs::unique_list ids(cx.out.message_ids, cx.lim.max_references, cx.out.flags);
    for (const auto& b : refs::quoted_header_blocks(raw, 8)) ids.add(normalize_message_id(b.get("message-id")));
    if (!cx.out.message_ids.empty()) add_reason(cx.out, "ref.msgid.raw_body");
}

void read_own_threading(context& cx) {
    const auto& h = cx.doc.entities().front().headers;
    for (auto& id : refs::message_ids_in(h.get("in-reply-to")))
        if (id != cx.own_message_id) cx.ids_header.push_back(id);
    for (auto& id : refs::message_ids_in(h.get("references")))
        if (id != cx.own_message_id) cx.ids_header.push_back(id);
}

// The report fields written as text, from the first line that starts with one of `first`
// (lower case, with the colon) to the first line that is neither a field of RFC 3464 / 5965 /
// 8098 nor a continuation nor blank: a returned original's header ends it, and so does prose.
std::string_view report_block(std::string_view t, std::initializer_list<std::string_view> first) {
    std::size_t start = std::string_view::npos;
    for (auto name : first)
        for (std::size_t p = text::ifind(t, name); p != std::string_view::npos; p = text::ifind(t, name, p + 1))
            if (p == 0 || t[p - 1] == '\n') {
                start = std::min(start, p);
                break;
            }
    if (start == std::string_view::npos) return {};
    static constexpr std::string_view fields[] = {
        "reporting-mta", "dsn-gateway", "received-from-mta", "arrival-date", "original-envelope-id",
        "original-recipient", "final-recipient", "action", "status", "remote-mta", "diagnostic-code",
        "last-attempt-date", "final-log-id", "will-retry-until", "original-message-id", "feedback-type",
        "user-agent", "version", "original-mail-from", "original-rcpt-to", "source-ip", "incidents",
        "authentication-results", "reported-domain", "reported-uri", "reporting-ua", "mdn-gateway",
        "disposition", "failure", "error", "warning"};
    std::string_view rest = t.substr(start);
    text::line_reader lines(rest);
    std::string_view line;
    std::size_t end = 0;
    while (lines.next(line)) {
        const std::size_t line_end = std::size_t(line.data() - rest.data()) + line.size();
        if (trim(line).empty() || line[0] == ' ' || line[0] == '\t') {
            end = line_end;
            continue;
        }
        std::size_t colon = line.find(':');
        if (colon == std::string_view::npos || colon == 0 || colon > 40) break;
        std::string_view name = line.substr(0, colon);
        bool known = text::istarts_with(name, "x-");
        for (auto f : fields) known = known || text::iequals(name, f);
        if (!known) break;
        end = line_end;
    }
    return rest.substr(0, end);
}

void take_dsn_recipients(context& cx, refs::delivery_status& ds) {
    result& r = cx.out;
    for (auto& rcpt : ds.recipients) {
        // A report's own Final-Recipient is dropped only when it is a list's return address; the
        // bounce's own mailbox is demoted below (a message to oneself does bounce to oneself).
        if (is_list_return_address(rcpt.address, cx.own_domains)) continue;
        if (r.recipients.size() >= cx.lim.max_references) {
            r.flags |= flag_too_many_references;
            break;
        }
        r.recipients.push_back(std::move(rcpt));
    }
}

void read_delivery_status(context& cx) {
    const auto& ents = cx.doc.entities();
    for (const entity& e : ents) {
        if (e.message_level != 0 || e.type.type != "message" ||
            (e.type.subtype != "delivery-status" && e.type.subtype != "global-delivery-status"))
            continue;
        auto ds = refs::parse_delivery_status(cx.doc.decoded_body(e), cx.lim, cx.out.flags);
        result& r = cx.out;
        if (r.reporting_mta.empty()) r.reporting_mta = ds.reporting_mta;
        if (r.arrival_date.empty()) r.arrival_date = ds.arrival_date;
        if (r.original_envelope_id.empty()) r.original_envelope_id = ds.original_envelope_id;
        if (!ds.original_message_id.empty() && ds.original_message_id != cx.own_message_id) {
            cx.ids_quoted.insert(cx.ids_quoted.begin(), ds.original_message_id);
            add_reason(r, "ref.msgid.dsn_field");
        }
        take_dsn_recipients(cx, ds);
    }
    // The fields as text: a status part without its MIME type, or a report whose boundaries
    // do not match (the whole body is then one part). Read from the first field on.
    if (cx.out.recipients.empty()) {
        auto from_text = [&](std::string_view t) {
            std::string_view block = report_block(t, {"reporting-mta:", "final-recipient:"});
            if (block.empty()) return;
            auto ds = refs::parse_delivery_status(block, cx.lim, cx.out.flags);
            if (cx.out.reporting_mta.empty()) cx.out.reporting_mta = ds.reporting_mta;
            take_dsn_recipients(cx, ds);
        };
        from_text(cx.text);
        if (cx.out.recipients.empty())
            from_text(cx.doc.entities().front().headers.body.substr(0, cx.lim.max_text_bytes));
    }
    if (cx.out.recipients.empty() && cx.ev.report_dsn) cx.out.flags |= flag_bad_delivery_status;
}

// Read the MDN's Original-Message-ID and the ARF report's fields the same way: from the
// report part, or, when no part has the report's type, from the fields written as text.
void read_report_fields(context& cx, std::string_view subtype) {
    auto read_one = [&](std::string_view report) {
        auto ds = refs::parse_delivery_status(report, cx.lim, cx.out.flags);
        if (!ds.original_message_id.empty() && ds.original_message_id != cx.own_message_id)
            cx.ids_quoted.insert(cx.ids_quoted.begin(), ds.original_message_id);
        if (cx.out.reporting_mta.empty()) cx.out.reporting_mta = ds.reporting_mta;
        if (!cx.out.recipients.empty()) return;
        std::string body(report);
        body.append("\n\n");
        auto fields = mime::parse_header_section(body, cx.lim, cx.out.flags);
        if (subtype == "feedback-report") {
            // ARF names the complaining recipient in Original-Rcpt-To (RFC 5965 3.2).
            std::string rcpt = text::extract_address(fields.get("original-rcpt-to"));
            if (!rcpt.empty() && !is_own_recipient(cx, rcpt)) cx.out.recipients.emplace_back().address = rcpt;
        } else {
            // An MDN is issued for its Final-Recipient (RFC 8098 3.2.4); its Disposition says
            // what happened ("manual-action/MDN-sent-manually; displayed").
            for (auto& rcpt : ds.recipients) {
                if (rcpt.address.empty() || cx.out.recipients.size() >= cx.lim.max_references) continue;
                rcpt.diagnostic = text::unfold(fields.get("disposition"));
                cx.out.recipients.push_back(std::move(rcpt));
            }
        }
    };
    bool found = false;
    for (const entity& e : cx.doc.entities()) {
        if (e.message_level != 0 || e.type.type != "message" || e.type.subtype.find(subtype) == std::string::npos) continue;
        found = true;
        read_one(cx.doc.decoded_body(e));
    }
    if (!found && subtype == "feedback-report") read_one(report_block(cx.text, {"feedback-type:"}));
}

// Who the message was about when no report says it: the returned original's To (for a
// complaint, the complainer; for a bounce that names nobody, such as Google Groups', the
// address written to); an auto-reply comes from the person our message reached.
void read_implied_recipient(context& cx) {
    result& r = cx.out;
    if (!r.recipients.empty()) return;
    std::string addr;
    const bool report = r.klass == message_class::feedback || r.klass == message_class::ndr ||
                        r.klass == message_class::dsn || r.klass == message_class::virus_notice;
    if (report && cx.returned_headers != nullptr) {
        // The envelope recipient the returning MTA's own Received line names ("for <bob@x>",
        // RFC 5321 4.4), then the original's To.
        for (const auto& f : cx.returned_headers->fields) {
            if (!text::iequals(f.name, "received")) continue;
            addr = received_for(f.value);
            break;  // only the topmost: the hop that received it last
        }
        if (addr.empty() || is_own_recipient(cx, addr))
            addr = text::extract_address(mime::decode_rfc2047(cx.returned_headers->get("to")));
    } else if (report && (!cx.quoted_to.empty() || !cx.quoted_for.empty())) {
        addr = cx.quoted_for.empty() || is_own_recipient(cx, cx.quoted_for) ? cx.quoted_to : cx.quoted_for;
    }
    if (report && !addr.empty() && is_own_recipient(cx, addr)) addr.clear();
    if (r.klass == message_class::autoreply && !is_daemon_address(cx.from_address)) addr = cx.from_address;
    if (!addr.empty()) r.recipients.emplace_back().address = addr;
}

// Addresses named in a non-standard bounce's text, before the quoted original starts.
void read_text_recipients(context& cx) {
    result& r = cx.out;
    std::string_view t = cx.text;
    // Stop where the returned original begins, so its From/To are not taken as recipients.
    std::size_t stop = t.size();
    for (auto marker : signals::returned_markers) {
        // Sendmail's "The original message was received at ..." opens its report; the
        // copy comes later.
        if (marker == "the original message was") continue;
        std::size_t p = cx.lower_text.find(marker);
        if (p != std::string::npos && p < stop) stop = p;
    }
    for (const auto& b : refs::quoted_header_blocks(t.substr(0, stop), 1)) stop = std::min(stop, b.offset);
    t = t.substr(0, stop);

    const auto& top = cx.doc.entities().front().headers;
    std::string bounce_to = text::extract_address(top.get("to"));
    std::string bounce_from = text::extract_address(top.get("from"));
    const bool delayed = cx.ev.delay_phrase;
    std::vector<std::string_view> lines;
    text::line_reader reader(t);
    std::string_view line;
    while (reader.next(line)) lines.push_back(line);
    for (std::size_t i = 0; i < lines.size() && r.recipients.size() < cx.lim.max_references; ++i) {
        std::string_view l = lines[i];
        std::size_t at = l.find('@');
        while (at != std::string_view::npos) {
            std::size_t b = at, e = at + 1;
            auto addr_char = [](char c) {
                return text::is_alpha(c) || text::is_digit(c) || c == '.' || c == '-' || c == '_' || c == '+' || c == '=' ||
                       c == '\'' || c == '/' || c == '%' || c == '!' || c == '#' || c == '&' || c == '*' || c == '?' ||
                       c == '^' || c == '`' || c == '{' || c == '|' || c == '}' || c == '~';
            };
            while (b > 0 && addr_char(l[b - 1])) --b;
            while (e < l.size() && (addr_char(l[e]) && l[e] != '\'')) ++e;
            std::string addr = text::extract_address(l.substr(b, e - b));
            at = l.find('@', e);
            if (addr.empty() || addr.find('.', addr.find('@')) == std::string::npos) continue;
            if (is_daemon_address(addr) || addr == bounce_to || addr == bounce_from || addr == r.original_from ||
                is_own_recipient(cx, addr))
                continue;
            // The reason usually stands on the same line or within the next few.
            auto read_status_near = [&](recipient_report& rr) {
                for (std::size_t k = i; k < std::min(lines.size(), i + 4) && rr.status.empty(); ++k) {
                    rr.status = refs::status_code_in(lines[k]);
                    if (!rr.status.empty()) rr.diagnostic = std::string(trim(lines[k]));
                }
            };
            auto seen = std::find_if(r.recipients.begin(), r.recipients.end(), [&](auto& x) { return x.address == addr; });
            if (seen != r.recipients.end()) {
                // Named again (Exchange: once for people, once for administrators): the
                // status may stand by the second mention.
                if (seen->status.empty()) {
                    read_status_near(*seen);
                    if (seen->status.rfind("4.", 0) == 0) seen->action = recipient_action::delayed;
                }
                continue;
            }
            // Several addresses may stand on one line: the bound is checked for each of them.
            if (r.recipients.size() >= cx.lim.max_references) {
                r.flags |= flag_too_many_references;
                break;
            }
            recipient_report rr;
            rr.address = addr;
            read_status_near(rr);
            rr.action = (delayed || rr.status.rfind("4.", 0) == 0) ? recipient_action::delayed : recipient_action::failed;
            r.recipients.push_back(std::move(rr));
        }
    }
}

// ---------------------------------------------------------------- the decision

message_class decide(context& cx) {
    const evidence& ev = cx.ev;
    result& r = cx.out;
    const bool sender = ev.sender_signal();
    if (ev.null_sender) add_reason(r, "envelope.null_sender");
    if (ev.null_return_path) add_reason(r, "header.null_return_path");
    if (ev.daemon_from) add_reason(r, "header.from_daemon");

    if (cx.ses) {
        bool complaint = cx.ses->type == ses::notification_type::complaint;
        add_reason(r, complaint ? std::string_view("feedback.ses_notification") : std::string_view("ndr.ses_notification"));
        return complaint ? message_class::feedback : message_class::ndr;
    }
    // An RFC 5965 report: the part's type, or its fields in a part of a multipart/report (or
    // beside the returned message) that was not labelled message/feedback-report.
    const bool arf_text = ev.arf_fields && (ev.multipart_report || ev.returned_part) && !ev.list_human;
    if (ev.report_feedback || arf_text) {
        add_reason(r, "feedback.rfc5965");
        return message_class::feedback;
    }
    if (ev.feedback_subject && ev.returned_part && !ev.list_human) {
        add_reason(r, "feedback.heuristic");
        return message_class::feedback;
    }
    if (ev.report_mdn) {
        add_reason(r, "mdn.rfc8098");
        return message_class::mdn;
    }
    // A challenge-response system may dress its challenge as a delivery report: its own header,
    // or a challenge subject with a challenge sentence, wins over the report's shape.
    const bool challenge_text = ev.challenge_subject && ev.challenge_phrase && !ev.list_human;
    // A newsletter (list fields, no daemon sender) from security@ is not an AV gateway.
    const bool virus_sender = ev.virus_sender && !ev.list_mail;
    const bool virus_evidence = !ev.list_human && ((ev.virus_subject && (ev.virus_phrases > 0 || virus_sender)) ||
                                                   (virus_sender && ev.virus_phrases > 0));
    // A multipart/report whose report-type is missing or wrong, with RFC 3464 fields in it, is
    // a DSN all the same (its fields are read from the text below).
    const bool dsn_text = ev.multipart_report && ev.dsn_fields && !ev.report_mdn;
    if (ev.report_dsn || dsn_text) {
        if (ev.challenge_header || (challenge_text && !ev.ndr_subject)) {
            add_reason(r, ev.challenge_header ? std::string_view("challenge.header") : std::string_view("challenge.heuristic"));
            return message_class::challenge;
        }
        add_reason(r, ev.report_dsn ? std::string_view("dsn.rfc3464") : std::string_view("dsn.report_fields"));
        if (virus_evidence) {
            add_reason(r, "virus.notice");
            return message_class::virus_notice;
        }
        return message_class::dsn;
    }
    if (ev.challenge_header) {
        add_reason(r, "challenge.header");
        return message_class::challenge;
    }
    // On its own (no challenge header), a challenge answers a message: from a null or daemon
    // sender, marked automatic, in reply to it, or returning it. A sign-up's "verify your
    // email, click the link below to confirm" answers nothing.
    if (challenge_text && !ev.reply_subject && !ev.list_mail &&
        (sender || ev.auto_generated || ev.threading || ev.returned_signal())) {
        add_reason(r, "challenge.heuristic");
        return message_class::challenge;
    }
    // A list's post or a newsletter quoting a notice is not one: from a list, only a returned part counts.
    const bool virus_returned = ev.list_mail && !sender ? ev.returned_part : ev.returned_signal();
    if (virus_evidence && (sender || virus_returned || virus_sender) && !ev.human_mailer) {
        add_reason(r, "virus.notice");
        return message_class::virus_notice;
    }

    // Non-standard bounce: two independent signals. A person's reply ("Re: undeliverable")
    // never counts by subject alone. A person's post to a list (a MUA, list fields, no daemon
    // sender) is never one by wording: only the report structures above name it a bounce.
    const bool subject = ev.ndr_subject && !ev.reply_subject;
    const bool body = ev.ndr_banners > 0;
    const bool strong_body = ev.ndr_banners >= 2;
    const bool returned = ev.returned_signal();
    bool ndr = false;
    if (sender && (subject || body || returned)) ndr = true;
    if (subject && (body || returned) && !ev.human_mailer) ndr = true;
    if (strong_body && returned && !ev.human_mailer && !ev.reply_subject) ndr = true;
    if (ndr && ev.autoreply_header && !subject && !strong_body) ndr = false;  // an auto-reply quoting the original
    // An out-of-office reply from a null sender that quotes the original (or names a mailbox
    // in its sentences) is still an auto-reply, unless an NDR subject or MTA sentences say more.
    if (ndr && ev.autoreply_prefix && ev.autoreply_phrase && !subject && !strong_body) ndr = false;
    if (ev.list_human) ndr = false;
    // Newsletters (list fields, no daemon sender) about bounces: only a returned part counts.
    if (ev.list_mail && !sender && !ev.returned_part) ndr = false;

    if (ndr) {
        if (subject) add_reason(r, "ndr.heuristic.subject");
        if (body) add_reason(r, "ndr.heuristic.body");
        if (ev.returned_part) add_reason(r, "ndr.returned_part");
        else if (ev.returned_marker || ev.quoted_original) add_reason(r, "ndr.returned_inline");
        return message_class::ndr;
    }
    if (ev.autoreply_header) {
        add_reason(r, "autoreply.header");
        return message_class::autoreply;
    }
    if (!ev.list_mail && !ev.reply_subject) {
        // RFC 3834 says an auto-reply goes to the Return-Path, from a null sender (its 3.3);
        // vacation(1) and Exchange mark theirs as automatic (Precedence: bulk,
        // X-Auto-Response-Suppress). Without such a sign, an autoresponder's subject prefix and
        // its sentence together, on a reply to something (In-Reply-To/References) or from no
        // person's mail program.
        const bool automatic_sender = sender || ev.auto_generated || ev.automatic;
        if (ev.autoreply_subject && automatic_sender) {
            add_reason(r, "autoreply.subject");
            return message_class::autoreply;
        }
        if (ev.autoreply_prefix && ev.autoreply_phrase && (ev.threading || !ev.mua)) {
            add_reason(r, "autoreply.subject");
            add_reason(r, "autoreply.body");
            return message_class::autoreply;
        }
    }
    // The sentence alone: only from a null sender or with Auto-Submitted (Precedence: bulk is
    // every digest's too); then a "Re:" subject is the autoresponder's too (vacation programs
    // answer "Re: <subject>").
    if (!ev.list_mail && ev.autoreply_phrase && (ev.null_sender || ev.null_return_path || ev.auto_generated) &&
        !ev.daemon_from) {
        add_reason(r, "autoreply.body");
        return message_class::autoreply;
    }
    if (ev.mdn_phrase && sender) {
        add_reason(r, "mdn.heuristic");
        return message_class::mdn;
    }
    return message_class::not_bounce;
}

}  // namespace

result classify(std::string_view message, const envelope& env, const limits& lim) {
    result r;
    if (message.size() > lim.max_message_bytes) {
        message = message.substr(0, lim.max_message_bytes);
        r.flags |= flag_truncated;
    }
    if (message.find('\0') != std::string_view::npos) r.flags |= flag_nul_byte;
    std::string normalized_storage;
    std::string_view msg = normalize_line_endings(message, normalized_storage);

    mime::mime_document doc(msg, lim);
    context cx(lim, doc, r);
    read_top_header(cx, env);
    read_structure(cx);
    gather_text(cx);
    read_text_signals(cx);
    read_ses_notification(cx);
    read_returned_original(cx);
    read_quoted_original(cx);

    r.klass = decide(cx);

    if (r.klass != message_class::not_bounce) {
        if (cx.ses) take_ses_references(cx);
        if (cx.returned_headers) {
            fill_original_details(cx, *cx.returned_headers);
            copy_returned_original(cx);
        }
        read_own_recipients(cx);
        if (r.klass == message_class::dsn || cx.ev.report_dsn) read_delivery_status(cx);
        if (r.klass == message_class::mdn) read_report_fields(cx, "disposition-notification");
        if (r.klass == message_class::feedback) read_report_fields(cx, "feedback-report");
        read_own_threading(cx);
        if ((r.klass == message_class::ndr || r.klass == message_class::virus_notice) && r.recipients.empty())
            read_text_recipients(cx);
        demote_delivered_to(cx);
        if (r.klass != message_class::autoreply && !r.recipients.empty() &&
            std::all_of(r.recipients.begin(), r.recipients.end(),
                        [&](const recipient_report& x) { return in_list(cx.delivered_to, x.address); })) {
            // Only the mailbox the bounce was delivered to is named: the returned original may
            // say better (read_implied_recipient); if not, that mailbox it is.
            std::vector<recipient_report> stash = std::move(r.recipients);
            r.recipients.clear();
            read_implied_recipient(cx);
            if (r.recipients.empty() || in_list(cx.delivered_to, r.recipients.front().address))
                r.recipients = std::move(stash);
        }
        read_implied_recipient(cx);
        if (!cx.ids_returned.empty()) add_reason(r, cx.returned_reason);
        if (!cx.ids_quoted.empty() && cx.ids_returned.empty()) add_reason(r, "ref.msgid.inline");
        if (!cx.ids_header.empty() && cx.ids_returned.empty() && cx.ids_quoted.empty())
            add_reason(r, "ref.msgid.in_reply_to");
        refs::unique_list ids(r.message_ids, lim.max_references, r.flags);
        for (auto* list : {&cx.ids_returned, &cx.ids_quoted, &cx.ids_header})
            for (auto& id : *list) ids.add(std::move(id));
        if (r.message_ids.empty()) read_raw_body_ids(cx);
        if (r.message_ids.empty()) add_reason(r, "ref.none");
    }
    r.flags |= doc.flags();
    return r;
}

}  // namespace ndrguard::detector
