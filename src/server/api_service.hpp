// api_service.hpp - the mailbox API inside the daemon ([api] of the configuration)
//
// Builds the API's parts over the provider's own store and legal log: token verifier
// (JWKS file or URL), audit trail (legal-log records, group committed), mailbox
// lifecycle, message catalog, and the engine-backed PEC view (signature verification
// against the provider's trust anchors and index, history from the legal log), and runs
// the HTTPS + mutual TLS listener on the daemon's io_context.
//
// Contract:
// - The constructor loads everything and throws pecd::Error naming what is wrong (the
//   client CA, the server pair, the JWKS); start() binds the listener and throws when it
//   cannot. No key or token ever reaches the log.
// - listener() says where it listens once started ("api", implicit TLS), for the
//   banner and listeners.json. reload_certificates() re-reads the server pair when its files changed.
// - stop() closes the listener, then drains the audit trail: every response already
//   sent had its audit record committed.
#pragma once

#include <boost/asio/io_context.hpp>
#include <memory>

#include "config/config.hpp"
#include "core/clock.hpp"
#include "crypto/trust_files.hpp"
#include "index/lookup.hpp"
#include "log/legal_log.hpp"
#include "server/smtp_server.hpp"
#include "store/blob_store.hpp"
#include "store/mail_store.hpp"

namespace pecd::server {

struct ApiParts {
    store::Database* db = nullptr;
    store::MailStore* mail = nullptr;
    store::BlobStore* blobs = nullptr;
    log::LegalLog* log = nullptr;
    const crypto::TrustFiles* trust = nullptr;
    const index::ProviderLookup* index = nullptr;  // may be null
};

class ApiService {
public:
    ApiService(const config::Config& c, ApiParts parts, boost::asio::io_context& io, const Clock& clock);
    ~ApiService();
    void start();
    void stop();
    BoundListener listener() const;
    void reload_certificates();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace pecd::server
