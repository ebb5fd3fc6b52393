// auth_limiter.hpp - rate limit of failed SMTP authentications (an "anvil" for AUTH)
//
// Counts failures per client address and per account in a sliding window. While either
// count is at its limit, further attempts are refused without checking the password, so
// a guessing client learns nothing and costs nothing. A success clears the account's
// count (not the address's: one good password must not license guessing others).
// Thread-safe; time from the caller.
#pragma once

#include <chrono>
#include <deque>
#include <mutex>
#include <string>
#include <unordered_map>

#include "core/clock.hpp"

namespace pecd::smtp {

struct AuthLimits {
    unsigned per_address = 5;   // failures per client address per window
    unsigned per_account = 10;  // failures per account per window (all addresses)
    std::chrono::seconds window{300};
};

class AuthLimiter {
public:
    explicit AuthLimiter(AuthLimits limits = {}) : limits_(limits) {}
    bool allowed(const std::string& address, const std::string& account, TimePoint now);
    void failed(const std::string& address, const std::string& account, TimePoint now);
    void succeeded(const std::string& account);

private:
    using Times = std::deque<TimePoint>;
    static constexpr std::size_t kPruneAbove = 100000;
    void expire(Times& t, TimePoint now) const;
    AuthLimits limits_;
    std::mutex mu_;
    std::unordered_map<std::string, Times> by_address_;
    std::unordered_map<std::string, Times> by_account_;
};

}  // namespace pecd::smtp
