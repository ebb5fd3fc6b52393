// log_service.cpp - assembling the legal log for the daemon (see log_service.hpp)
#include "log/log_service.hpp"

#include "log/builtin_tsa.hpp"

namespace pecd::log {

LogService::LogService(store::Database& db, std::shared_ptr<const crypto::IdentitySource> provider,
                       const Clock& clock, boost::asio::io_context& io, LogServiceOptions options)
    : log_(db) {
    if (options.tsa_url.empty() || options.tsa_listen) {
        builtin_ = std::make_shared<crypto::TimestampAuthority>(
            load_or_create_builtin_tsa(options.data_dir / "tsa"), clock);
    }
    if (options.tsa_url.empty()) {
        source_ = std::make_unique<LocalTimestampSource>(builtin_);
    } else {
        source_ = std::make_unique<HttpTimestampSource>(options.tsa_url, options.tsa_timeout);
    }
    if (options.tsa_listen) tsa_server_ = std::make_unique<TsaHttpServer>(io, *options.tsa_listen, builtin_);
    SealerOptions sealer_options;
    sealer_options.segment_interval = options.segment_interval;
    sealer_options.retention_months = options.retention_months;
    sealer_options.tsa_trust = options.tsa_trust;
    sealer_ = std::make_unique<Sealer>(log_, std::move(provider), *source_, clock, sealer_options);
}

LogService::~LogService() {
    stop();
}

void LogService::stop() {
    if (sealer_) sealer_->stop();
    if (tsa_server_) tsa_server_->stop();
}

crypto::X509Ptr LogService::builtin_tsa_certificate() const {
    return builtin_ ? builtin_->identity().certificate : crypto::X509Ptr{};
}

}  // namespace pecd::log
