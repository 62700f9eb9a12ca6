// libFuzzer target over the detector's entry points: classify() with and without a null
// envelope sender, under the default limits and under tiny ones (so every "limit hit" path
// is reached on small inputs), and the mbox splitter. Each result is checked against the
// detector's invariants (check_invariants below): a broken one aborts, under libFuzzer and in
// the sanitized regression replay alike.
#include <ndrguard/detector/detector.hpp>
#include <ndrguard/detector/mbox.hpp>

#include <algorithm>
#include <iterator>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace nd = ndrguard::detector;

static nd::limits tiny_limits() {
    nd::limits lim;
    lim.max_message_bytes = 4096;
    lim.max_header_bytes = 512;
    lim.max_header_fields = 8;
    lim.max_mime_depth = 3;
    lim.max_mime_parts = 6;
    lim.max_text_bytes = 256;
    lim.max_decoded_bytes = 1024;
    lim.max_references = 2;
    return lim;
}

// Touch every output so the sanitizers see each string the detector built.
static std::size_t consume(const nd::result& r) {
    std::size_t n = nd::to_string(r.klass).size() + r.reporting_mta.size() + r.subject.size() +
                    r.original_from.size() + r.original_subject.size() + r.arrival_date.size();
    for (const auto& id : r.message_ids) n += id.size();
    for (const auto& rcpt : r.recipients)
        n += rcpt.address.size() + rcpt.status.size() + rcpt.diagnostic.size() +
             nd::to_string(rcpt.action).size();
    for (const auto& h : r.received_hosts) n += h.size();
    for (auto reason : r.reasons) n += reason.size();
    for (auto name : nd::flag_names(r.flags)) n += name.size();
    return n;
}

[[noreturn]] static void broken(const char* invariant) {
    std::fprintf(stderr, "detector invariant broken: %s\n", invariant);
    std::abort();
}
static void require(bool holds, const char* invariant) {
    if (!holds) broken(invariant);
}

// Every tag classify() may give (grep add_reason detector/src). A new tag goes here too.
constexpr std::string_view known_reasons[] = {
    "autoreply.body", "autoreply.header", "autoreply.subject", "challenge.header", "challenge.heuristic",
    "dsn.rfc3464", "dsn.report_fields", "envelope.null_sender", "feedback.heuristic", "feedback.rfc5965",
    "feedback.ses_notification", "header.from_daemon", "header.null_return_path",
    "mdn.heuristic", "mdn.rfc8098", "ndr.heuristic.body", "ndr.heuristic.subject",
    "ndr.returned_inline", "ndr.returned_part", "ndr.ses_notification", "ref.msgid.dsn_field",
    "ref.msgid.in_reply_to", "ref.msgid.inline", "ref.msgid.raw_body", "ref.msgid.rfc822",
    "ref.msgid.rfc822_headers", "ref.msgid.ses_notification", "ref.none", "virus.notice"};

// What the detector reads may be converted to UTF-8 first (a one-byte charset, UTF-16, invalid
// bytes made U+FFFD): at most 3 bytes per input byte. Decoding base64/QP only shrinks.
static std::size_t converted_bound(std::string_view message) { return 3 * message.size(); }

// A reference: not empty, one line, no longer than what it could have been read from. (Other
// bytes, NUL included, are kept as they came: the store escapes them.)
static bool well_formed(const std::string& ref, std::string_view message) {
    return !ref.empty() && ref.size() <= converted_bound(message) && ref.find_first_of("\r\n") == std::string::npos;
}

template <class List>
static bool unique(List list) {
    std::sort(list.begin(), list.end());
    return std::adjacent_find(list.begin(), list.end()) == list.end();
}

static bool same(const nd::recipient_report& a, const nd::recipient_report& b) {
    return a.address == b.address && a.original_address == b.original_address && a.action == b.action &&
           a.status == b.status && a.diagnostic == b.diagnostic && a.remote_mta == b.remote_mta;
}

