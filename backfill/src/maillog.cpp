#include "ndrguard/backfill/maillog.hpp"

#include <array>

namespace ndrguard::backfill {

namespace {

using namespace std::chrono;

constexpr std::array<std::string_view, static_cast<std::size_t>(skip_reason::count_)> skip_names = {
    "too_long", "not_text", "no_header", "not_postfix"};
constexpr std::array<std::string_view, static_cast<std::size_t>(drop_reason::count_)> drop_names = {
    "not_ours", "reinjected", "seen_inbound", "origin_unknown", "no_message_id", "never_sent", "evicted", "incomplete_at_end"};

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alnum(char c) { return is_digit(c) || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }

// A cursor over the line; every read is bounds-checked.
struct cursor {
    std::string_view s;
    std::size_t i = 0;
    bool done() const { return i >= s.size(); }
    char peek() const { return done() ? '\0' : s[i]; }
    bool eat(char c) {
        if (peek() != c || done()) return false;
        ++i;
        return true;
    }
    bool eat(std::string_view word) {
        if (i > s.size()) return false;
        if (s.substr(i, word.size()) != word) return false;
        i += word.size();
        return true;
    }
    // Exactly n digits.
    bool digits(std::size_t n, int& out) {
        if (i + n > s.size()) return false;
        int v = 0;
        for (std::size_t k = 0; k < n; ++k) {
            if (!is_digit(s[i + k])) return false;
            v = v * 10 + (s[i + k] - '0');
        }
        out = v;
        i += n;
        return true;
    }
    // A token up to the next space (non-empty).
    std::string_view token() {
        const std::size_t start = i;
        while (!done() && s[i] != ' ') ++i;
        return s.substr(start, i - start);
    }
    std::string_view rest() const { return done() ? std::string_view{} : s.substr(i); }
};

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
std::int64_t days_from_civil(int y, int m, int d) {
    y -= m <= 2;
    const int era = (y >= 0 ? y : y - 399) / 400;
    const int yoe = y - era * 400;
    const int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return static_cast<std::int64_t>(era) * 146097 + doe - 719468;
}

int year_of(time_point t) {
    const auto days = floor<std::chrono::days>(t.time_since_epoch()).count();
    // civil_from_days, year only
    const std::int64_t z = days + 719468;
    const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const std::int64_t doe = z - era * 146097;
    const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const std::int64_t mp = (5 * doy + 2) / 153;
    const std::int64_t m = mp < 10 ? mp + 3 : mp - 9;
    return static_cast<int>(yoe + era * 400 + (m <= 2 ? 1 : 0));
}

bool valid_date(int y, int mo, int d, int h, int mi, int s) {
    static constexpr int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    // system_clock counts nanoseconds in 64 bits: it ends in 2262.
    return y >= 1970 && y <= 2200 && mo >= 1 && mo <= 12 && d >= 1 && d <= mdays[mo - 1] && h <= 23 && mi <= 59 &&
           s <= 60;
}

time_point make_time(int y, int mo, int d, int h, int mi, int s) {
    const std::int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
    return time_point(duration_cast<system_clock::duration>(seconds(secs)));
}

void skip_fraction(cursor& c) {
    if (!c.eat('.')) return;
    for (int n = 0; n < 9 && is_digit(c.peek()); ++n) ++c.i;
}

bool clock_time(cursor& c, int& h, int& mi, int& s) {
    return c.digits(2, h) && c.eat(':') && c.digits(2, mi) && c.eat(':') && c.digits(2, s);
}

// "2026-12-02T04:42:55[.ffffff](Z|+HH:MM|-HHMM)"
bool iso_time(cursor& c, time_point& at) {
    int y, mo, d, h, mi, s;
    if (!(c.digits(4, y) && c.eat('-') && c.digits(2, mo) && c.eat('-') && c.digits(2, d) && c.eat('T') &&
          clock_time(c, h, mi, s)))
        return false;
    skip_fraction(c);
    int offset_minutes = 0;
    if (!c.eat('Z')) {
        const char sign = c.peek();
        if (sign != '+' && sign != '-') return false;
        ++c.i;
        int oh, om;
        if (!c.digits(2, oh)) return false;
        c.eat(':');
        if (!c.digits(2, om) || oh > 23 || om > 59) return false;
        offset_minutes = (sign == '+' ? 1 : -1) * (oh * 60 + om);
    }
    if (!valid_date(y, mo, d, h, mi, s)) return false;
    at = make_time(y, mo, d, h, mi, s) - minutes(offset_minutes);
    return true;
}

// "Dec  2 04:42:55" or "Dec 02 04:42:55[.ffffff]": local time, no year.
bool syslog_time(cursor& c, const clock_context& clock, time_point& at) {
    static constexpr std::string_view months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    int mo = 0;
    for (int k = 0; k < 12 && !mo; ++k)
        if (c.eat(months[k])) mo = k + 1;
    if (!mo || !c.eat(' ')) return false;
    int d = 0;
    if (c.eat(' ')) {
        if (!c.digits(1, d)) return false;
    } else if (!c.digits(2, d) && !c.digits(1, d)) {
        return false;
    }
    int h, mi, s;
    if (!c.eat(' ') || !clock_time(c, h, mi, s)) return false;
    skip_fraction(c);
    const int ref_year = year_of(clock.reference);
    int y = ref_year;
    if (!valid_date(y, mo, d, h, mi, s) && !(mo == 2 && d == 29)) return false;
    auto local = [&](int year) { return make_time(year, mo, d, h, mi, s) - clock.utc_offset; };
    // Feb 29 exists only in some years: take the latest leap year not after the reference.
    auto leap = [](int year) { return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0; };
    if (mo == 2 && d == 29)
        while (!leap(y)) --y;
    at = local(y);
    if (at > clock.reference + hours(24)) {
        --y;
        if (mo == 2 && d == 29)
            while (!leap(y)) --y;
        at = local(y);
    }
    return true;
}

// "postfix/smtpd[123]:", "postfix/reinject/smtpd[123]:", "postfix-out/qmgr:" -> "smtpd"...
bool postfix_tag(std::string_view tag, std::string_view& program) {
    if (tag.substr(0, 7) != "postfix") return false;
    const std::size_t slash = tag.rfind('/');
    if (slash == std::string_view::npos) return false;
    program = tag.substr(slash + 1);
    return !program.empty();
}

// A Postfix queue id: short (hex, upper case) or long (enable_long_queue_ids: letters and
// digits), never a word such as "warning".
bool queue_id_like(std::string_view q) {
    if (q.size() < 5 || q.size() > 20) return false;
    bool digit = false, hex_upper = true;
    for (char ch : q) {
        if (!is_alnum(ch)) return false;
        digit |= is_digit(ch);
        hex_upper &= is_digit(ch) || (ch >= 'A' && ch <= 'F');
    }
    return hex_upper ? q.size() >= 6 : (digit && q.size() >= 10);
}

// "NAME[ADDR]" -> ADDR (without Postfix's "IPv6:" prefix).
std::string_view bracketed_address(std::string_view s) {
    const std::size_t open = s.find('[');
    const std::size_t close = s.find(']', open == std::string_view::npos ? 0 : open);
    if (open == std::string_view::npos || close == std::string_view::npos) return {};
    std::string_view a = s.substr(open + 1, close - open - 1);
    if (a.substr(0, 5) == "IPv6:") a.remove_prefix(5);
    return a;
}

// The value of `key=` in a ", "-separated list of attributes (the first one may start the text).
std::string_view attribute(std::string_view text, std::string_view key) {
    std::size_t at = 0;
    while (at < text.size()) {
        if (text.substr(at, key.size()) == key) {
            const std::size_t start = at + key.size();
            std::size_t end = text.find(", ", start);
            return text.substr(start, (end == std::string_view::npos ? text.size() : end) - start);
        }
        const std::size_t next = text.find(", ", at);
        if (next == std::string_view::npos) break;
        at = next + 2;
    }
    return {};
}

std::string_view angle_value(std::string_view v) {
    if (v.size() >= 2 && v.front() == '<') {
        const std::size_t close = v.find('>');
        if (close != std::string_view::npos) return v.substr(1, close - 1);
    }
    return v;
}

void classify(log_line& l, std::string_view text) {
    if (text == "removed") {
        l.kind = line_kind::removed;
    } else if (text.substr(0, 7) == "client=") {
        l.kind = line_kind::client;
        // Behind a content filter or proxy, XFORWARD's orig_client is the real client.
        std::string_view orig = attribute(text, "orig_client=");
        l.value = bracketed_address(orig.empty() ? attribute(text, "client=") : orig);
        l.authenticated = !attribute(text, "sasl_username=").empty();
        l.reinjected = !attribute(text, "orig_queue_id=").empty();
    } else if (l.program == "pickup" && text.substr(0, 4) == "uid=" && text.find(" from=<") != std::string_view::npos) {
        l.kind = line_kind::pickup;
        l.value = angle_value(text.substr(text.find(" from=<") + 6));
    } else if (text.substr(0, 11) == "message-id=") {
        l.kind = line_kind::message_id;
        l.value = text.substr(11);
    } else if (l.program == "qmgr" && text.substr(0, 6) == "from=<") {
        l.kind = line_kind::envelope;
        l.value = angle_value(attribute(text, "from="));
    } else if (text.substr(0, 4) == "to=<" && attribute(text, "status=").substr(0, 5) == "sent ") {
        l.kind = line_kind::sent;
        l.value = angle_value(attribute(text, "to="));
    }
}

}  // namespace

std::string_view skip_reason_name(skip_reason r) { return skip_names[static_cast<std::size_t>(r)]; }
std::string_view drop_reason_name(drop_reason r) { return drop_names[static_cast<std::size_t>(r)]; }

std::optional<log_line> parse_line(std::string_view line, const clock_context& clock, const limits& lim,
                                   skip_reason& why) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() > lim.max_line) {
        why = skip_reason::too_long;
        return std::nullopt;
    }
    for (unsigned char ch : line)
        if (ch < 0x20 && ch != '\t') {
            why = skip_reason::not_text;
            return std::nullopt;
        }
    why = skip_reason::no_header;
    cursor c{line};
    log_line l;
    std::string_view tag;
    if (c.eat('<')) {
        // RFC 5424: "<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG"
        int pri_digits = 0;
        while (is_digit(c.peek()) && pri_digits < 3) ++c.i, ++pri_digits;
        if (!pri_digits || !c.eat(">1 ") || !iso_time(c, l.at) || !c.eat(' ')) return std::nullopt;
        const std::string_view host = c.token();
        if (host.empty() || !c.eat(' ')) return std::nullopt;
        tag = c.token();
        if (tag.empty() || !c.eat(' ')) return std::nullopt;
        if (c.token().empty() || !c.eat(' ')) return std::nullopt;  // PROCID
        if (c.token().empty() || !c.eat(' ')) return std::nullopt;  // MSGID
        if (!c.eat('-')) {
            // Structured data: one or more [..] elements; a ']' inside a value is escaped.
            if (c.peek() != '[') return std::nullopt;
            while (c.peek() == '[') {
                while (!c.done() && c.peek() != ']') c.i += (c.peek() == '\\') ? 2 : 1;
                if (!c.eat(']')) return std::nullopt;
            }
        }
        if (!c.eat(' ')) return std::nullopt;
        c.eat("\xEF\xBB\xBF");  // the BOM RFC 5424 allows before a UTF-8 message
    } else {
        const bool iso = is_digit(c.peek());
        if (!(iso ? iso_time(c, l.at) : syslog_time(c, clock, l.at)) || !c.eat(' ')) return std::nullopt;
        const std::string_view host = c.token();
        if (host.empty() || !c.eat(' ')) return std::nullopt;
        std::string_view t = c.token();
        if (t.size() < 2 || t.back() != ':' || !c.eat(' ')) return std::nullopt;
        t.remove_suffix(1);
        if (t.back() == ']') {
            const std::size_t open = t.rfind('[');
            if (open == std::string_view::npos) return std::nullopt;
            t = t.substr(0, open);
        }
        tag = t;
    }
    if (!postfix_tag(tag, l.program)) {
        why = skip_reason::not_postfix;
        return std::nullopt;
    }
    std::string_view text = c.rest();
    const std::size_t colon = text.find(": ");
    if (colon != std::string_view::npos && queue_id_like(text.substr(0, colon))) {
        l.queue_id = text.substr(0, colon);
        classify(l, text.substr(colon + 2));
    }
    return l;
}

