// certificate.cpp - X.509 certificates and keys: create, load, describe (OpenSSL 3)
//
// See certificate.hpp for the contract. SAN entries are built as GENERAL_NAME objects
// rather than through OpenSSL's "DNS:a,IP:b" config strings, so a host name containing a
// comma or a colon can never smuggle in an extra entry.
#include "tls/certificate.hpp"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <ctime>
#include <fstream>

#include "core/calendar.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/strings.hpp"
#include "tls/openssl_error.hpp"

namespace pecd::tls {
namespace {

struct BioDeleter {
    void operator()(BIO* b) const noexcept { BIO_free_all(b); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;

BioPtr memory_bio() {
    BioPtr b(BIO_new(BIO_s_mem()));
    if (!b) throw Error(openssl_error("BIO_new"));
    return b;
}

std::string bio_text(BIO* b) {
    char* data = nullptr;
    long n = BIO_get_mem_data(b, &data);
    return n > 0 ? std::string(data, static_cast<std::size_t>(n)) : std::string();
}

void add_name_entry(X509_NAME* name, const char* field, const std::string& value) {
    if (value.empty()) return;
    if (!X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                    reinterpret_cast<const unsigned char*>(value.data()),
                                    static_cast<int>(value.size()), -1, 0))
        throw Error(openssl_error(std::string("subject ") + field));
}

struct GeneralNamesDeleter {
    void operator()(GENERAL_NAMES* g) const noexcept { GENERAL_NAMES_free(g); }
};
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, GeneralNamesDeleter>;

GeneralNamesPtr subject_alt_names(const CertificateSpec& spec) {
    GeneralNamesPtr names(sk_GENERAL_NAME_new_null());
    for (const auto& dns : spec.dns_names) {
        if (dns.empty() || dns.find_first_of(" ,\t\r\n") != std::string::npos)
            throw Error("invalid DNS name for certificate: '" + dns + "'");
        GENERAL_NAME* g = GENERAL_NAME_new();
        ASN1_IA5STRING* s = ASN1_IA5STRING_new();
        ASN1_STRING_set(s, dns.data(), static_cast<int>(dns.size()));
        GENERAL_NAME_set0_value(g, GEN_DNS, s);
        sk_GENERAL_NAME_push(names.get(), g);
    }
    for (const auto& mail : spec.email_addresses) {
        if (mail.find('@') == std::string::npos || mail.find_first_of(" ,\t\r\n") != std::string::npos)
            throw Error("invalid e-mail address for certificate: '" + mail + "'");
        GENERAL_NAME* g = GENERAL_NAME_new();
        ASN1_IA5STRING* s = ASN1_IA5STRING_new();
        ASN1_STRING_set(s, mail.data(), static_cast<int>(mail.size()));
        GENERAL_NAME_set0_value(g, GEN_EMAIL, s);
        sk_GENERAL_NAME_push(names.get(), g);
    }
    for (const auto& ip : spec.ip_addresses) {
        ASN1_OCTET_STRING* octets = a2i_IPADDRESS(ip.c_str());
        if (!octets) throw Error("invalid IP address for certificate: '" + ip + "'");
        GENERAL_NAME* g = GENERAL_NAME_new();
        GENERAL_NAME_set0_value(g, GEN_IPADD, octets);
        sk_GENERAL_NAME_push(names.get(), g);
    }
    return names;
}

void add_extension(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, ctx, nid, value);
    if (!ext) throw Error(openssl_error(std::string("extension ") + OBJ_nid2sn(nid)));
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
}

const char* key_usage_for(Usage usage, EVP_PKEY* key) {
    if (usage == Usage::ca) return "critical,keyCertSign,cRLSign";
    if (usage == Usage::email_signing) return "critical,digitalSignature";
    // RSA key exchange needs keyEncipherment; EC keys only sign.
    return EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA ? "critical,digitalSignature,keyEncipherment"
                                                     : "critical,digitalSignature";
}

const char* extended_key_usage_for(Usage usage) {
    switch (usage) {
        case Usage::server:
            return "serverAuth";
        case Usage::client:
            return "clientAuth";
        case Usage::server_and_client:
            return "serverAuth,clientAuth";
        case Usage::email_signing:
            return "emailProtection";
        case Usage::ca:
            return nullptr;
    }
    return nullptr;
}

void set_random_serial(X509* cert) {
    unsigned char bytes[16];
    if (RAND_bytes(bytes, sizeof bytes) != 1) throw Error(openssl_error("RAND_bytes"));
    bytes[0] &= 0x7f;  // positive, as RFC 5280 requires
    BIGNUM* bn = BN_bin2bn(bytes, sizeof bytes, nullptr);
    ASN1_INTEGER* serial = BN_to_ASN1_INTEGER(bn, nullptr);
    X509_set_serialNumber(cert, serial);
    ASN1_INTEGER_free(serial);
    BN_free(bn);
}

// A validity time; the epoch for a malformed one (a certificate OpenSSL parsed has none).
std::chrono::sys_seconds asn1_seconds(const ASN1_TIME* t) {
    std::tm tm{};
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return {};
    return utc_seconds(tm);
}

std::string name_text(const X509_NAME* name) {
    auto bio = memory_bio();
    X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
    return bio_text(bio.get());
}

std::string last_common_name(const X509_NAME* name) {
    int idx = -1, last = -1;
    while ((idx = X509_NAME_get_index_by_NID(name, NID_commonName, idx)) >= 0) last = idx;
    if (last < 0) return {};
    const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, last));
    unsigned char* utf8 = nullptr;
    int n = ASN1_STRING_to_UTF8(&utf8, data);
    if (n < 0) return {};
    std::string out(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(n));
    OPENSSL_free(utf8);
    return out;
}

