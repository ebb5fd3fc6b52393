// timestamp.cpp - RFC 3161 time stamps on OpenSSL's TS_* API
//
// See timestamp.hpp for the contract. Everything here is OpenSSL's own RFC 3161
// implementation (TS_REQ, TS_RESP_CTX, TS_VERIFY_CTX); this file only manages object
// lifetimes, reports errors in words and feeds the time from a pecd::Clock.
#include "crypto/timestamp.hpp"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/ts.h>
#include <openssl/x509v3.h>

#include <chrono>
#include <ctime>
#include <memory>

#include "core/calendar.hpp"
#include "core/error.hpp"
#include "core/strings.hpp"
#include "crypto/cms.hpp"

namespace pecd::crypto {
namespace {

template <auto Fn>
struct Deleter {
    template <class T>
    void operator()(T* p) const noexcept {
        Fn(p);
    }
};
using TsReqPtr = std::unique_ptr<TS_REQ, Deleter<TS_REQ_free>>;
using TsRespPtr = std::unique_ptr<TS_RESP, Deleter<TS_RESP_free>>;
using TsRespCtxPtr = std::unique_ptr<TS_RESP_CTX, Deleter<TS_RESP_CTX_free>>;
using TsVerifyCtxPtr = std::unique_ptr<TS_VERIFY_CTX, Deleter<TS_VERIFY_CTX_free>>;
using TsMsgImprintPtr = std::unique_ptr<TS_MSG_IMPRINT, Deleter<TS_MSG_IMPRINT_free>>;
using AlgorPtr = std::unique_ptr<X509_ALGOR, Deleter<X509_ALGOR_free>>;
using Asn1IntPtr = std::unique_ptr<ASN1_INTEGER, Deleter<ASN1_INTEGER_free>>;
using Asn1ObjPtr = std::unique_ptr<ASN1_OBJECT, Deleter<ASN1_OBJECT_free>>;
using BignumPtr = std::unique_ptr<BIGNUM, Deleter<BN_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free_all>>;
using StorePtr = std::unique_ptr<X509_STORE, Deleter<X509_STORE_free>>;
struct X509StackFree {
    void operator()(STACK_OF(X509) * s) const noexcept { sk_X509_free(s); }
};
using X509StackPtr = std::unique_ptr<STACK_OF(X509), X509StackFree>;

// The queued OpenSSL errors as one line (and the queue emptied).
std::string openssl_errors() {
    std::string out;
    while (unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        if (!out.empty()) out += "; ";
        out += buf;
    }
    return out;
}

[[noreturn]] void fail(const std::string& what) {
    std::string detail = openssl_errors();
    throw Error("time stamp: " + what + (detail.empty() ? "" : " (" + detail + ")"));
}

std::string bio_contents(BIO* bio) {
    char* data = nullptr;
    long len = BIO_get_mem_data(bio, &data);
    return std::string(data, static_cast<std::size_t>(len));
}

// A positive random ASN1_INTEGER of `bytes` bytes (nonces and serial numbers).
Asn1IntPtr random_integer(int bytes, std::string* raw = nullptr) {
    std::string buf(static_cast<std::size_t>(bytes), '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(buf.data()), bytes) != 1) fail("no randomness");
    buf[0] = static_cast<char>((buf[0] & 0x7f) | 0x01);  // positive and full length
    BignumPtr bn(BN_bin2bn(reinterpret_cast<const unsigned char*>(buf.data()), bytes, nullptr));
    if (!bn) fail("BN_bin2bn");
    Asn1IntPtr out(BN_to_ASN1_INTEGER(bn.get(), nullptr));
    if (!out) fail("BN_to_ASN1_INTEGER");
    if (raw) *raw = buf;
    return out;
}

std::string integer_bytes(const ASN1_INTEGER* i) {
    if (!i) return {};
    BignumPtr bn(ASN1_INTEGER_to_BN(i, nullptr));
    if (!bn) return {};
    std::string out(static_cast<std::size_t>(BN_num_bytes(bn.get())), '\0');
    BN_bn2bin(bn.get(), reinterpret_cast<unsigned char*>(out.data()));
    return out;
}

std::optional<TimePoint> token_time(const ASN1_GENERALIZEDTIME* t) {
    auto seconds = asn1_time_seconds(t);
    if (!seconds) return std::nullopt;
    std::chrono::sys_time<std::chrono::microseconds> at = *seconds;
    // Fractions of a second (RFC 3161 allows them): "YYYYMMDDhhmmss.fffZ".
    std::string_view s(reinterpret_cast<const char*>(t->data), static_cast<std::size_t>(t->length));
    if (auto dot = s.find('.'); dot != std::string_view::npos) {
        long frac = 0, scale = 1;
        for (std::size_t i = dot + 1; i < s.size() && s[i] >= '0' && s[i] <= '9' && scale < 1000000; ++i) {
            frac = frac * 10 + (s[i] - '0');
            scale *= 10;
        }
        at += std::chrono::microseconds(frac * (1000000 / scale));
    }
    // The TSA chose this time; one no TimePoint holds (year 9999) is reported as absent.
    return to_time_point(at);
}

std::string object_text(const ASN1_OBJECT* o) {
    if (!o) return {};
    char buf[128];
    int n = OBJ_obj2txt(buf, sizeof buf, o, 1);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(std::min<int>(n, sizeof buf - 1)))
                 : std::string();
}

TsRespPtr decode_response(std::string_view der) {
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    TsRespPtr resp(d2i_TS_RESP(nullptr, &p, static_cast<long>(der.size())));
    if (!resp) {
        openssl_errors();
        throw ParseError("not a DER TimeStampResp", 0, "TimeStampResp");
    }
    return resp;
}

std::string signer_subject(PKCS7* token) {
    if (!token) return {};
    STACK_OF(X509)* signers = PKCS7_get0_signers(token, nullptr, 0);
    if (!signers) {
        openssl_errors();
        return {};
    }
    X509StackPtr guard(signers);
    if (sk_X509_num(signers) < 1) return {};
    return certificate_subject(sk_X509_value(signers, 0));
}

int clock_time_cb(TS_RESP_CTX*, void* data, long* sec, long* usec) {
    const auto* clock = static_cast<const Clock*>(data);
    auto since = clock->now().time_since_epoch();
    auto s = std::chrono::duration_cast<std::chrono::seconds>(since);
    *sec = static_cast<long>(s.count());
    *usec = static_cast<long>(std::chrono::duration_cast<std::chrono::microseconds>(since - s).count());
    return 1;
}

ASN1_INTEGER* serial_cb(TS_RESP_CTX*, void*) {
    // 128 random bits: unique without a persistent counter, as RFC 3161 2.4.2 allows.
    return random_integer(16).release();
}

void add_extension(X509* cert, int nid, const char* value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    if (!ext) fail(std::string("extension ") + OBJ_nid2sn(nid));
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
}

}  // namespace

std::string sha256(std::string_view data) {
    std::string out(SHA256_DIGEST_LENGTH, '\0');
    SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(),
           reinterpret_cast<unsigned char*>(out.data()));
    return out;
}

