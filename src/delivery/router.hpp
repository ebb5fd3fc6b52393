// router.hpp - the route of each recipient: its domain's route, else the default route
//
// Domains listed in the store carry their own route (local, lmtp:..., smtp:...). Mail to
// any other domain goes to the default route (a relay host, `smtp:HOST:PORT`) when one is
// configured; without one, pecd has no route and the recipient is deferred until its
// lifetime ends.
#pragma once

#include <optional>

#include "queue/runner.hpp"
#include "store/mail_store.hpp"

namespace pecd::delivery {

class StoreRouter final : public queue::Router {
public:
    StoreRouter(store::MailStore& store, std::optional<store::Route> default_route = std::nullopt)
        : store_(store), default_(std::move(default_route)) {}
    std::optional<store::Route> route_for(std::string_view address) override;

private:
    store::MailStore& store_;
    std::optional<store::Route> default_;
};

}  // namespace pecd::delivery
