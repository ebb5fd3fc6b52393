// router.hpp - the route of each recipient: its domain's route, else the default route
//
// Domains listed in the store carry their own route (local, lmtp:..., smtp:...). Mail to
// any other domain goes to the default route (a relay host, `smtp:HOST:PORT`) when one is
// configured, else, with MX routing on, to the MX hosts of its domain: the route
// Route{smtp, host "", port mx_port} (see remote_transport.hpp). Without either, pecd has
// no route and the recipient is deferred until its lifetime ends.
#pragma once

#include <optional>

#include "queue/runner.hpp"
#include "store/mail_store.hpp"

namespace pecd::delivery {

class StoreRouter final : public queue::Router {
public:
    StoreRouter(store::MailStore& store, std::optional<store::Route> default_route = std::nullopt,
                std::optional<std::uint16_t> mx_port = std::nullopt)
        : store_(store), default_(std::move(default_route)), mx_port_(mx_port) {}
    std::optional<store::Route> route_for(std::string_view address) override;
    // The route meaning "the MX hosts of the recipient's domain, on this port".
    static store::Route mx_route(std::uint16_t port) { return {store::Route::Kind::smtp, "", port, ""}; }

private:
    store::MailStore& store_;
    std::optional<store::Route> default_;
    std::optional<std::uint16_t> mx_port_;
};

}  // namespace pecd::delivery