joiner::joiner(std::function<bool(std::string_view)> is_ours, clock_context clock, limits lim)
    : is_ours_(std::move(is_ours)), clock_(clock), lim_(lim) {}

void joiner::feed(std::string_view line, std::vector<outbound>& out) {
    ++counts_.lines;
    skip_reason why{};
    const auto l = parse_line(line, clock_, lim_, why);
    if (!l) {
        ++counts_.skipped[static_cast<std::size_t>(why)];
        return;
    }
    if (l->queue_id.empty() || l->kind == line_kind::other_postfix) return;
    const std::string qid(l->queue_id);
    if (l->kind == line_kind::removed) {
        if (open_.count(qid)) close(qid, true, out, drop_reason::never_sent);
        return;
    }
    auto [it, inserted] = open_.try_emplace(qid);
    pending& p = it->second;
    if (inserted) {
        p.order = next_order_++;
        by_age_.emplace(p.order, qid);
    }
    switch (l->kind) {
    case line_kind::client:
        p.ours = l->authenticated || (!l->value.empty() && is_ours_(l->value));
        p.reinjected = l->reinjected;
        break;
    case line_kind::pickup:
        p.ours = true;
        if (p.sender.empty()) p.sender = std::string(l->value.substr(0, lim_.max_message_id));
        break;
    case line_kind::message_id:
        // An id past the bound is not cut (a cut id would match nothing): the message is
        // dropped as having none.
        if (l->value.size() <= lim_.max_message_id) p.message_id = std::string(l->value);
        break;
    case line_kind::envelope:
        p.sender = std::string(l->value.substr(0, lim_.max_message_id));
        break;
    case line_kind::sent:
        if (!p.first_sent) p.first_sent = l->at;
        if (p.recipients.size() < lim_.max_recipients) p.recipients.emplace_back(l->value.substr(0, lim_.max_message_id));
        break;
    default:
        break;
    }
    while (open_.size() > lim_.max_open) {
        const std::string oldest = by_age_.begin()->second;
        close(oldest, false, out, drop_reason::evicted);
    }
}

