// certificate.hpp - X.509 certificates and keys: create, load, describe (OpenSSL 3)
//
// The certificate operations pecd needs around TLS: generating keys (EC P-256 or RSA
// 2048), issuing certificates (self-signed, CA, or signed by a given issuer) with SAN
// DNS names and IP addresses and the right key usages, creating CSRs, reading PEM
// chains, checking that a key belongs to a certificate, and describing a certificate
// (subject, issuer, SANs, validity, fingerprint) for logs and `pecctl cert show`.
//
// Contract: every function either returns a valid object or throws pecd::Error with the
// OpenSSL reason; nothing here logs, and private keys are only ever returned as PEM to
// the caller (who writes them with mode 0600).
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"

namespace pecd::tls {

struct X509Deleter {
    void operator()(X509* x) const noexcept { X509_free(x); }
};
struct EvpPkeyDeleter {
    void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};
struct X509ReqDeleter {
    void operator()(X509_REQ* r) const noexcept { X509_REQ_free(r); }
};
using X509Ptr = std::unique_ptr<X509, X509Deleter>;
using KeyPtr = std::unique_ptr<EVP_PKEY, EvpPkeyDeleter>;
using CsrPtr = std::unique_ptr<X509_REQ, X509ReqDeleter>;

enum class KeyType { ec_p256, rsa2048 };
// "ec" / "ec-p256" / "p256" -> ec_p256, "rsa" / "rsa2048" -> rsa2048; throws Error otherwise.
KeyType parse_key_type(std::string_view s);

KeyPtr generate_key(KeyType type);

// email_signing: an S/MIME signing leaf as the PEC profile wants it (pec.md 6.4): key
// usage digitalSignature only, emailProtection, no basic constraints.
enum class Usage { server, client, server_and_client, ca, email_signing };

struct CertificateSpec {
    std::string common_name;
    std::vector<std::string> dns_names;     // SAN dNSName entries
    std::vector<std::string> ip_addresses;  // SAN iPAddress entries, textual IPv4/IPv6
    std::vector<std::string> email_addresses;  // SAN rfc822Name entries
    std::string organization;               // optional O=
    Usage usage = Usage::server;
    std::chrono::seconds not_before_offset{-3600};  // backdated against clock skew
    std::chrono::days validity{825};
};

// Issues a certificate for `subject_key` described by `spec`, signed by issuer/issuer_key,
// or self-signed when issuer is null (then issuer_key must be subject_key). `now` is the
// validity start reference, so tests can produce expired or not-yet-valid certificates.
X509Ptr issue_certificate(const CertificateSpec& spec, EVP_PKEY* subject_key, X509* issuer,
                          EVP_PKEY* issuer_key, TimePoint now);

// A PKCS#10 request for the names in spec (CN + SAN extension), signed by key.
CsrPtr make_csr(const CertificateSpec& spec, EVP_PKEY* key);

std::string to_pem(X509* cert);
std::string to_pem(X509_REQ* csr);
std::string private_key_to_pem(EVP_PKEY* key);

// Every certificate in a PEM text, in order; throws Error if there is none or one is broken.
std::vector<X509Ptr> parse_pem_chain(std::string_view pem, std::string_view source = "PEM");
KeyPtr parse_pem_private_key(std::string_view pem, std::string_view source = "PEM");
// Reads files; errors name the file.
std::vector<X509Ptr> load_chain_file(const std::string& path);
KeyPtr load_key_file(const std::string& path);

// True when key is the private key of cert's public key.
bool key_matches(X509* cert, EVP_PKEY* key);

struct CertificateInfo {
    std::string subject;  // RFC 2253 one-line form
    std::string issuer;
    std::string common_name;  // last CN of the subject, empty if none
    std::vector<std::string> dns_names;
    std::vector<std::string> ip_addresses;
    // Exact for every year a certificate can carry, 9999-12-31 ("no expiry", RFC 5280
    // 4.1.2.5) included, which a TimePoint cannot hold (core/calendar.hpp).
    std::chrono::sys_seconds not_before{};
    std::chrono::sys_seconds not_after{};
    std::string serial_hex;
    std::string sha256_fingerprint;  // upper-case hex pairs separated by ':'
    bool is_ca = false;
    bool self_issued = false;     // subject == issuer
    std::string key_description;  // "EC P-256", "RSA 2048", ...
};

CertificateInfo describe(X509* cert);
// Whole days from now until not_after, rounded down; negative once expired.
int days_until_expiry(X509* cert, TimePoint now);
// The start of cert's validity when it lies after `now` (a certificate not valid yet);
// std::nullopt once it has begun.
std::optional<std::chrono::sys_seconds> not_valid_until(X509* cert, TimePoint now);

}  // namespace pecd::tls
