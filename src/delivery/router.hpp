// router.hpp - the route of each recipient: its domain's route, else the default route
//
// Domains listed in the store carry their own route (local, lmtp:..., smtp:...). Then the
// static routes of [[outbound.routes]] (a fixed next hop per remote domain, without MX
// look-ups: a peer provider on a private link, or a test). Mail to any other domain goes to the default route (a relay host, `smtp:HOST:PORT`) when one is
// configured, else, with MX routing on, to the MX hosts of its domain: the route
// Route{smtp, host "", port mx_port} (see remote_transport.hpp). Without either, pecd has
// no route and the recipient is deferred until its lifetime ends.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "queue/runner.hpp"
#include "store/mail_store.hpp"

namespace pecd::delivery {

class StoreRouter final : public queue::Router {
public:
    StoreRouter(store::MailStore& store, std::optional<store::Route> default_route = std::nullopt,
                std::optional<std::uint16_t> mx_port = std::nullopt)
        : store_(store), default_(std::move(default_route)), mx_port_(mx_port) {}
    // Lower-case domain -> next hop; set before the runner starts.
    void set_static_routes(std::map<std::string, store::Route> routes) { static_ = std::move(routes); }
    std::optional<store::Route> route_for(std::string_view address) override;
    // The route meaning "the MX hosts of the recipient's domain, on this port".
    static store::Route mx_route(std::uint16_t port) { return {store::Route::Kind::smtp, "", port, ""}; }

private:
    store::MailStore& store_;
    std::optional<store::Route> default_;
    std::optional<std::uint16_t> mx_port_;
    std::map<std::string, store::Route> static_;
};

}  // namespace pecd::delivery
