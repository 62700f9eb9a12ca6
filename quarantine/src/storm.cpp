#include "ndrguard/quarantine/storm.hpp"

#include <algorithm>

namespace ndrguard::quarantine {

ndr_tally& ndr_tally::operator+=(const ndr_tally& o) {
    verified += o.verified;
    forged += o.forged;
    unverifiable += o.unverifiable;
    delivered += o.delivered;
    rejected += o.rejected;
    quarantined += o.quarantined;
    dropped += o.dropped;
    return *this;
}

std::string mailbox_key(std::string_view address) {
    if (address.size() >= 2 && address.front() == '<' && address.back() == '>') address = address.substr(1, address.size() - 2);
    // Not cut: two long addresses sharing a prefix must stay two mailboxes. Only ASCII is
    // lowered; the bytes of a UTF-8 address are kept (jörg@ and jürg@ are two mailboxes).
    std::string out(address);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

clock_time storm_tracker::bucket_of(clock_time t) const {
    auto width = std::chrono::duration_cast<clock_time::duration>(std::max(settings_.bucket, std::chrono::seconds(1)));
    auto since_epoch = t.time_since_epoch();
    return clock_time(since_epoch - since_epoch % width);
}

bool storm_tracker::in_storm(const std::string& mailbox) const {
    auto it = known_.find(mailbox);
    if (it == known_.end()) return false;
    return it->second.storm_id != 0 || it->second.window_count + it->second.unsynced >= settings_.threshold;
}

std::int64_t storm_tracker::storm_id(const std::string& mailbox) const {
    auto it = known_.find(mailbox);
    return it == known_.end() ? 0 : it->second.storm_id;
}

std::size_t storm_tracker::storms_open() const {
    return static_cast<std::size_t>(std::count_if(known_.begin(), known_.end(), [](const auto& kv) { return kv.second.storm_id != 0; }));
}

bool storm_tracker::observe(const std::string& mailbox, const ndr_tally& t, std::string_view reporting_mta,
                            std::string_view original_subject, clock_time now) {
    auto key = std::make_pair(mailbox, bucket_of(now));
    auto it = pending_.find(key);
    if (it == pending_.end()) {
        it = pending_.emplace(key, storm_delta{}).first;
        it->second.mailbox = mailbox;
        it->second.bucket = key.second;
    }
    storm_delta& d = it->second;
    d.tally += t;
    if (!reporting_mta.empty()) {
        std::string mta(reporting_mta.substr(0, 255));
        auto r = std::find_if(d.reporters.begin(), d.reporters.end(), [&](const auto& p) { return p.first == mta; });
        if (r != d.reporters.end())
            ++r->second;
        else if (d.reporters.size() < settings_.max_reporters_per_delta)
            d.reporters.emplace_back(std::move(mta), 1);
    }
    if (!original_subject.empty() && d.sample_subjects.size() < settings_.max_sample_subjects) {
        std::string subject(original_subject.substr(0, 200));
        if (std::find(d.sample_subjects.begin(), d.sample_subjects.end(), subject) == d.sample_subjects.end())
            d.sample_subjects.push_back(std::move(subject));
    }
    // Remember the mailbox; when too many are remembered, forget the quiet ones (their counts
    // are in the database; the next sync tells again).
    if (known_.size() >= settings_.max_mailboxes && !known_.count(mailbox)) {
        for (auto k = known_.begin(); k != known_.end();)
            k = (k->second.storm_id == 0 && k->second.unsynced == 0) ? known_.erase(k) : std::next(k);
    }
    known_[mailbox].unsynced += t.bounces();
    return in_storm(mailbox);
}

std::vector<storm_delta> storm_tracker::take_pending() {
    std::vector<storm_delta> out;
    out.reserve(pending_.size());
    for (auto& [key, d] : pending_) out.push_back(std::move(d));
    pending_.clear();
    return out;
}

void storm_tracker::restore(std::vector<storm_delta> deltas) {
    for (auto& d : deltas) {
        auto key = std::make_pair(d.mailbox, d.bucket);
        auto it = pending_.find(key);
        if (it == pending_.end()) {
            pending_.emplace(key, std::move(d));
            continue;
        }
        it->second.tally += d.tally;
        for (auto& r : d.reporters) {
            auto f = std::find_if(it->second.reporters.begin(), it->second.reporters.end(),
                                  [&](const auto& p) { return p.first == r.first; });
            if (f != it->second.reporters.end())
                f->second += r.second;
            else if (it->second.reporters.size() < settings_.max_reporters_per_delta)
                it->second.reporters.push_back(std::move(r));
        }
        for (auto& s : d.sample_subjects)
            if (it->second.sample_subjects.size() < settings_.max_sample_subjects) it->second.sample_subjects.push_back(std::move(s));
    }
}

std::vector<std::string> storm_tracker::watched_mailboxes() const {
    std::vector<std::string> out;
    for (const auto& [mailbox, k] : known_)
        if (k.storm_id != 0) out.push_back(mailbox);
    return out;
}

void storm_tracker::apply_sync(const std::vector<mailbox_storm_state>& states) {
    // What was observed before take_pending() is now in the database's counts; what came after
    // is still pending and stays counted as unsynced.
    std::map<std::string, std::int64_t> still_pending;
    for (const auto& [key, d] : pending_) still_pending[key.first] += d.tally.bounces();
    for (const auto& s : states) {
        known& k = known_[s.mailbox];
        k.window_count = s.window_count;
        k.storm_id = s.storm_id;
        auto p = still_pending.find(s.mailbox);
        k.unsynced = p == still_pending.end() ? 0 : p->second;
    }
}

}  // namespace ndrguard::quarantine