std::string ip_text(const ASN1_OCTET_STRING* ip) {
    char buf[INET6_ADDRSTRLEN] = {};
    int len = ASN1_STRING_length(ip);
    const unsigned char* d = ASN1_STRING_get0_data(ip);
    if (len == 4)
        inet_ntop(AF_INET, d, buf, sizeof buf);
    else if (len == 16)
        inet_ntop(AF_INET6, d, buf, sizeof buf);
    else
        return "<invalid>";
    return buf;
}

std::string key_text(EVP_PKEY* key) {
    if (!key) return "unknown";
    int bits = EVP_PKEY_get_bits(key);
    switch (EVP_PKEY_get_base_id(key)) {
        case EVP_PKEY_RSA:
            return "RSA " + std::to_string(bits);
        case EVP_PKEY_EC: {
            char group[64] = {};
            std::size_t len = 0;
            if (EVP_PKEY_get_group_name(key, group, sizeof group, &len) == 1) {
                std::string g(group, len);
                if (g == "prime256v1")
                    g = "P-256";
                else if (g == "secp384r1")
                    g = "P-384";
                else if (g == "secp521r1")
                    g = "P-521";
                return "EC " + g;
            }
            return "EC " + std::to_string(bits);
        }
        case EVP_PKEY_ED25519:
            return "Ed25519";
        default:
            return std::string(OBJ_nid2sn(EVP_PKEY_get_base_id(key))) + " " + std::to_string(bits);
    }
}

}  // namespace

KeyType parse_key_type(std::string_view s) {
    auto t = to_lower(s);
    if (t == "ec" || t == "ec-p256" || t == "p256" || t == "p-256" || t == "ecdsa") return KeyType::ec_p256;
    if (t == "rsa" || t == "rsa2048" || t == "rsa-2048") return KeyType::rsa2048;
    throw Error("unknown key type '" + std::string(s) + "' (expected ec or rsa)");
}

KeyPtr generate_key(KeyType type) {
    EVP_PKEY* k = type == KeyType::ec_p256 ? EVP_EC_gen("P-256") : EVP_RSA_gen(2048);
    if (!k) throw Error(openssl_error("key generation"));
    return KeyPtr(k);
}

