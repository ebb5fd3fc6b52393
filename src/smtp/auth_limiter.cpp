#include "smtp/auth_limiter.hpp"

#include "core/strings.hpp"

namespace pecd::smtp {

void AuthLimiter::expire(Times& t, TimePoint now) const {
    while (!t.empty() && now - t.front() >= limits_.window) t.pop_front();
}

bool AuthLimiter::allowed(const std::string& address, const std::string& account, TimePoint now) {
    std::lock_guard lock(mu_);
    auto& a = by_address_[address];
    auto& u = by_account_[to_lower(account)];
    expire(a, now);
    expire(u, now);
    return a.size() < limits_.per_address && u.size() < limits_.per_account;
}

void AuthLimiter::failed(const std::string& address, const std::string& account, TimePoint now) {
    std::lock_guard lock(mu_);
    by_address_[address].push_back(now);
    by_account_[to_lower(account)].push_back(now);
    // Bound memory under a flood of distinct names: forget empty entries now and then.
    if (by_account_.size() > 100000) {
        for (auto it = by_account_.begin(); it != by_account_.end();) {
            expire(it->second, now);
            it = it->second.empty() ? by_account_.erase(it) : std::next(it);
        }
    }
}

void AuthLimiter::succeeded(const std::string& account) {
    std::lock_guard lock(mu_);
    by_account_.erase(to_lower(account));
}

}  // namespace pecd::smtp
