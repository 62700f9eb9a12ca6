// Which phrases of several lists occur in a text, found in one pass over it.
//
// The detector asks ~300 phrases of each report text; a find() per phrase read the text 300
// times and took most of classify()'s time. This scanner indexes the phrases by their first
// two bytes: one look at an 8 KiB bitmap per text byte, and a compare only where a phrase can
// start. Built once, immutable afterwards (safe to share between threads).
#pragma once

#include <bitset>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace ndrguard::detector {

class phrase_scanner {
public:
    // Phrases shorter than two bytes are not supported (none of the signal tables has one).
    explicit phrase_scanner(std::vector<std::span<const std::string_view>> lists);

    // For each list, in the order given: how many distinct phrases of it occur in `text`.
    std::vector<int> count(std::string_view text) const;

private:
    struct entry {
        std::string_view phrase;
        std::uint32_t list;
        std::uint32_t id;    // index over all lists, for "found already"
        std::uint32_t head;  // the phrase's first (up to) four bytes, to skip most memcmp calls
        std::uint32_t mask;  // which bytes of `head` count
    };
    static constexpr std::size_t max_phrases = 1024;
    static std::uint32_t key(char a, char b) {
        return std::uint32_t(static_cast<unsigned char>(a)) << 8 | static_cast<unsigned char>(b);
    }
    std::size_t lists_ = 0;
    std::size_t phrases_ = 0;
    std::bitset<65536> may_start_;
    std::vector<std::uint32_t> first_;  // per key: start of its run in entries_ (65537 items)
    std::vector<entry> entries_;       // sorted by key
};

}  // namespace ndrguard::detector