X509Ptr issue_certificate(const CertificateSpec& spec, EVP_PKEY* subject_key, X509* issuer,
                          EVP_PKEY* issuer_key, TimePoint now) {
    if (!subject_key || !issuer_key) throw Error("issue_certificate: missing key");
    X509Ptr cert(X509_new());
    X509_set_version(cert.get(), 2);
    set_random_serial(cert.get());
    auto start = std::chrono::system_clock::to_time_t(now + spec.not_before_offset);
    auto end = std::chrono::system_clock::to_time_t(now + spec.validity);
    ASN1_TIME_set(X509_getm_notBefore(cert.get()), start);
    ASN1_TIME_set(X509_getm_notAfter(cert.get()), end);

    X509_NAME* subject = X509_get_subject_name(cert.get());
    add_name_entry(subject, "O", spec.organization);
    add_name_entry(subject, "CN", spec.common_name);
    X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : subject);
    if (X509_set_pubkey(cert.get(), subject_key) != 1) throw Error(openssl_error("X509_set_pubkey"));

    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer ? issuer : cert.get(), cert.get(), nullptr, nullptr, 0);
    if (spec.usage != Usage::email_signing)  // the PEC profile forbids basic constraints there
        add_extension(cert.get(), &ctx, NID_basic_constraints,
                      spec.usage == Usage::ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    add_extension(cert.get(), &ctx, NID_key_usage, key_usage_for(spec.usage, subject_key));
    if (const char* eku = extended_key_usage_for(spec.usage))
        add_extension(cert.get(), &ctx, NID_ext_key_usage, eku);
    add_extension(cert.get(), &ctx, NID_subject_key_identifier, "hash");
    if (issuer) add_extension(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always");
    if (!spec.dns_names.empty() || !spec.ip_addresses.empty() || !spec.email_addresses.empty()) {
        auto san = subject_alt_names(spec);
        if (X509_add1_ext_i2d(cert.get(), NID_subject_alt_name, san.get(), 0, X509V3_ADD_REPLACE) != 1)
            throw Error(openssl_error("subjectAltName"));
    }
    if (X509_sign(cert.get(), issuer_key, EVP_sha256()) <= 0) throw Error(openssl_error("X509_sign"));
    return cert;
}

CsrPtr make_csr(const CertificateSpec& spec, EVP_PKEY* key) {
    CsrPtr req(X509_REQ_new());
    X509_REQ_set_version(req.get(), 0);
    X509_NAME* subject = X509_REQ_get_subject_name(req.get());
    add_name_entry(subject, "O", spec.organization);
    add_name_entry(subject, "CN", spec.common_name);
    X509_REQ_set_pubkey(req.get(), key);
    if (!spec.dns_names.empty() || !spec.ip_addresses.empty()) {
        auto san = subject_alt_names(spec);
        STACK_OF(X509_EXTENSION)* exts = sk_X509_EXTENSION_new_null();
        X509_EXTENSION* ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, san.get());
        sk_X509_EXTENSION_push(exts, ext);
        X509_REQ_add_extensions(req.get(), exts);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    }
    if (X509_REQ_sign(req.get(), key, EVP_sha256()) <= 0) throw Error(openssl_error("X509_REQ_sign"));
    return req;
}

std::string to_pem(X509* cert) {
    auto bio = memory_bio();
    if (PEM_write_bio_X509(bio.get(), cert) != 1) throw Error(openssl_error("PEM_write_bio_X509"));
    return bio_text(bio.get());
}

std::string to_pem(X509_REQ* csr) {
    auto bio = memory_bio();
    if (PEM_write_bio_X509_REQ(bio.get(), csr) != 1) throw Error(openssl_error("PEM_write_bio_X509_REQ"));
    return bio_text(bio.get());
}

std::string private_key_to_pem(EVP_PKEY* key) {
    auto bio = memory_bio();
    if (PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1)
        throw Error(openssl_error("PEM_write_bio_PrivateKey"));
    return bio_text(bio.get());
}