TimestampRequest make_timestamp_request(std::string_view digest) {
    if (digest.size() != SHA256_DIGEST_LENGTH)
        throw Error("time stamp request: digest is not SHA-256 (32 bytes)");
    TsReqPtr req(TS_REQ_new());
    AlgorPtr alg(X509_ALGOR_new());
    TsMsgImprintPtr imprint(TS_MSG_IMPRINT_new());
    if (!req || !alg || !imprint) fail("allocation");
    X509_ALGOR_set0(alg.get(), OBJ_nid2obj(NID_sha256), V_ASN1_NULL, nullptr);
    if (!TS_MSG_IMPRINT_set_algo(imprint.get(), alg.get()) ||
        !TS_MSG_IMPRINT_set_msg(imprint.get(),
                                reinterpret_cast<unsigned char*>(const_cast<char*>(digest.data())),
                                static_cast<int>(digest.size())))
        fail("message imprint");
    TimestampRequest out;
    Asn1IntPtr nonce = random_integer(8, &out.nonce);
    if (!TS_REQ_set_version(req.get(), 1) || !TS_REQ_set_msg_imprint(req.get(), imprint.get()) ||
        !TS_REQ_set_nonce(req.get(), nonce.get()) || !TS_REQ_set_cert_req(req.get(), 1))
        fail("request fields");
    unsigned char* der = nullptr;
    int len = i2d_TS_REQ(req.get(), &der);
    if (len <= 0) fail("request encoding");
    out.der.assign(reinterpret_cast<char*>(der), static_cast<std::size_t>(len));
    OPENSSL_free(der);
    return out;
}

