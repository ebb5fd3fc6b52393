// log_service.hpp - the legal log as the daemon runs it: log, sealer, TSA, in one object
//
// The daemon builds one LogService at start-up and hands log() to the PEC engine and
// the mailbox API (both call LegalLog::append inside their own transactions).
//
// Contract:
// - Time stamps come from options.tsa_url (RFC 3161 over HTTP) when set, else from the
//   built-in TSA, whose identity is created once in <data_dir>/tsa/ (builtin_tsa.hpp).
// - When options.tsa_listen is set, the built-in TSA is also served over HTTP on the
//   given io_context (RFC 3161 3.4) so other instances can use it.
// - start() starts the background sealer (hourly segments by default); stop() or the
//   destructor stops it and the TSA listener. status() says whether sealing is behind
//   (an alert for health checks); the sealer also logs each failure.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "core/clock.hpp"
#include "crypto/identity.hpp"
#include "log/legal_log.hpp"
#include "log/sealer.hpp"
#include "log/tsa_http.hpp"
#include "store/database.hpp"

namespace pecd::log {

struct LogServiceOptions {
    std::filesystem::path data_dir;                // the built-in TSA's identity lives in data_dir/tsa
    std::string tsa_url;                           // empty = built-in TSA
    std::chrono::milliseconds tsa_timeout{10000};  // per request to tsa_url
    // Roots of tsa_url's tokens, re-read by their owner; null: the TSA's own certificate.
    std::shared_ptr<const crypto::TrustFiles> tsa_trust;
    std::optional<boost::asio::ip::tcp::endpoint> tsa_listen;  // serve the built-in TSA here
    std::chrono::seconds segment_interval{3600};
    int retention_months = 30;
};

class LogService {
public:
    LogService(store::Database& db, std::shared_ptr<const crypto::IdentitySource> provider,
               const Clock& clock, boost::asio::io_context& io, LogServiceOptions options);
    ~LogService();

    LegalLog& log() { return log_; }
    void start() { sealer_->start(); }
    // Closes the open segment and seals now (shutdown, operator request); see Sealer.
    int seal_now() { return sealer_->run_once(true); }
    void stop();
    SealerStatus status() const { return sealer_->status(); }
    // The built-in TSA's certificate (the anchor third parties need); null with tsa_url.
    crypto::X509Ptr builtin_tsa_certificate() const;
    // Port of the TSA listener (0 when not serving).
    unsigned short tsa_port() const { return tsa_server_ ? tsa_server_->port() : 0; }

private:
    LegalLog log_;
    std::shared_ptr<crypto::TimestampAuthority> builtin_;
    std::unique_ptr<TimestampSource> source_;
    std::unique_ptr<TsaHttpServer> tsa_server_;
    std::unique_ptr<Sealer> sealer_;
};

}  // namespace pecd::log