std::vector<X509Ptr> parse_pem_chain(std::string_view pem, std::string_view source) {
    BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    std::vector<X509Ptr> chain;
    ERR_clear_error();
    while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) chain.emplace_back(x);
    // End of input shows up as PEM_R_NO_START_LINE; anything else is a broken block.
    unsigned long err = ERR_peek_last_error();
    if (err && !(ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE))
        throw Error(std::string(source) + ": " + openssl_error("unreadable certificate"));
    ERR_clear_error();
    if (chain.empty()) throw Error(std::string(source) + ": no certificate found");
    return chain;
}

KeyPtr parse_pem_private_key(std::string_view pem, std::string_view source) {
    BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    // An empty passphrase callback: encrypted keys are refused instead of prompting.
    auto no_passphrase = [](char*, int, int, void*) -> int { return 0; };
    EVP_PKEY* k = PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr);
    if (!k) throw Error(std::string(source) + ": " + openssl_error("unreadable private key"));
    return KeyPtr(k);
}

std::vector<X509Ptr> load_chain_file(const std::string& path) {
    return parse_pem_chain(fs::read_file(path), path);
}

KeyPtr load_key_file(const std::string& path) {
    return parse_pem_private_key(fs::read_file(path), path);
}

bool key_matches(X509* cert, EVP_PKEY* key) {
    EVP_PKEY* pub = X509_get0_pubkey(cert);
    bool ok = pub && key && EVP_PKEY_eq(pub, key) == 1;
    ERR_clear_error();
    return ok;
}

CertificateInfo describe(X509* cert) {
    CertificateInfo info;
    info.subject = name_text(X509_get_subject_name(cert));
    info.issuer = name_text(X509_get_issuer_name(cert));
    info.common_name = last_common_name(X509_get_subject_name(cert));
    auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
    for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans); ++i) {
        const GENERAL_NAME* g = sk_GENERAL_NAME_value(sans, i);
        if (g->type == GEN_DNS) {
            const ASN1_STRING* s = g->d.dNSName;
            info.dns_names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                        static_cast<std::size_t>(ASN1_STRING_length(s)));
        } else if (g->type == GEN_IPADD) {
            info.ip_addresses.push_back(ip_text(g->d.iPAddress));
        }
    }
    GENERAL_NAMES_free(sans);
    info.not_before = asn1_seconds(X509_get0_notBefore(cert));
    info.not_after = asn1_seconds(X509_get0_notAfter(cert));
    if (BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr)) {
        char* hex = BN_bn2hex(bn);
        info.serial_hex = hex;
        OPENSSL_free(hex);
        BN_free(bn);
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    X509_digest(cert, EVP_sha256(), md, &md_len);
    static const char* digits = "0123456789ABCDEF";
    for (unsigned i = 0; i < md_len; ++i) {
        if (i) info.sha256_fingerprint += ':';
        info.sha256_fingerprint += digits[md[i] >> 4];
        info.sha256_fingerprint += digits[md[i] & 15];
    }
    info.is_ca = X509_check_ca(cert) > 0;
    info.self_issued = X509_NAME_cmp(X509_get_subject_name(cert), X509_get_issuer_name(cert)) == 0;
    info.key_description = key_text(X509_get0_pubkey(cert));
    ERR_clear_error();
    return info;
}

std::optional<std::chrono::sys_seconds> not_valid_until(X509* cert, TimePoint now) {
    auto from = asn1_seconds(X509_get0_notBefore(cert));
    if (from > std::chrono::floor<std::chrono::seconds>(now)) return from;
    return std::nullopt;
}

int days_until_expiry(X509* cert, TimePoint now) {
    // In seconds, where 9999-12-31 fits; now rounded up keeps "rounded down" exact.
    auto left = asn1_seconds(X509_get0_notAfter(cert)) - std::chrono::ceil<std::chrono::seconds>(now);
    return static_cast<int>(std::chrono::floor<std::chrono::days>(left).count());
}

}  // namespace pecd::tls
