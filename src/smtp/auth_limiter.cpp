#include "smtp/auth_limiter.hpp"

#include "core/strings.hpp"

namespace pecd::smtp {

void AuthLimiter::expire(Times& t, TimePoint now) const {
    while (!t.empty() && now - t.front() >= limits_.window) t.pop_front();
}

bool AuthLimiter::allowed(const std::string& address, const std::string& account, TimePoint now) {
    std::lock_guard lock(mu_);
    // Lookups only: a client trying many names must not grow the maps without failing.
    auto under = [&](std::unordered_map<std::string, Times>& m, const std::string& key, unsigned limit) {
        auto it = m.find(key);
        if (it == m.end()) return true;
        expire(it->second, now);
        return it->second.size() < limit;
    };
    return under(by_address_, address, limits_.per_address) &&
           under(by_account_, to_lower(account), limits_.per_account);
}

void AuthLimiter::failed(const std::string& address, const std::string& account, TimePoint now) {
    std::lock_guard lock(mu_);
    by_address_[address].push_back(now);
    by_account_[to_lower(account)].push_back(now);
    // Bound memory under a flood of distinct names or addresses: forget expired entries.
    for (auto* m : {&by_address_, &by_account_}) {
        if (m->size() <= kPruneAbove) continue;
        for (auto it = m->begin(); it != m->end();) {
            expire(it->second, now);
            it = it->second.empty() ? m->erase(it) : std::next(it);
        }
    }
}

void AuthLimiter::succeeded(const std::string& account) {
    std::lock_guard lock(mu_);
    by_account_.erase(to_lower(account));
}

}  // namespace pecd::smtp