TimestampResponse parse_timestamp_response(std::string_view der) {
    TsRespPtr resp = decode_response(der);
    TimestampResponse out;
    TS_STATUS_INFO* status = TS_RESP_get_status_info(resp.get());
    out.status = static_cast<int>(ASN1_INTEGER_get(TS_STATUS_INFO_get0_status(status)));
    if (const STACK_OF(ASN1_UTF8STRING)* text = TS_STATUS_INFO_get0_text(status)) {
        for (int i = 0; i < sk_ASN1_UTF8STRING_num(text); ++i) {
            const ASN1_UTF8STRING* s = sk_ASN1_UTF8STRING_value(text, i);
            if (!out.status_text.empty()) out.status_text += "; ";
            out.status_text.append(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                   static_cast<std::size_t>(ASN1_STRING_length(s)));
        }
    }
    PKCS7* token = TS_RESP_get_token(resp.get());
    if (!token) return out;
    unsigned char* buf = nullptr;
    int len = i2d_PKCS7(token, &buf);
    if (len > 0) out.token_der.assign(reinterpret_cast<char*>(buf), static_cast<std::size_t>(len));
    OPENSSL_free(buf);
    if (TS_TST_INFO* info = TS_RESP_get_tst_info(resp.get())) {
        out.gen_time = token_time(TS_TST_INFO_get_time(info));
        out.serial_hex = to_hex(integer_bytes(TS_TST_INFO_get_serial(info)));
        out.policy_oid = object_text(TS_TST_INFO_get_policy_id(info));
        const ASN1_OCTET_STRING* msg = TS_MSG_IMPRINT_get_msg(TS_TST_INFO_get_msg_imprint(info));
        out.imprint.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(msg)),
                           static_cast<std::size_t>(ASN1_STRING_length(msg)));
    }
    out.tsa_subject = signer_subject(token);
    return out;
}

TimestampVerification verify_timestamp_response(std::string_view response_der, std::string_view digest,
                                                const std::vector<X509Ptr>& trust_anchors,
                                                std::string_view expected_nonce) {
    TimestampVerification out;
    TsRespPtr resp;
    try {
        resp = decode_response(response_der);
    } catch (const ParseError& e) {
        out.error = e.what();
        return out;
    }
    TS_TST_INFO* info = TS_RESP_get_tst_info(resp.get());
    if (info) {
        out.gen_time = token_time(TS_TST_INFO_get_time(info));
        if (!out.gen_time) {
            // Without its time a token proves nothing, and the chain could not be checked
            // at the moment it was made.
            out.error =
                "the time stamp's time (genTime) is malformed or outside 1677-09-21 to 2262-04-11, the range "
                "this system holds";
            return out;
        }
    }
    if (!expected_nonce.empty() && (!info || integer_bytes(TS_TST_INFO_get_nonce(info)) != expected_nonce)) {
        out.error = "the nonce in the time stamp does not match the request";
        return out;
    }
    StorePtr store(X509_STORE_new());
    for (const auto& anchor : trust_anchors) X509_STORE_add_cert(store.get(), anchor.get());
    if (out.gen_time) {
        // The TSA certificate must have been valid when the token was made; years later
        // it may have expired without the token losing its value.
        X509_VERIFY_PARAM_set_time(X509_STORE_get0_param(store.get()),
                                   std::chrono::system_clock::to_time_t(*out.gen_time));
    }
    TsVerifyCtxPtr ctx(TS_VERIFY_CTX_new());
    TS_VERIFY_CTX_set_flags(ctx.get(), TS_VFY_VERSION | TS_VFY_SIGNATURE | TS_VFY_IMPRINT);
    TS_VERIFY_CTX_set_store(ctx.get(), store.release());
    auto* imprint = static_cast<unsigned char*>(OPENSSL_memdup(digest.data(), digest.size()));
    TS_VERIFY_CTX_set_imprint(ctx.get(), imprint, static_cast<long>(digest.size()));
    if (TS_RESP_verify_response(ctx.get(), resp.get()) != 1) {
        std::string detail = openssl_errors();
        out.error = "time stamp does not verify" + (detail.empty() ? std::string() : ": " + detail);
        return out;
    }
    openssl_errors();
    out.ok = true;
    return out;
}

std::vector<X509Ptr> timestamp_certificates(std::string_view response_der) {
    std::vector<X509Ptr> out;
    TsRespPtr resp = decode_response(response_der);
    PKCS7* token = TS_RESP_get_token(resp.get());
    if (!token || !PKCS7_type_is_signed(token) || !token->d.sign) return out;
    STACK_OF(X509)* certs = token->d.sign->cert;
    for (int i = 0; certs && i < sk_X509_num(certs); ++i) {
        X509* c = sk_X509_value(certs, i);
        X509_up_ref(c);
        out.emplace_back(c, X509Free{});
    }
    return out;
}

