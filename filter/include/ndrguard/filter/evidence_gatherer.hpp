// Gathers the evidence of origin of a classified bounce (everything verdict.hpp weighs but the
// sent log's answer): DKIM signatures of our domains on the returned headers (libopendkim),
// the BATV tag of its envelope recipients, the returned trace, the detector's strength. Used
// by serve's message pipeline and by `ndrguard scan --verdict`, so the two always agree.
//
// The edge of the evidence libraries: it reads the key files named by dkim_keys and
// batv_keys (when it is made), and looks up DKIM keys in DNS (dkim_dns; a blocking lookup of at
// most 2 x dkim_dns_timeout_seconds, kept for an hour when found and five minutes when not, so
// a storm quoting our signatures costs one lookup per selector). Thread-safe.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ndrguard/detector/detector.hpp"
#include "ndrguard/evidence/batv.hpp"
#include "ndrguard/evidence/dkim.hpp"
#include "ndrguard/evidence/trace.hpp"
#include "ndrguard/filter/config.hpp"
#include "ndrguard/filter/verdict.hpp"

namespace ndrguard::filter {

struct gathered_evidence {
    origin_evidence findings;       // names_ids set, in_sent_log left to the caller
    std::string_view dkim_reason;   // the first failed signature's reason (header_hash, no_key, ...)
    std::string dkim_domain;        // d= of the signature that verified, or of the first that failed
};

class evidence_gatherer {
public:
    // Throws std::runtime_error naming the key and the file that cannot be used.
    explicit evidence_gatherer(const serve_config& cfg);

    gathered_evidence gather(const detector::result& r, const std::vector<std::string>& envelope_recipients,
                             std::chrono::system_clock::time_point now) const;

    // Whether gather() may wait on DNS for this bounce (run it off the io thread then).
    bool may_block(const detector::result& r) const;

    // The address a bounce is for: a prvs-tagged recipient's untagged form (the mailbox whose
    // storm and quarantine it belongs to), else the address itself.
    static std::string untagged(std::string_view address);

    const evidence::trace_settings& trace() const { return trace_; }
    bool batv_configured() const { return !batv_.keys.empty(); }

private:
    std::optional<std::string> dns_key(const std::string& name) const;

    std::vector<std::string> our_domains_;
    evidence::trace_settings trace_;
    evidence::batv_settings batv_;
    evidence::dkim::key_source keys_;
    bool dns_ = false;
    evidence::dkim::dns_options dns_options_;
    struct cached_key {
        std::optional<std::string> record;
        std::chrono::steady_clock::time_point until;
    };
    mutable std::mutex cache_mu_;
    mutable std::map<std::string, cached_key> cache_;
};

// batv_keys ("K:FILE, ..."): each FILE's first line is the secret. Throws naming the entry.
std::vector<evidence::batv_key> load_batv_keys(std::string_view setting);

// The relays the trace looks for: our_relays, or when empty the hostname (but never a loopback
// name: "localhost" is in the Received lines of every content filter in the world).
std::vector<std::string> relays_of(const serve_config& cfg);

}  // namespace ndrguard::filter
