// bench_pki.hpp - a certification authority, a provider certificate it issued and a CRL
// of a chosen length, made with the OpenSSL API, for benchmarks that check chains
//
// The CRL revokes `revoked` serial numbers other than the provider's (a real CA's CRL
// lists tens of thousands of certificates it issued to others), so the envelope signed by
// the provider still verifies with the CRL checked.
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <string>

#include "crypto/cms.hpp"

namespace pecd::bench {

struct BenchPki {
    crypto::SigningIdentity ca;
    crypto::SigningIdentity provider;
    std::string crl_der;
};

inline void set_name(X509_NAME* name, const char* cn) {
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn), -1, -1,
                               0);
}

inline void add_extension(X509* cert, X509* issuer, int nid, const char* value) {
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    if (X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value)) {
        X509_add_ext(cert, ext, -1);
        X509_EXTENSION_free(ext);
    }
}

inline crypto::X509Ptr make_certificate(EVP_PKEY* key, const char* cn, long serial, X509* issuer,
                                        EVP_PKEY* issuer_key, bool is_ca) {
    X509* x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 365);
    X509_set_pubkey(x, key);
    set_name(X509_get_subject_name(x), cn);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : X509_get_subject_name(x));
    X509* signer = issuer ? issuer : x;
    if (is_ca) {
        add_extension(x, signer, NID_basic_constraints, "critical,CA:TRUE");
        add_extension(x, signer, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_extension(x, signer, NID_key_usage, "critical,digitalSignature,nonRepudiation");
    }
    X509_sign(x, issuer_key, EVP_sha256());
    return crypto::X509Ptr(x, crypto::X509Free{});
}

inline BenchPki make_pki(long revoked) {
    BenchPki p;
    p.ca.key = crypto::PkeyPtr(EVP_RSA_gen(2048), crypto::PkeyFree{});
    p.ca.certificate = make_certificate(p.ca.key.get(), "Bench PEC CA", 1, nullptr, p.ca.key.get(), true);
    p.provider.key = crypto::PkeyPtr(EVP_RSA_gen(2048), crypto::PkeyFree{});
    p.provider.certificate = make_certificate(p.provider.key.get(), "Posta Certificata Bench", 2,
                                              p.ca.certificate.get(), p.ca.key.get(), false);

    X509_CRL* crl = X509_CRL_new();
    X509_CRL_set_version(crl, 1);
    X509_CRL_set_issuer_name(crl, X509_get_subject_name(p.ca.certificate.get()));
    ASN1_TIME* now = X509_gmtime_adj(nullptr, -60);
    ASN1_TIME* next = X509_gmtime_adj(nullptr, 86400L * 7);
    X509_CRL_set1_lastUpdate(crl, now);
    X509_CRL_set1_nextUpdate(crl, next);
    for (long serial = 1000; serial < 1000 + revoked; ++serial) {
        X509_REVOKED* r = X509_REVOKED_new();
        ASN1_INTEGER* s = ASN1_INTEGER_new();
        ASN1_INTEGER_set(s, serial);
        X509_REVOKED_set_serialNumber(r, s);
        X509_REVOKED_set_revocationDate(r, now);
        X509_CRL_add0_revoked(crl, r);
        ASN1_INTEGER_free(s);
    }
    ASN1_TIME_free(now);
    ASN1_TIME_free(next);
    X509_CRL_sort(crl);
    X509_CRL_sign(crl, p.ca.key.get(), EVP_sha256());
    unsigned char* der = nullptr;
    int n = i2d_X509_CRL(crl, &der);
    if (n > 0) p.crl_der.assign(reinterpret_cast<char*>(der), static_cast<std::size_t>(n));
    OPENSSL_free(der);
    X509_CRL_free(crl);
    return p;
}

}  // namespace pecd::bench
