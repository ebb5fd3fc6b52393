// trust_files.cpp - see trust_files.hpp
#include "crypto/trust_files.hpp"

#include <openssl/err.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/calendar.hpp"
#include "core/error.hpp"

namespace pecd::crypto {
namespace {

// The earliest next update among the lapsed CRLs, if one has lapsed.
std::optional<std::chrono::sys_seconds> earliest_lapse(const std::vector<CrlInfo>& crls, TimePoint now) {
    std::optional<std::chrono::sys_seconds> out;
    for (const auto& c : crls)
        if (c.lapsed(now) && (!out || *c.next_update < *out)) out = c.next_update;
    return out;
}

}  // namespace

std::vector<CrlInfo> describe_crls(const TrustStore& trust) {
    std::vector<CrlInfo> out;
    for (const auto& der : trust.crls_der) {
        const auto* p = reinterpret_cast<const unsigned char*>(der.data());
        X509_CRL* crl = d2i_X509_CRL(nullptr, &p, static_cast<long>(der.size()));
        if (!crl) continue;
        out.push_back(
            {distinguished_name(X509_CRL_get_issuer(crl)), asn1_time_seconds(X509_CRL_get0_nextUpdate(crl))});
        X509_CRL_free(crl);
    }
    ERR_clear_error();
    return out;
}

TrustFiles::TrustFiles(std::string who, std::filesystem::path anchors, std::filesystem::path crls,
                       const Clock& clock)
    : who_(std::move(who)),
      anchors_(std::move(anchors)),
      crls_(std::move(crls)),
      clock_(clock),
      // The stamps before the read: a change while reading is seen at the next check.
      watch_(crls_.empty() ? std::vector<std::filesystem::path>{anchors_}
                           : std::vector<std::filesystem::path>{anchors_, crls_}) {
    auto trust = std::make_shared<const TrustStore>(read(anchors_, crls_));
    crl_info_ = describe_crls(*trust);
    current_ = std::move(trust);
}

TrustStore TrustFiles::read(const std::filesystem::path& anchors, const std::filesystem::path& crls) {
    auto trust = TrustStore::from_pem_file(anchors);
    if (!crls.empty()) trust.add_crl_file(crls);
    return trust;
}

std::shared_ptr<const TrustStore> TrustFiles::current() const {
    std::lock_guard lock(mutex_);
    return current_;
}

bool TrustFiles::reload_if_changed() {
    const auto now = clock_.now();
    std::optional<fs::FileStamps> due;
    {
        std::lock_guard lock(mutex_);
        due = watch_.due(now);
    }
    if (due) {
        try {
            auto trust = std::make_shared<const TrustStore>(read(anchors_, crls_));
            auto info = describe_crls(*trust);
            {
                std::lock_guard lock(mutex_);
                current_ = std::move(trust);
                crl_info_ = std::move(info);
                stale_reported_.reset();
                watch_.read(std::move(*due));
            }
            spdlog::info("{}: trust re-read from {}{}", who_, anchors_.string(),
                         crls_.empty() ? std::string() : " and " + crls_.string());
            log_status();
            return true;
        } catch (const std::exception& e) {
            spdlog::error("{}: trust files not re-read, keeping the ones in use: {}", who_, e.what());
        }
    }
    report_stale_crls(now);
    return false;
}

void TrustFiles::report_stale_crls(TimePoint now) {
    std::lock_guard lock(mutex_);
    auto next = earliest_lapse(crl_info_, now);
    if (!next || stale_reported_ == next) return;
    stale_reported_ = next;
    spdlog::error(
        "{}: a CRL in {} is out of date since {}: signatures it covers fail chain validation "
        "until the file is refreshed",
        who_, crls_.string(), rfc3339_utc(*next));
}

void TrustFiles::log_status() const {
    std::lock_guard lock(mutex_);
    const auto now = clock_.now();
    spdlog::info("{}: trust: {} anchor(s) from {}, {} CRL(s){}", who_, current_->anchors.size(),
                 anchors_.string(), crl_info_.size(),
                 crls_.empty() ? std::string(" (no CRL checking)") : " from " + crls_.string());
    for (const auto& c : crl_info_) {
        if (!c.next_update)
            spdlog::info("{}: CRL of {} names no next update", who_, c.issuer);
        else if (c.lapsed(now))
            spdlog::error(
                "{}: CRL of {} is out of date since {}: signatures it covers fail chain validation "
                "until {} is refreshed",
                who_, c.issuer, rfc3339_utc(*c.next_update), crls_.string());
        else
            spdlog::info("{}: CRL of {} valid until {}", who_, c.issuer, rfc3339_utc(*c.next_update));
    }
}

}  // namespace pecd::crypto
