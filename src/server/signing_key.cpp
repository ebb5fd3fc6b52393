#include "server/signing_key.hpp"

#include <spdlog/spdlog.h>

#include "core/calendar.hpp"
#include "core/fs.hpp"
#include "tls/certificate.hpp"
#include "tls/certificate_files.hpp"

namespace pecd::server {

crypto::KeySource signing_key_source(const config::Pec& pec) {
    crypto::KeySource ks;
    ks.certificate = pec.signing_certificate;
    ks.key = pec.signing_key;
    ks.pkcs11_module = pec.pkcs11_module;
    ks.pkcs11_token = pec.pkcs11_token;
    ks.pkcs11_key_label = pec.pkcs11_key_label;
    if (!pec.pkcs11_pin_file.empty()) {
        ks.pkcs11_pin = fs::read_file(pec.pkcs11_pin_file);
        while (!ks.pkcs11_pin.empty() && (ks.pkcs11_pin.back() == '\n' || ks.pkcs11_pin.back() == '\r'))
            ks.pkcs11_pin.pop_back();
    }
    return ks;
}

namespace {

std::vector<std::filesystem::path> signing_files(const config::Pec& pec) {
    std::vector<std::filesystem::path> files{pec.signing_certificate};
    for (const auto& f : {pec.signing_key, pec.pkcs11_pin_file})
        if (!f.empty()) files.push_back(f);
    return files;
}

std::shared_ptr<const crypto::SigningIdentity> load(const config::Pec& pec) {
    return std::make_shared<const crypto::SigningIdentity>(crypto::load_identity(signing_key_source(pec)));
}

// A renewal is refused when its certificate is outside its validity: what it signed
// would not verify anywhere, while the identity in use may still be valid.
std::shared_ptr<const crypto::SigningIdentity> load_renewal(const config::Pec& pec, TimePoint now) {
    auto id = load(pec);
    const auto path = pec.signing_certificate.string();
    if (tls::days_until_expiry(id->certificate.get(), now) < 0) throw Error(path + ": certificate expired");
    if (auto from = tls::not_valid_until(id->certificate.get(), now))
        throw tls::NotYetValid(path + ": certificate not valid until " + rfc3339_utc(*from), *from);
    return id;
}

}  // namespace

// The watch is made before the first read: a change while reading is seen at the next check.
SigningKeys::SigningKeys(config::Pec pec)
    : pec_(std::move(pec)), watch_(signing_files(pec_)), current_(load(pec_)) {}

std::shared_ptr<const crypto::SigningIdentity> SigningKeys::current() const {
    std::lock_guard lock(mutex_);
    return current_;
}

bool SigningKeys::reload_if_changed() {
    const auto now = std::chrono::system_clock::now();
    std::optional<fs::FileStamps> due;
    {
        std::lock_guard lock(mutex_);
        due = watch_.due(now);
    }
    if (!due) return false;
    const auto path = pec_.signing_certificate.string();
    try {
        auto fresh = load_renewal(pec_, now);
        {
            std::lock_guard lock(mutex_);
            current_ = std::move(fresh);
            watch_.read(std::move(*due));
        }
        spdlog::info("pec: signing identity renewed from {}", path);
        log_expiry();
        return true;
    } catch (const tls::NotYetValid& e) {
        std::lock_guard lock(mutex_);
        if (auto at = to_time_point(e.from)) watch_.defer_until(*at);
        spdlog::warn(
            "pec: signing identity renewal deferred, keeping the one in use: {}; it is tried again then",
            e.what());
    } catch (const std::exception& e) {
        spdlog::error("pec: signing identity renewal refused, keeping the one in use: {}", e.what());
    }
    return false;
}

void SigningKeys::log_expiry() const {
    tls::log_validity("pec: signing certificate", pec_.signing_certificate.string(),
                      current()->certificate.get(),
                      "envelopes and receipts signed with it do not verify at other providers",
                      std::chrono::system_clock::now());
}

}  // namespace pecd::server
