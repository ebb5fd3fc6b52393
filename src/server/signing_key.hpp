// signing_key.hpp - where the provider's signing key is, as [pec] names it
//
// One reading of the configuration for the daemon, which signs with the key, and for
// `pecd --check-config`, which logs in to an HSM token once to prove that the module, the
// token, the PIN and the key label are right before a start depends on them.
#pragma once

#include "config/config.hpp"
#include "crypto/identity.hpp"

namespace pecd::server {

// A PEM pair, or a PKCS#11 token with the PIN read from pkcs11_pin_file (its trailing
// line end dropped). Throws Error when the PIN file cannot be read.
crypto::KeySource signing_key_source(const config::Pec& pec);

}  // namespace pecd::server
