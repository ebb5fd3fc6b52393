// identity.cpp - loading signing identities from PEM files or a PKCS#11 token
//
// PKCS#11 goes through libp11 (Debian's libp11): it turns a token's private key object
// into an EVP_PKEY whose operations run inside the token, so the key never leaves it.
#include "crypto/identity.hpp"

#include <libp11.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <cstdio>
#include <memory>

#include "core/error.hpp"

namespace pecd::crypto {
namespace {

std::string openssl_error() {
    unsigned long e = ERR_get_error();
    if (!e) return "unknown OpenSSL error";
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return buf;
}

struct FileCloser {
    void operator()(FILE* f) const noexcept { std::fclose(f); }
};

std::vector<X509Ptr> read_certificates(const std::filesystem::path& path) {
    std::unique_ptr<FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
    if (!f) throw Error("cannot open certificate file " + path.string());
    std::vector<X509Ptr> out;
    while (X509* x = PEM_read_X509(f.get(), nullptr, nullptr, nullptr)) out.emplace_back(x, X509Free{});
    ERR_clear_error();  // the loop ends on "no start line"
    if (out.empty()) throw Error("no PEM certificate in " + path.string());
    return out;
}

PkeyPtr read_private_key(const std::filesystem::path& path) {
    std::unique_ptr<FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
    if (!f) throw Error("cannot open key file " + path.string());
    EVP_PKEY* k = PEM_read_PrivateKey(f.get(), nullptr, nullptr, nullptr);
    if (!k) throw Error("cannot read private key " + path.string() + ": " + openssl_error());
    return PkeyPtr(k, PkeyFree{});
}

// The libp11 context and slots must outlive the EVP_PKEY that refers to them; they are
// kept in a holder owned by the key's deleter.
struct Pkcs11Session {
    PKCS11_CTX* ctx = nullptr;
    PKCS11_SLOT* slots = nullptr;
    unsigned int nslots = 0;
    ~Pkcs11Session() {
        if (slots) PKCS11_release_all_slots(ctx, slots, nslots);
        if (ctx) {
            PKCS11_CTX_unload(ctx);
            PKCS11_CTX_free(ctx);
        }
    }
};

PkeyPtr load_pkcs11_key(const KeySource& s) {
    auto session = std::make_shared<Pkcs11Session>();
    session->ctx = PKCS11_CTX_new();
    if (!session->ctx) throw Error("PKCS#11: cannot create context");
    if (PKCS11_CTX_load(session->ctx, s.pkcs11_module.c_str()) != 0)
        throw Error("PKCS#11: cannot load module " + s.pkcs11_module);
    if (PKCS11_enumerate_slots(session->ctx, &session->slots, &session->nslots) != 0)
        throw Error("PKCS#11: cannot list slots of " + s.pkcs11_module);
    PKCS11_SLOT* slot = nullptr;
    for (unsigned i = 0; i < session->nslots; ++i) {
        auto& sl = session->slots[i];
        if (sl.token && sl.token->initialized && (s.pkcs11_token.empty() || s.pkcs11_token == sl.token->label)) {
            slot = &sl;
            break;
        }
    }
    if (!slot) throw Error("PKCS#11: no token labelled '" + s.pkcs11_token + "'");
    if (PKCS11_login(slot, 0, s.pkcs11_pin.c_str()) != 0)
        throw Error("PKCS#11: login to token '" + s.pkcs11_token + "' failed");  // the PIN is never shown
    PKCS11_KEY* keys = nullptr;
    unsigned int nkeys = 0;
    if (PKCS11_enumerate_keys(slot->token, &keys, &nkeys) != 0)
        throw Error("PKCS#11: cannot list keys of token '" + s.pkcs11_token + "'");
    for (unsigned i = 0; i < nkeys; ++i) {
        if (!s.pkcs11_key_label.empty() && (!keys[i].label || s.pkcs11_key_label != keys[i].label)) continue;
        EVP_PKEY* k = PKCS11_get_private_key(&keys[i]);
        if (!k) break;
        return PkeyPtr(k, [session](EVP_PKEY* p) { EVP_PKEY_free(p); });
    }
    throw Error("PKCS#11: no private key labelled '" + s.pkcs11_key_label + "' on token '" + s.pkcs11_token + "'");
}

}  // namespace

SigningIdentity load_identity(const KeySource& source) {
    SigningIdentity id;
    auto certs = read_certificates(source.certificate);
    id.certificate = certs.front();
    id.chain.assign(certs.begin() + 1, certs.end());
    id.key = source.pkcs11_module.empty() ? read_private_key(source.key) : load_pkcs11_key(source);
    if (X509_check_private_key(id.certificate.get(), id.key.get()) != 1) {
        ERR_clear_error();
        // Token keys may not expose what the check needs; compare public keys instead.
        EVP_PKEY* pub = X509_get0_pubkey(id.certificate.get());
        if (!pub || EVP_PKEY_eq(pub, id.key.get()) != 1) {
            ERR_clear_error();
            throw Error("the private key does not match the certificate " + source.certificate.string());
        }
    }
    return id;
}

}  // namespace pecd::crypto
