// signing_key.hpp - where the provider's signing key is, as [pec] names it
//
// One reading of the configuration for the daemon, which signs with the key, and for
// `pecd --check-config`, which logs in to an HSM token once to prove that the module, the
// token, the PIN and the key label are right before a start depends on them.
//
// SigningKeys is the daemon's signing identity, renewed without restart: when the files
// behind it change (the certificate, the PEM key, or for an HSM the PIN file), the new
// identity is loaded as at start (for an HSM: login, key found, matching the certificate)
// and used for the next message; a broken or expired one is refused once and the identity
// in use stays; one not valid yet is taken at its start.
#pragma once

#include <memory>
#include <mutex>

#include "config/config.hpp"
#include "core/file_watch.hpp"
#include "crypto/identity.hpp"

namespace pecd::server {

// A PEM pair, or a PKCS#11 token with the PIN read from pkcs11_pin_file (its trailing
// line end dropped). Throws Error when the PIN file cannot be read.
crypto::KeySource signing_key_source(const config::Pec& pec);

class SigningKeys final : public crypto::IdentitySource {
public:
    // Loads the identity; throws Error naming what is wrong. A certificate outside its
    // validity is taken at start (there is nothing else to sign with; log_expiry() says
    // so), but not as a renewal.
    explicit SigningKeys(config::Pec pec);
    std::shared_ptr<const crypto::SigningIdentity> current() const override;
    // True when a renewed identity is in use. Never throws.
    bool reload_if_changed();
    // "pec: signing certificate ... valid for N more days" (as for the listeners').
    void log_expiry() const;

private:
    const config::Pec pec_;
    mutable std::mutex mutex_;
    fs::FileWatch watch_;
    std::shared_ptr<const crypto::SigningIdentity> current_;
};

}  // namespace pecd::server
