// bench_pki.hpp - a certification authority, a provider certificate it issued (both by
// tls::issue_certificate) and a CRL of a chosen length, for benchmarks that check chains
//
// The CRL revokes `revoked` serial numbers other than the provider's (a real CA's CRL
// lists tens of thousands of certificates it issued to others), so the envelope signed by
// the provider still verifies with the CRL checked.
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <chrono>
#include <string>

#include "crypto/cms.hpp"
#include "tls/certificate.hpp"

namespace pecd::bench {

struct BenchPki {
    crypto::SigningIdentity ca;
    crypto::SigningIdentity provider;
    std::string crl_der;
};

inline BenchPki make_pki(long revoked) {
    BenchPki p;
    const auto issued_at = std::chrono::system_clock::now();
    tls::CertificateSpec ca_spec;
    ca_spec.common_name = "Bench PEC CA";
    ca_spec.usage = tls::Usage::ca;
    p.ca.key = crypto::PkeyPtr(tls::generate_key(tls::KeyType::rsa2048).release(), crypto::PkeyFree{});
    p.ca.certificate = crypto::X509Ptr(
        tls::issue_certificate(ca_spec, p.ca.key.get(), nullptr, p.ca.key.get(), issued_at).release(),
        crypto::X509Free{});
    tls::CertificateSpec provider_spec;
    provider_spec.common_name = "Posta Certificata Bench";
    provider_spec.usage = tls::Usage::email_signing;
    provider_spec.validity = std::chrono::days(365);
    p.provider.key = crypto::PkeyPtr(tls::generate_key(tls::KeyType::rsa2048).release(), crypto::PkeyFree{});
    p.provider.certificate =
        crypto::X509Ptr(tls::issue_certificate(provider_spec, p.provider.key.get(), p.ca.certificate.get(),
                                               p.ca.key.get(), issued_at)
                            .release(),
                        crypto::X509Free{});

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