static bool same(const nd::result& a, const nd::result& b) {
    return a.klass == b.klass && a.message_ids == b.message_ids &&
           std::equal(a.recipients.begin(), a.recipients.end(), b.recipients.begin(), b.recipients.end(),
                      [](const auto& x, const auto& y) { return same(x, y); }) &&
           a.reporting_mta == b.reporting_mta && a.arrival_date == b.arrival_date &&
           a.original_envelope_id == b.original_envelope_id && a.original_from == b.original_from &&
           a.original_return_path == b.original_return_path && a.original_subject == b.original_subject &&
           a.received_hosts == b.received_hosts && a.subject == b.subject && a.reasons == b.reasons &&
           a.flags == b.flags;
}

// What holds for any input: the class is one of the classes; references are well formed,
// unique, within the limit and no longer than the input could make them; reasons and flags
// come from the known sets; the same input gives the same result again.
static const nd::result& check_invariants(const nd::result& r, std::string_view message, const nd::envelope& env,
                                          const nd::limits& lim) {
    require(nd::parse_message_class(nd::to_string(r.klass)) == r.klass, "class in range");
    require(r.message_ids.size() <= lim.max_references, "message ids within max_references");
    require(r.recipients.size() <= lim.max_references, "recipients within max_references");
    require(r.received_hosts.size() <= lim.max_references, "received hosts within max_references");
    for (const auto& id : r.message_ids) {
        require(well_formed(id, message), "message id well formed");
        require(id.size() >= 3 && id.size() <= 998, "message id within normalize_message_id's 3-998 bytes");
    }
    require(unique(r.message_ids), "message ids unique");
    for (const auto& h : r.received_hosts) {
        require(well_formed(h, message), "received host well formed");
        require(std::none_of(h.begin(), h.end(), [](char c) { return c >= 'A' && c <= 'Z'; }), "received host lower case");
    }
    require(unique(r.received_hosts), "received hosts unique");
    for (const auto& rc : r.recipients) {
        require(rc.address.size() <= converted_bound(message), "recipient address no longer than the message");
        require(rc.status.size() <= converted_bound(message), "status no longer than the message");
        require(rc.action <= nd::recipient_action::expanded, "recipient action in range");
    }
    for (auto tag : r.reasons)
        require(!tag.empty() && std::find(std::begin(known_reasons), std::end(known_reasons), tag) != std::end(known_reasons),
                "reason from the known set");
    require(unique(r.reasons), "reasons unique");
    require(nd::flag_names(r.flags).size() == std::size_t(std::popcount(r.flags)), "flags from the known set");
    require(same(r, nd::classify(message, env, lim)), "deterministic: the same result twice");
    return r;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view message(reinterpret_cast<const char*>(data), size);
    static const nd::limits tiny = tiny_limits();

    volatile std::size_t sink = 0;
    static const nd::limits defaults{};
    const nd::envelope unknown{}, null_sender{std::string()};
    sink = sink + consume(check_invariants(nd::classify(message), message, unknown, defaults));
    sink = sink + consume(check_invariants(nd::classify(message, null_sender, tiny), message, null_sender, tiny));
    for (auto part : nd::split_mbox(message, 16)) sink = sink + part.size();
    // The streaming splitter gives split_mbox's messages (cut to its bound), whatever the
    // chunks (their sizes from the input's first byte).
    if (nd::looks_like_mbox(message)) {
        auto expected = nd::split_mbox(message);
        const std::size_t chunk = 1 + (size ? data[0] % 7 : 0), cap = 64;
        std::size_t n = 0;
        nd::mbox_stream stream(cap);
        auto check = [&](std::string_view m, std::size_t full) {
            if (n >= expected.size() || m != expected[n].substr(0, cap) || full != expected[n].size()) __builtin_trap();
            ++n;
        };
        for (std::size_t i = 0; i < message.size(); i += chunk) stream.feed(message.substr(i, chunk), check);
        stream.finish(check);
        if (n != expected.size()) __builtin_trap();
    }
    sink = sink + nd::normalize_message_id(message.substr(0, 512)).size();
    return 0;
}
