// token_verifier.hpp - bearer tokens checked against the identity provider's keys
//
// Contract:
// - Keys come from a JWKS file (re-read when its size or mtime changes) or from the
//   identity provider's JWKS URL (http or https; fetched at start, refreshed every
//   `refresh_interval`, and at once, at most every `min_refresh_interval`, when a token
//   names a kid that is not in the set: that is how key rotation is followed).
//   A fetch that fails keeps the previous set (logged); with no set at all every token
//   is refused (401), never accepted.
// - verify(token) returns the claims (jwt.hpp rules) or throws TokenError. A verified
//   token is remembered (keyed by its bytes) until it expires, for at most five minutes
//   and only while the key set is the one that verified it; so repeated reads do not pay
//   for a signature check, and a key removed from the set stops its tokens.
// - Thread-safe. Fetches run on the calling thread (bounded by `timeout`).
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "api/jwt.hpp"
#include "core/clock.hpp"

namespace pecd::api {

struct KeySettings {
    std::filesystem::path jwks_file;  // one of file or url
    std::string jwks_url;
    std::filesystem::path jwks_ca;  // trust for an https URL; empty = the system's store
    std::chrono::seconds refresh_interval{3600};
    std::chrono::seconds min_refresh_interval{30};
    std::chrono::seconds timeout{5};
};

class TokenVerifier {
public:
    TokenVerifier(KeySettings keys, TokenPolicy policy, const Clock& clock);
    Claims verify(const std::string& token);
    // Loads the keys now (start-up); returns false when none could be loaded.
    bool load();

private:
    struct Cached {
        Claims claims;
        TimePoint since;
        TimePoint until;
        std::uint64_t generation;
    };
    std::shared_ptr<const KeySet> keys(bool force);
    bool fetch_locked();

    KeySettings settings_;
    TokenPolicy policy_;
    const Clock& clock_;
    std::mutex key_mutex_;
    std::shared_ptr<const KeySet> keys_;
    std::uint64_t generation_ = 0;
    std::chrono::steady_clock::time_point fetched_at_{};
    std::chrono::steady_clock::time_point attempted_at_{};
    std::filesystem::file_time_type file_mtime_{};
    std::uintmax_t file_size_ = 0;
    std::mutex cache_mutex_;
    std::unordered_map<std::string, Cached> cache_;
};

// GET url (http or https) and return the body; Error on failure or non-200.
std::string http_get(const std::string& url, const std::filesystem::path& ca_file,
                     std::chrono::seconds timeout);

}  // namespace pecd::api
