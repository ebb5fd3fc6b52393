// cms.cpp - CMS SignedData with OpenSSL: signing, and verification with separate verdicts
//
// Verification runs in two steps so that callers can report them apart: first the
// signature alone (CMS_NO_SIGNER_CERT_VERIFY), then the signer's chain against the trust
// store (X509_verify_cert, at a chosen time, optionally with CRLs).
#include "crypto/cms.hpp"

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <cstring>
#include <ctime>
#include <memory>

#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/strings.hpp"

namespace pecd::crypto {
namespace {

struct BioFree {
    void operator()(BIO* b) const noexcept { BIO_free(b); }
};
struct CmsFree {
    void operator()(CMS_ContentInfo* c) const noexcept { CMS_ContentInfo_free(c); }
};
struct StoreFree {
    void operator()(X509_STORE* s) const noexcept { X509_STORE_free(s); }
};
struct StoreCtxFree {
    void operator()(X509_STORE_CTX* s) const noexcept { X509_STORE_CTX_free(s); }
};
struct StackFree {
    void operator()(STACK_OF(X509) * s) const noexcept { sk_X509_free(s); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using CmsPtr = std::unique_ptr<CMS_ContentInfo, CmsFree>;
using StackPtr = std::unique_ptr<STACK_OF(X509), StackFree>;

std::string openssl_error() {
    unsigned long e = ERR_get_error();
    std::string s = "unknown OpenSSL error";
    if (e) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        s = buf;
    }
    ERR_clear_error();
    return s;
}

BioPtr mem_bio(std::string_view data) {
    return BioPtr(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

std::string bio_bytes(BIO* b) {
    char* p = nullptr;
    long n = BIO_get_mem_data(b, &p);
    return std::string(p, static_cast<std::size_t>(n));
}

const EVP_MD* digest_md(Digest d) {
    return d == Digest::sha1 ? EVP_sha1() : EVP_sha256();
}

std::string sign(const SigningIdentity& id, std::string_view data, Digest digest, bool detached) {
    if (!id.certificate || !id.key) throw Error("CMS signing: incomplete signing identity");
    StackPtr chain(sk_X509_new_null());
    for (auto& c : id.chain) sk_X509_push(chain.get(), c.get());
    unsigned flags = CMS_BINARY | CMS_PARTIAL | (detached ? CMS_DETACHED : 0u);
    CmsPtr cms(CMS_sign(nullptr, nullptr, chain.get(), nullptr, flags));
    if (!cms) throw Error("CMS signing: " + openssl_error());
    if (!CMS_add1_signer(cms.get(), id.certificate.get(), id.key.get(), digest_md(digest), flags))
        throw Error("CMS signing: " + openssl_error());
    auto in = mem_bio(data);
    if (!CMS_final(cms.get(), in.get(), nullptr, flags)) throw Error("CMS signing: " + openssl_error());
    BioPtr out(BIO_new(BIO_s_mem()));
    if (!i2d_CMS_bio(out.get(), cms.get())) throw Error("CMS encoding: " + openssl_error());
    return bio_bytes(out.get());
}

// DER or BER (indefinite length) or PEM.
CmsPtr parse_cms(std::string_view bytes) {
    auto in = mem_bio(bytes);
    CMS_ContentInfo* c = nullptr;
    if (bytes.substr(0, 40).find("-----BEGIN") != std::string_view::npos) {
        // PEM ("CMS" or "PKCS7" label): take the DER inside.
        char* name = nullptr;
        char* header = nullptr;
        unsigned char* der = nullptr;
        long len = 0;
        if (PEM_read_bio(in.get(), &name, &header, &der, &len)) {
            auto der_bio =
                mem_bio(std::string_view(reinterpret_cast<char*>(der), static_cast<std::size_t>(len)));
            c = d2i_CMS_bio(der_bio.get(), nullptr);
        }
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(der);
    } else {
        c = d2i_CMS_bio(in.get(), nullptr);
    }
    if (!c) ERR_clear_error();
    return CmsPtr(c);
}

std::optional<TimePoint> signing_time(CMS_SignerInfo* si) {
    int idx = CMS_signed_get_attr_by_NID(si, NID_pkcs9_signingTime, -1);
    if (idx < 0) return std::nullopt;
    X509_ATTRIBUTE* attr = CMS_signed_get_attr(si, idx);
    ASN1_TYPE* t = attr ? X509_ATTRIBUTE_get0_type(attr, 0) : nullptr;
    if (!t || (t->type != V_ASN1_UTCTIME && t->type != V_ASN1_GENERALIZEDTIME)) return std::nullopt;
    std::tm tm{};
    if (!ASN1_TIME_to_tm(reinterpret_cast<ASN1_TIME*>(t->value.asn1_string), &tm)) return std::nullopt;
    return std::chrono::system_clock::from_time_t(timegm(&tm));
}

bool verify_chain(X509* signer, STACK_OF(X509) * untrusted, const TrustStore& trust, std::string& error) {
    std::unique_ptr<X509_STORE, StoreFree> store(X509_STORE_new());
    for (auto& a : trust.anchors) X509_STORE_add_cert(store.get(), a.get());
    for (auto& der : trust.crls_der) {
        const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
        if (X509_CRL* crl = d2i_X509_CRL(nullptr, &p, static_cast<long>(der.size()))) {
            X509_STORE_add_crl(store.get(), crl);
            X509_CRL_free(crl);
        }
    }
    std::unique_ptr<X509_STORE_CTX, StoreCtxFree> ctx(X509_STORE_CTX_new());
    if (!X509_STORE_CTX_init(ctx.get(), store.get(), signer, untrusted)) {
        error = "chain: " + openssl_error();
        return false;
    }
    auto* param = X509_STORE_CTX_get0_param(ctx.get());
    if (trust.check_crl)
        X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
    if (trust.at) X509_VERIFY_PARAM_set_time(param, std::chrono::system_clock::to_time_t(*trust.at));
    if (X509_verify_cert(ctx.get()) == 1) return true;
    error = std::string("signer certificate chain: ") +
            X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
    ERR_clear_error();
    return false;
}

CmsVerification verify(std::string_view cms_bytes, const std::string_view* data, const TrustStore* trust) {
    CmsVerification v;
    auto cms = parse_cms(cms_bytes);
    if (!cms) {
        v.error = "the signature is not a readable CMS structure";
        return v;
    }
    if (OBJ_obj2nid(CMS_get0_type(cms.get())) != NID_pkcs7_signed) {
        v.error = "the CMS structure is not SignedData";
        return v;
    }
    v.parsed = true;
    STACK_OF(X509)* certs = CMS_get1_certs(cms.get());
    for (int i = 0; certs && i < sk_X509_num(certs); ++i) {
        X509* x = sk_X509_value(certs, i);
        X509_up_ref(x);
        v.certificates.emplace_back(x, X509Free{});
    }
    auto* infos = CMS_get0_SignerInfos(cms.get());
    if (!infos || sk_CMS_SignerInfo_num(infos) < 1) {
        sk_X509_pop_free(certs, X509_free);
        v.error = "no signer in the CMS structure";
        return v;
    }
    CMS_set1_signers_certs(cms.get(), nullptr, 0);
    ERR_clear_error();
    CMS_SignerInfo* si = sk_CMS_SignerInfo_value(infos, 0);
    X509* signer = nullptr;
    X509_ALGOR* dig = nullptr;
    CMS_SignerInfo_get0_algs(si, nullptr, &signer, &dig, nullptr);
    if (signer) {
        X509_up_ref(signer);
        v.signer = X509Ptr(signer, X509Free{});
    }
    if (dig) {
        const ASN1_OBJECT* obj = nullptr;
        X509_ALGOR_get0(&obj, nullptr, nullptr, dig);
        v.digest_name = to_lower(OBJ_nid2sn(OBJ_obj2nid(obj)));
    }
    v.signing_time = signing_time(si);

    // Detached content is only hashed: no output BIO, so a large message is not copied.
    BioPtr out(data ? nullptr : BIO_new(BIO_s_mem()));
    BioPtr content;
    if (data) content = mem_bio(*data);
    unsigned flags = CMS_NO_SIGNER_CERT_VERIFY | CMS_BINARY;
    v.signature_ok = CMS_verify(cms.get(), nullptr, nullptr, content.get(), out.get(), flags) == 1;
    if (!v.signature_ok) v.error = "signature does not match the signed content: " + openssl_error();
    if (!data) v.content = bio_bytes(out.get());
    if (!v.signer && v.error.empty()) v.error = "the signer certificate is not in the CMS structure";
    if (trust && v.signer) {
        v.chain_checked = true;
        std::string chain_error;
        v.chain_ok = verify_chain(v.signer.get(), certs, *trust, chain_error);
        if (!v.chain_ok && v.error.empty()) v.error = chain_error;
    }
    sk_X509_pop_free(certs, X509_free);
    return v;
}

}  // namespace

std::string cms_sign_detached(const SigningIdentity& id, std::string_view data, Digest digest) {
    return sign(id, data, digest, true);
}

std::string cms_sign_attached(const SigningIdentity& id, std::string_view data, Digest digest) {
    return sign(id, data, digest, false);
}

TrustStore TrustStore::from_pem_file(const std::filesystem::path& path) {
    auto text = fs::read_file(path);
    auto in = mem_bio(text);
    TrustStore t;
    while (X509* x = PEM_read_bio_X509(in.get(), nullptr, nullptr, nullptr))
        t.anchors.emplace_back(x, X509Free{});
    ERR_clear_error();
    if (t.anchors.empty()) throw Error("no PEM certificate in trust file " + path.string());
    return t;
}

void TrustStore::add_crl_file(const std::filesystem::path& path) {
    auto bytes = fs::read_file(path);
    auto in = mem_bio(bytes);
    std::size_t before = crls_der.size();
    while (X509_CRL* crl = PEM_read_bio_X509_CRL(in.get(), nullptr, nullptr, nullptr)) {
        unsigned char* der = nullptr;
        int n = i2d_X509_CRL(crl, &der);
        if (n > 0) crls_der.emplace_back(reinterpret_cast<char*>(der), static_cast<std::size_t>(n));
        OPENSSL_free(der);
        X509_CRL_free(crl);
    }
    ERR_clear_error();
    if (crls_der.size() == before) {
        const unsigned char* p = reinterpret_cast<const unsigned char*>(bytes.data());
        if (X509_CRL* crl = d2i_X509_CRL(nullptr, &p, static_cast<long>(bytes.size()))) {
            X509_CRL_free(crl);
            crls_der.push_back(bytes);
        }
        ERR_clear_error();
    }
    if (crls_der.size() == before) throw Error("no CRL (PEM or DER) in " + path.string());
    check_crl = true;
}

CmsVerification cms_verify_detached(std::string_view cms, std::string_view data, const TrustStore* trust) {
    return verify(cms, &data, trust);
}

CmsVerification cms_verify_attached(std::string_view cms, const TrustStore* trust) {
    return verify(cms, nullptr, trust);
}

std::string certificate_der(X509* cert) {
    unsigned char* p = nullptr;
    int n = i2d_X509(cert, &p);
    if (n <= 0) throw Error("cannot encode certificate: " + openssl_error());
    std::string s(reinterpret_cast<char*>(p), static_cast<std::size_t>(n));
    OPENSSL_free(p);
    return s;
}

std::string certificate_sha1_hex(X509* cert) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!X509_digest(cert, EVP_sha1(), md, &n)) throw Error("cannot hash certificate: " + openssl_error());
    return to_hex(std::string_view(reinterpret_cast<char*>(md), n));
}

std::string certificate_subject(X509* cert) {
    BioPtr out(BIO_new(BIO_s_mem()));
    X509_NAME_print_ex(out.get(), X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
    return bio_bytes(out.get());
}

}  // namespace pecd::crypto