SigningIdentity create_tsa_identity(const std::string& common_name, int days) {
    PkeyPtr key(EVP_EC_gen("P-256"), PkeyFree{});
    if (!key) fail("key generation");
    X509Ptr cert(X509_new(), X509Free{});
    if (!cert) fail("allocation");
    X509_set_version(cert.get(), 2);
    Asn1IntPtr serial = random_integer(16);
    X509_set_serialNumber(cert.get(), serial.get());
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -24L * 3600);  // tolerate skewed peers
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(days) * 24 * 3600);
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1, 0);
    X509_set_issuer_name(cert.get(), name);
    X509_set_pubkey(cert.get(), key.get());
    add_extension(cert.get(), NID_basic_constraints, "critical,CA:FALSE");
    add_extension(cert.get(), NID_key_usage, "critical,digitalSignature,nonRepudiation");
    add_extension(cert.get(), NID_ext_key_usage, "critical,timeStamping");
    add_extension(cert.get(), NID_subject_key_identifier, "hash");
    if (X509_sign(cert.get(), key.get(), EVP_sha256()) <= 0) fail("certificate signature");
    return SigningIdentity{cert, key, {}};
}

std::string certificate_pem(X509* cert) {
    BioPtr bio(BIO_new(BIO_s_mem()));
    if (!PEM_write_bio_X509(bio.get(), cert)) fail("PEM encoding of a certificate");
    return bio_contents(bio.get());
}

std::string private_key_pem(EVP_PKEY* key) {
    BioPtr bio(BIO_new(BIO_s_mem()));
    if (!PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr))
        fail("PEM encoding of a key");
    return bio_contents(bio.get());
}

TimestampAuthority::TimestampAuthority(SigningIdentity identity, const Clock& clock, std::string policy_oid)
    : identity_(std::move(identity)), clock_(clock), policy_oid_(std::move(policy_oid)) {
    if (!identity_.certificate || !identity_.key)
        throw Error("time-stamping authority: no certificate or key");
    if (X509_check_purpose(identity_.certificate.get(), X509_PURPOSE_TIMESTAMP_SIGN, 0) != 1)
        throw Error(
            "time-stamping authority: the certificate lacks the critical timeStamping extended key usage");
    Asn1ObjPtr policy(OBJ_txt2obj(policy_oid_.c_str(), 1));
    if (!policy) throw Error("time-stamping authority: bad policy OID " + policy_oid_);
}

std::string TimestampAuthority::respond(std::string_view request_der) {
    TsRespCtxPtr ctx(TS_RESP_CTX_new());
    if (!ctx) fail("allocation");
    Asn1ObjPtr policy(OBJ_txt2obj(policy_oid_.c_str(), 1));
    if (!TS_RESP_CTX_set_signer_cert(ctx.get(), identity_.certificate.get()) ||
        !TS_RESP_CTX_set_signer_key(ctx.get(), identity_.key.get()) ||
        !TS_RESP_CTX_set_def_policy(ctx.get(), policy.get()) ||
        !TS_RESP_CTX_set_signer_digest(ctx.get(), EVP_sha256()) ||
        !TS_RESP_CTX_set_ess_cert_id_digest(ctx.get(), EVP_sha256()) ||
        !TS_RESP_CTX_add_md(ctx.get(), EVP_sha256()) || !TS_RESP_CTX_add_md(ctx.get(), EVP_sha384()) ||
        !TS_RESP_CTX_add_md(ctx.get(), EVP_sha512()) || !TS_RESP_CTX_set_accuracy(ctx.get(), 1, 0, 0))
        fail("TSA context");
    if (!identity_.chain.empty()) {
        X509StackPtr chain(sk_X509_new_null());
        for (const auto& c : identity_.chain) sk_X509_push(chain.get(), c.get());
        if (!TS_RESP_CTX_set_certs(ctx.get(), chain.get())) fail("TSA chain");
    }
    TS_RESP_CTX_set_serial_cb(ctx.get(), serial_cb, nullptr);
    TS_RESP_CTX_set_time_cb(ctx.get(), clock_time_cb, const_cast<Clock*>(&clock_));
    BioPtr in(BIO_new_mem_buf(request_der.data(), static_cast<int>(request_der.size())));
    TsRespPtr resp(TS_RESP_create_response(ctx.get(), in.get()));
    if (!resp) fail("response creation");
    openssl_errors();  // a rejected request leaves its reason queued; it is in the reply
    unsigned char* der = nullptr;
    int len = i2d_TS_RESP(resp.get(), &der);
    if (len <= 0) fail("response encoding");
    std::string out(reinterpret_cast<char*>(der), static_cast<std::size_t>(len));
    OPENSSL_free(der);
    return out;
}

}  // namespace pecd::crypto
