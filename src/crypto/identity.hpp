// identity.hpp - a signing identity: certificate, private key, chain
//
// The private key may live in a PEM file or inside a PKCS#11 token (an HSM); callers
// see an EVP_PKEY either way and never the key bytes. Used for PEC message signatures,
// signed LDIF, legal-log seals and the built-in time-stamping authority.
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace pecd::crypto {

struct X509Free {
    void operator()(X509* x) const noexcept { X509_free(x); }
};
struct PkeyFree {
    void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};
using X509Ptr = std::shared_ptr<X509>;
using PkeyPtr = std::shared_ptr<EVP_PKEY>;

struct SigningIdentity {
    X509Ptr certificate;
    PkeyPtr key;
    std::vector<X509Ptr> chain;  // intermediates to include, leaf excluded
};

// Where a signing key comes from (config [signing] section).
struct KeySource {
    std::filesystem::path certificate;  // PEM, leaf first, optional chain after it
    std::filesystem::path key;          // PEM private key (file keys)
    std::string pkcs11_module;          // e.g. /usr/lib/softhsm/libsofthsm2.so; non-empty = HSM
    std::string pkcs11_token;           // token label
    std::string pkcs11_key_label;       // key object label (or id)
    std::string pkcs11_pin;             // user PIN (never logged)
};

// Loads an identity; throws pecd::Error naming the file/token and the reason.
SigningIdentity load_identity(const KeySource& source);

// A signing identity that may be renewed while running (the provider's, see
// server/signing_key.hpp). A user takes current() once per message or seal, so each is
// signed by one identity throughout.
class IdentitySource {
public:
    virtual ~IdentitySource() = default;
    virtual std::shared_ptr<const SigningIdentity> current() const = 0;
};

// One identity for good (tools, tests).
class FixedIdentity final : public IdentitySource {
public:
    explicit FixedIdentity(SigningIdentity id)
        : id_(std::make_shared<const SigningIdentity>(std::move(id))) {}
    std::shared_ptr<const SigningIdentity> current() const override { return id_; }

private:
    std::shared_ptr<const SigningIdentity> id_;
};

}  // namespace pecd::crypto
