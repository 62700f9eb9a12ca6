#include "phrase_scanner.hpp"

#include <algorithm>
#include <cstring>

namespace ndrguard::detector {

phrase_scanner::phrase_scanner(std::vector<std::span<const std::string_view>> lists) : lists_(lists.size()) {
    for (std::uint32_t l = 0; l < lists.size(); ++l)
        for (std::string_view p : lists[l])
            if (p.size() >= 2 && phrases_ < max_phrases) {
                std::uint32_t head = 0, mask = 0;
                std::memcpy(&head, p.data(), std::min<std::size_t>(p.size(), 4));
                std::memset(&mask, 0xff, std::min<std::size_t>(p.size(), 4));
                entries_.push_back({p, l, std::uint32_t(phrases_++), head, mask});
            }
    std::stable_sort(entries_.begin(), entries_.end(), [](const entry& a, const entry& b) {
        return key(a.phrase[0], a.phrase[1]) < key(b.phrase[0], b.phrase[1]);
    });
    first_.assign(65537, 0);
    for (const entry& e : entries_) {
        std::uint32_t k = key(e.phrase[0], e.phrase[1]);
        may_start_.set(k);
        ++first_[k + 1];
    }
    for (std::size_t k = 1; k < first_.size(); ++k) first_[k] += first_[k - 1];
}

std::vector<int> phrase_scanner::count(std::string_view text) const {
    std::vector<int> counts(lists_, 0);
    std::bitset<max_phrases> found;
    const char* s = text.data();
    const std::size_t n = text.size();
    for (std::size_t i = 0; i + 1 < n; ++i) {
        std::uint32_t k = key(s[i], s[i + 1]);
        if (!may_start_.test(k)) continue;
        std::uint32_t here = 0;
        std::memcpy(&here, s + i, std::min<std::size_t>(n - i, 4));
        for (std::uint32_t j = first_[k]; j < first_[k + 1]; ++j) {
            const entry& e = entries_[j];
            if ((here & e.mask) != e.head || found.test(e.id) || e.phrase.size() > n - i) continue;
            if (e.phrase.size() <= 4 || std::memcmp(s + i + 4, e.phrase.data() + 4, e.phrase.size() - 4) == 0) {
                found[e.id] = true;
                ++counts[e.list];
            }
        }
    }
    return counts;
}

}  // namespace ndrguard::detector
