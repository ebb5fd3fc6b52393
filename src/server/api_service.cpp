// api_service.cpp - the mailbox API's parts over the daemon's store (see api_service.hpp)
#include "server/api_service.hpp"

#include <spdlog/spdlog.h>

#include "api/server.hpp"
#include "api/verified_pec_view.hpp"
#include "core/error.hpp"
#include "store/mailbox_lifecycle.hpp"
#include "tls/server_tls.hpp"

namespace pecd::server {
namespace {

// The API's own pair, else the listeners' default pair ([tls], else the self-signed one).
tls::CertificatePair server_pair(const config::Config& c) {
    if (!c.api.certificate.empty()) return {c.api.certificate, c.api.key};
    if (!c.tls.certificate.empty()) return {c.tls.certificate, c.tls.key};
    return tls::ensure_self_signed(c.data_dir / "tls", {c.hostname, "localhost"});
}

}  // namespace

struct ApiService::Impl {
    Impl(const config::Config& c, ApiParts p, boost::asio::io_context& io, const Clock& clock)
        : tokens(keys(c.api), api::TokenPolicy{c.api.issuer, c.api.audience, c.api.leeway}, clock),
          audit(*p.db, *p.log, clock),
          lifecycle(*p.mail, clock),
          view(*p.trust, p.index, *p.log),
          catalog(*p.db, *p.blobs, view),
          api(lifecycle, catalog, view, tokens) {
        if (!tokens.load())
            throw Error("api: no token signing key could be loaded from " +
                        (c.api.jwks_file.empty() ? c.api.jwks_url : c.api.jwks_file.string()));
        api::ApiServerSettings s;
        auto [host, port] = *config::split_host_port(c.api.listen);  // validated when read
        s.address = host;
        s.port = static_cast<unsigned short>(port);
        tls::ServerTlsSettings ts;
        ts.pair = server_pair(c);
        ts.client_ca = c.api.client_ca;
        ts.min_version = c.tls.min_version;
        ts.role = "API certificate";
        tls = std::make_shared<tls::ServerTls>(ts);
        s.tls = tls;
        s.allow = api::AllowList(c.api.allow);
        s.max_body = c.api.max_body;
        s.max_connections = c.api.max_connections;
        s.idle_timeout = c.api.idle_timeout;
        s.closure_sweep_interval = c.api.closure_sweep_interval;
        address = host;
        server = std::make_unique<api::ApiServer>(io, api, audit, lifecycle, std::move(s));
    }
    static api::KeySettings keys(const config::Api& a) {
        api::KeySettings k;
        k.jwks_file = a.jwks_file;
        k.jwks_url = a.jwks_url;
        k.jwks_ca = a.jwks_ca;
        k.refresh_interval = a.jwks_refresh;
        k.min_refresh_interval = a.jwks_min_refresh;
        return k;
    }

    api::TokenVerifier tokens;
    api::AuditTrail audit;
    store::MailboxLifecycle lifecycle;
    api::VerifiedPecView view;
    api::MessageCatalog catalog;
    api::MailboxApi api;
    std::shared_ptr<tls::ServerTls> tls;
    std::unique_ptr<api::ApiServer> server;
    std::string address;
    unsigned short port = 0;
};

ApiService::ApiService(const config::Config& c, ApiParts parts, boost::asio::io_context& io,
                       const Clock& clock)
    : impl_(std::make_unique<Impl>(c, parts, io, clock)) {}

ApiService::~ApiService() = default;

void ApiService::start() {
    impl_->port = impl_->server->start();
    spdlog::info("api: listening on {} port {} (mutual TLS)", impl_->address, impl_->port);
}

void ApiService::stop() {
    impl_->server->stop();
    impl_->audit.stop();
}

BoundListener ApiService::listener() const {
    return {"api", impl_->address, impl_->port, smtp::TlsMode::implicit};
}

void ApiService::reload_certificates() {
    impl_->tls->reload_if_changed();
}

}  // namespace pecd::server