void joiner::finish(std::vector<outbound>& out) {
    while (!by_age_.empty()) {
        const std::string oldest = by_age_.begin()->second;
        close(oldest, false, out, drop_reason::incomplete_at_end);
    }
}

void joiner::close(const std::string& queue_id, bool at_removed, std::vector<outbound>& out, drop_reason incomplete) {
    auto it = open_.find(queue_id);
    if (it == open_.end()) return;
    pending p = std::move(it->second);
    open_.erase(it);
    by_age_.erase(p.order);
    std::optional<drop_reason> drop;
    if (!p.ours) drop = at_removed ? drop_reason::origin_unknown : incomplete;
    else if (p.reinjected) drop = drop_reason::reinjected;
    else if (!*p.ours) drop = drop_reason::not_ours;
    else if (inbound_ids_.count(p.message_id)) drop = drop_reason::seen_inbound;
    else if (p.message_id.empty()) drop = at_removed ? drop_reason::no_message_id : incomplete;
    else if (!p.first_sent) drop = at_removed ? drop_reason::never_sent : incomplete;
    if (p.ours && !*p.ours && !p.reinjected && !p.message_id.empty() && inbound_ids_.insert(p.message_id).second) {
        inbound_order_.push_back(p.message_id);
        if (inbound_order_.size() > lim_.max_inbound_ids) {
            inbound_ids_.erase(inbound_order_.front());
            inbound_order_.pop_front();
        }
    }
    if (drop) {
        ++counts_.dropped[static_cast<std::size_t>(*drop)];
        return;
    }
    ++counts_.outbound;
    out.push_back({std::move(p.message_id), std::move(p.sender), std::move(p.recipients), *p.first_sent});
}

}  // namespace ndrguard::backfill
