// router.cpp - per-domain routes with a default (see router.hpp)
#include "delivery/router.hpp"

#include "core/strings.hpp"

namespace pecd::delivery {

std::optional<store::Route> StoreRouter::route_for(std::string_view address) {
    auto domain = domain_of(address);
    if (auto d = store_.domain(domain)) return d->route;
    if (!static_.empty())
        if (auto it = static_.find(to_lower(domain)); it != static_.end()) return it->second;
    if (default_) return default_;
    if (mx_port_) return mx_route(*mx_port_);
    return std::nullopt;
}

}  // namespace pecd::delivery
