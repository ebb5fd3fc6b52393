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

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "core/calendar.hpp"
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

// The SMIMECapabilities attribute (RFC 8551 2.5.2) that CMS_add1_signer adds by default,
// encoded once: CMS_add_standard_smimecap looks every cipher of its list up by name, a
// provider fetch each in OpenSSL 3, which cost about a fifth of a signature's CMS work
// besides the RSA operation. The signed attributes stay exactly OpenSSL's own.
const std::string& standard_smimecap_der() {
    static const std::string der = [] {
        STACK_OF(X509_ALGOR)* caps = nullptr;
        std::string out;
        if (CMS_add_standard_smimecap(&caps)) {
            unsigned char* p = nullptr;
            int n = i2d_X509_ALGORS(caps, &p);
            if (n > 0) out.assign(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n));
            OPENSSL_free(p);
        }
        sk_X509_ALGOR_pop_free(caps, X509_ALGOR_free);
        ERR_clear_error();
        return out;
    }();
    return der;
}

// Content up to this size is signed through a memory BIO kept by the thread.
constexpr std::size_t kKeptReaderLimit = 64 * 1024;

// The thread's memory BIO, holding a copy of data. Creating a BIO takes OpenSSL's
// process-wide ex_data write lock; in the flow benchmark's profile the BIO made for each
// signature spent 1 % of pecd's CPU waiting for it. Copying a message of a few
// kilobytes costs far less. Larger ones get a BIO of their own: the kept one keeps its
// capacity, and OpenSSL clears all of it at each reset.
BIO* kept_reader(std::string_view data) {
    thread_local BioPtr reader(BIO_new(BIO_s_mem()));
    if (!reader || BIO_reset(reader.get()) != 1) return nullptr;
    if (!data.empty() &&
        BIO_write(reader.get(), data.data(), static_cast<int>(data.size())) != static_cast<int>(data.size()))
        return nullptr;
    return reader.get();
}

std::string sign(const SigningIdentity& id, std::string_view data, Digest digest, bool detached) {
    if (!id.certificate || !id.key) throw Error("CMS signing: incomplete signing identity");
    StackPtr chain(sk_X509_new_null());
    for (auto& c : id.chain) sk_X509_push(chain.get(), c.get());
    unsigned flags = CMS_BINARY | CMS_PARTIAL | (detached ? CMS_DETACHED : 0u);
    CmsPtr cms(CMS_sign(nullptr, nullptr, chain.get(), nullptr, flags));
    if (!cms) throw Error("CMS signing: " + openssl_error());
    CMS_SignerInfo* si = CMS_add1_signer(cms.get(), id.certificate.get(), id.key.get(), digest_md(digest),
                                         flags | CMS_NOSMIMECAP);
    const auto& caps = standard_smimecap_der();
    if (!si || caps.empty() ||
        !CMS_signed_add1_attr_by_NID(si, NID_SMIMECapabilities, V_ASN1_SEQUENCE, caps.data(),
                                     static_cast<int>(caps.size())))
        throw Error("CMS signing: " + openssl_error());
    BioPtr fresh;
    BIO* in = data.size() <= kKeptReaderLimit ? kept_reader(data) : (fresh = mem_bio(data)).get();
    if (!in || !CMS_final(cms.get(), in, nullptr, flags)) throw Error("CMS signing: " + openssl_error());
    unsigned char* der = nullptr;
    const int n = i2d_CMS_ContentInfo(cms.get(), &der);
    if (n <= 0) throw Error("CMS encoding: " + openssl_error());
    std::string out(reinterpret_cast<const char*>(der), static_cast<std::size_t>(n));
    OPENSSL_free(der);
    return out;
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

// --- signer certificate cache ---
//
// OpenSSL 3.0 decodes every certificate's public key through the provider decoder
// framework while parsing a CMS structure (OSSL_DECODER_CTX_new_for_pkey): about a third of
// the cost of verifying a small PEC message, for the same few provider certificates every
// time. So the certificates are cut out of the SignedData before parsing and taken from a
// cache of parsed certificates keyed by their exact DER bytes. The cut is a plain TLV walk
// (definite and indefinite lengths); anything unexpected falls back to parsing the whole.

struct Tlv {
    std::size_t start = 0;    // first byte of the tag
    std::size_t content = 0;  // first byte of the content
    std::size_t end = 0;      // one past the element (after the end-of-contents octets)
    bool indefinite = false;
    unsigned char tag = 0;
    std::size_t length() const { return end - content - (indefinite ? 2 : 0); }
};

bool read_tlv(std::string_view d, std::size_t pos, Tlv& t, int depth = 0) {
    if (depth > 32 || pos + 2 > d.size()) return false;
    t = Tlv{};
    t.start = pos;
    t.tag = static_cast<unsigned char>(d[pos]);
    if ((t.tag & 0x1f) == 0x1f) return false;  // high tag numbers do not occur in SignedData
    auto first = static_cast<unsigned char>(d[pos + 1]);
    if (first == 0x80) {
        if (!(t.tag & 0x20)) return false;  // indefinite length only for constructed types
        t.indefinite = true;
        t.content = pos + 2;
        std::size_t p = t.content;
        for (;;) {
            if (p + 2 > d.size()) return false;
            if (d[p] == 0 && d[p + 1] == 0) {
                t.end = p + 2;
                return true;
            }
            Tlv child;
            if (!read_tlv(d, p, child, depth + 1)) return false;
            p = child.end;
        }
    }
    std::size_t len = first, n = 0;
    if (first > 0x80) {
        n = first & 0x7f;
        if (n > 4 || pos + 2 + n > d.size()) return false;
        len = 0;
        for (std::size_t i = 0; i < n; ++i) len = (len << 8) | static_cast<unsigned char>(d[pos + 2 + i]);
    }
    t.content = pos + 2 + n;
    if (len > d.size() - t.content) return false;
    t.end = t.content + len;
    return true;
}

// The header of a definite-length element with this tag and content length.
std::string tlv_header(unsigned char tag, std::size_t len) {
    std::string h(1, static_cast<char>(tag));
    if (len < 0x80) {
        h += static_cast<char>(len);
        return h;
    }
    std::string bytes;
    for (std::size_t l = len; l; l >>= 8) bytes.insert(bytes.begin(), static_cast<char>(l & 0xff));
    h += static_cast<char>(0x80 | bytes.size());
    return h + bytes;
}

// The header of `t` once `removed` content bytes are gone (indefinite: unchanged).
std::string shrunk_header(std::string_view d, const Tlv& t, std::size_t removed) {
    if (t.indefinite) return std::string(d.substr(t.start, t.content - t.start));
    return tlv_header(t.tag, t.length() - removed);
}

struct SplitCms {
    std::string without_certificates;
    std::vector<std::string_view> certificates;  // DER of each, views into the input
};

// ContentInfo { contentType, [0] SignedData { version, digestAlgorithms, encapContentInfo,
// [0] certificates OPTIONAL, ... } }: returns the structure with [0] certificates removed.
std::optional<SplitCms> split_certificates(std::string_view d) {
    Tlv ci, oid, explicit0, sd, version, digests, encap, certs;
    if (!read_tlv(d, 0, ci) || ci.tag != 0x30) return std::nullopt;
    if (!read_tlv(d, ci.content, oid) || oid.tag != 0x06) return std::nullopt;
    if (!read_tlv(d, oid.end, explicit0) || explicit0.tag != 0xa0) return std::nullopt;
    if (!read_tlv(d, explicit0.content, sd) || sd.tag != 0x30) return std::nullopt;
    if (!read_tlv(d, sd.content, version) || version.tag != 0x02) return std::nullopt;
    if (!read_tlv(d, version.end, digests) || digests.tag != 0x31) return std::nullopt;
    if (!read_tlv(d, digests.end, encap) || encap.tag != 0x30) return std::nullopt;
    if (!read_tlv(d, encap.end, certs) || certs.tag != 0xa0) return std::nullopt;
    SplitCms out;
    for (std::size_t p = certs.content; p < certs.end - (certs.indefinite ? 2 : 0);) {
        Tlv c;
        if (!read_tlv(d, p, c) || c.tag != 0x30) return std::nullopt;  // only plain certificates
        out.certificates.push_back(d.substr(c.start, c.end - c.start));
        p = c.end;
    }
    std::size_t removed = certs.end - certs.start;
    std::string sd_header = shrunk_header(d, sd, removed);
    std::size_t removed0 = removed + (sd.content - sd.start) - sd_header.size();
    std::string e0_header = shrunk_header(d, explicit0, removed0);
    std::size_t removed_ci = removed0 + (explicit0.content - explicit0.start) - e0_header.size();
    std::string ci_header = shrunk_header(d, ci, removed_ci);
    auto& w = out.without_certificates;
    w.reserve(d.size());
    w += ci_header;
    w += d.substr(ci.content, explicit0.start - ci.content);
    w += e0_header;
    w += d.substr(explicit0.content, sd.start - explicit0.content);
    w += sd_header;
    w += d.substr(sd.content, certs.start - sd.content);
    w += d.substr(certs.end, ci.end - certs.end);
    return out;
}

// Parsed certificates by DER; bounded (cleared when full), shared by all threads.
X509Ptr cached_certificate(std::string_view der) {
    static std::mutex mutex;
    static std::unordered_map<std::string, X509Ptr> cache;
    {
        std::lock_guard lock(mutex);
        auto it = cache.find(std::string(der));
        if (it != cache.end()) return it->second;
    }
    const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
    X509* x = d2i_X509(nullptr, &p, static_cast<long>(der.size()));
    if (!x || p != reinterpret_cast<const unsigned char*>(der.data()) + der.size()) {
        X509_free(x);
        ERR_clear_error();
        return nullptr;
    }
    X509Ptr cert(x, X509Free{});
    std::lock_guard lock(mutex);
    if (cache.size() >= 256) cache.clear();
    cache.emplace(std::string(der), cert);
    return cert;
}

// The CMS structure and the certificates it carries (owned references in `certs`).
CmsPtr parse_with_certificates(std::string_view bytes, STACK_OF(X509) * &certs) {
    certs = nullptr;
    if (bytes.substr(0, 40).find("-----BEGIN") == std::string_view::npos) {
        if (auto split = split_certificates(bytes)) {
            STACK_OF(X509)* stack = sk_X509_new_null();
            bool all = true;
            for (auto der : split->certificates) {
                auto c = cached_certificate(der);
                if (!c) {
                    all = false;
                    break;
                }
                X509_up_ref(c.get());
                sk_X509_push(stack, c.get());
            }
            if (all) {
                if (auto cms = parse_cms(split->without_certificates)) {
                    certs = stack;
                    return cms;
                }
            }
            sk_X509_pop_free(stack, X509_free);
        }
    }
    auto cms = parse_cms(bytes);
    if (cms) certs = CMS_get1_certs(cms.get());
    return cms;
}

std::optional<TimePoint> signing_time(CMS_SignerInfo* si) {
    int idx = CMS_signed_get_attr_by_NID(si, NID_pkcs9_signingTime, -1);
    if (idx < 0) return std::nullopt;
    X509_ATTRIBUTE* attr = CMS_signed_get_attr(si, idx);
    ASN1_TYPE* t = attr ? X509_ATTRIBUTE_get0_type(attr, 0) : nullptr;
    if (!t || (t->type != V_ASN1_UTCTIME && t->type != V_ASN1_GENERALIZEDTIME)) return std::nullopt;
    auto seconds = asn1_time_seconds(reinterpret_cast<ASN1_TIME*>(t->value.asn1_string));
    if (!seconds) return std::nullopt;
    // The signer chose this time: a GeneralizedTime may say year 9999, which no TimePoint
    // holds; such a time is reported as absent.
    return to_time_point(*seconds);
}

// The DER of an OpenSSL object, through its i2d function.
template <class T>
std::string der_of(const T* object, int (*i2d)(const T*, unsigned char**)) {
    unsigned char* der = nullptr;
    int n = i2d(object, &der);
    std::string out;
    if (n > 0) out.assign(reinterpret_cast<char*>(der), static_cast<std::size_t>(n));
    OPENSSL_free(der);
    return out;
}

}  // namespace

// A CRL's issuer and the span in which OpenSSL takes it as current.
struct CrlSpan {
    std::string issuer_der;
    std::int64_t last_update = 0;
    std::optional<std::int64_t> next_update;
};

// [from, until): when a chain found good stays good. The verdict depends on the time only
// through the validity of its certificates and of the CRLs of their issuers.
struct GoodSpan {
    std::int64_t from = 0;
    std::int64_t until = 0;
};

// A chain found good: when it stays good, and the SHA-256 of the certificates it took
// from the message (its intermediates) besides the signer.
struct KeptChain {
    GoodSpan span;
    std::vector<std::string> from_message;
};

struct TrustCache::Built {
    std::unique_ptr<X509_STORE, StoreFree> store;
    std::vector<CrlSpan> crls;
    std::mutex mutex;
    std::unordered_map<std::string, KeptChain> good;  // by signer_key()
    std::atomic<std::uint64_t> hits{0};
};

TrustCache& TrustCache::operator=(const TrustCache&) noexcept {
    std::lock_guard lock(mutex_);
    built_.reset();
    built_from_.clear();
    return *this;
}

std::optional<std::chrono::sys_seconds> asn1_time_seconds(const ASN1_TIME* t) {
    std::tm tm{};
    if (!t || !ASN1_TIME_to_tm(t, &tm)) return std::nullopt;
    return utc_seconds(tm);
}

namespace {

// asn1_time_seconds() as a plain count, the unit of a GoodSpan.
std::optional<std::int64_t> epoch_seconds(const ASN1_TIME* t) {
    auto s = asn1_time_seconds(t);
    if (!s) return std::nullopt;
    return s->time_since_epoch().count();
}

}  // namespace

std::shared_ptr<TrustCache::Built> TrustCache::get(const std::vector<X509Ptr>& anchors,
                                                   const std::vector<std::string>& crls) const {
    std::vector<const void*> from;
    from.reserve(anchors.size() + 3 * crls.size());
    for (const auto& a : anchors) from.push_back(a.get());
    for (const auto& c : crls) {
        // A CRL re-signed in place would keep its address and often its size, never its
        // last bytes (the signature).
        auto tail = std::string_view(c).substr(c.size() > 64 ? c.size() - 64 : 0);
        from.push_back(c.data());
        from.push_back(reinterpret_cast<const void*>(c.size()));
        from.push_back(reinterpret_cast<const void*>(std::hash<std::string_view>{}(tail)));
    }
    std::lock_guard lock(mutex_);
    if (built_ && from == built_from_) return built_;
    auto built = std::make_shared<Built>();
    built->store.reset(X509_STORE_new());
    if (!built->store) throw Error("trust store: " + openssl_error());
    for (const auto& a : anchors) X509_STORE_add_cert(built->store.get(), a.get());
    for (const auto& der : crls) {
        const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
        X509_CRL* crl = d2i_X509_CRL(nullptr, &p, static_cast<long>(der.size()));
        if (!crl) continue;
        X509_STORE_add_crl(built->store.get(), crl);
        auto last = epoch_seconds(X509_CRL_get0_lastUpdate(crl));
        const ASN1_TIME* next_time = X509_CRL_get0_nextUpdate(crl);
        auto next = epoch_seconds(next_time);
        CrlSpan span{der_of(X509_CRL_get_issuer(crl), i2d_X509_NAME), INT64_MAX, INT64_MIN};
        if (last && (next || !next_time)) {  // unreadable dates: no chain it may decide is kept
            span.last_update = *last;
            span.next_update = next;
        }
        built->crls.push_back(std::move(span));
        X509_CRL_free(crl);
    }
    ERR_clear_error();
    built_ = std::move(built);
    built_from_ = std::move(from);
    return built_;
}

namespace {

// Chains found good kept per trust snapshot: a provider index lists a few hundred signer
// certificates at most; past this the map starts again rather than grow without bound.
constexpr std::size_t kMaxGoodChains = 4096;

// The span in which the chain OpenSSL just built stays good: inside every certificate's
// validity and, when CRLs are checked, every span of a CRL issued by one of them.
GoodSpan good_span(X509_STORE_CTX* ctx, const TrustCache::Built& built, bool check_crl) {
    GoodSpan span{INT64_MIN, INT64_MAX};
    STACK_OF(X509)* chain = X509_STORE_CTX_get0_chain(ctx);
    for (int i = 0; chain && i < sk_X509_num(chain); ++i) {
        X509* c = sk_X509_value(chain, i);
        auto not_before = epoch_seconds(X509_get0_notBefore(c));
        auto not_after = epoch_seconds(X509_get0_notAfter(c));
        if (!not_before || !not_after) return {0, 0};
        span.from = std::max(span.from, *not_before);
        span.until = std::min(span.until, *not_after);  // OpenSSL: expired once past notAfter
        if (!check_crl) continue;
        auto subject = der_of(X509_get_subject_name(c), i2d_X509_NAME);
        for (const auto& crl : built.crls) {
            if (crl.issuer_der != subject) continue;
            span.from = std::max(span.from, crl.last_update);
            if (crl.next_update) span.until = std::min(span.until, *crl.next_update);
        }
    }
    return span;
}

std::string sha256_of(std::string_view bytes) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!EVP_Digest(bytes.data(), bytes.size(), md, &n, EVP_sha256(), nullptr)) return std::string(bytes);
    return std::string(reinterpret_cast<char*>(md), n);
}

std::string certificate_hash(X509* certificate) {
    return sha256_of(der_of(certificate, i2d_X509));
}

// Kept chains are found by their signer alone (the CRL flag and the SHA-256 of its DER),
// not by every certificate the message carries: the certificate set is not covered by the
// signature, so a sender could add one more to each copy of a genuine envelope and have
// every copy checked in full (~2.5 ms with a CRL of 100 000 entries). What a kept chain
// needs from the message, its intermediates, is checked at each use (chain_still_holds).
std::string signer_key(X509* signer, bool check_crl) {
    return (check_crl ? "c" : "-") + certificate_hash(signer);
}

std::vector<std::string> message_certificate_hashes(STACK_OF(X509) * untrusted) {
    std::vector<std::string> out;
    for (int i = 0; untrusted && i < sk_X509_num(untrusted); ++i)
        out.push_back(certificate_hash(sk_X509_value(untrusted, i)));
    return out;
}

// The intermediates of the chain OpenSSL built that it took from the message's set: past
// the signer, short of the last certificate, the trust anchor (from the store, whether or
// not the message carries a copy).
std::vector<std::string> taken_from_message(X509_STORE_CTX* ctx, const std::vector<std::string>& in_message) {
    std::vector<std::string> out;
    STACK_OF(X509)* chain = X509_STORE_CTX_get0_chain(ctx);
    for (int i = 1; chain && i + 1 < sk_X509_num(chain); ++i) {
        auto h = certificate_hash(sk_X509_value(chain, i));
        if (std::find(in_message.begin(), in_message.end(), h) != in_message.end())
            out.push_back(std::move(h));
    }
    return out;
}

// A kept chain decides this message as it did the first: the time lies in its span and
// the message carries every intermediate the chain was built with, so a full check would
// find that same chain (extra certificates change nothing; a missing one means a check).
bool chain_still_holds(const KeptChain& kept, std::int64_t at, const std::vector<std::string>& in_message) {
    if (at < kept.span.from || at >= kept.span.until) return false;
    for (const auto& h : kept.from_message)
        if (std::find(in_message.begin(), in_message.end(), h) == in_message.end()) return false;
    return true;
}

bool verify_chain(X509* signer, STACK_OF(X509) * untrusted, const TrustStore& trust, std::string& error) {
    auto built = trust.cache.get(trust.anchors, trust.crls_der);
    const std::int64_t at = trust.at ? std::chrono::system_clock::to_time_t(*trust.at) : std::time(nullptr);
    std::string key = signer_key(signer, trust.check_crl);
    const auto in_message = message_certificate_hashes(untrusted);
    {
        std::lock_guard lock(built->mutex);
        auto it = built->good.find(key);
        if (it != built->good.end() && chain_still_holds(it->second, at, in_message)) {
            ++built->hits;
            return true;
        }
    }
    std::unique_ptr<X509_STORE_CTX, StoreCtxFree> ctx(X509_STORE_CTX_new());
    if (!X509_STORE_CTX_init(ctx.get(), built->store.get(), signer, untrusted)) {
        error = "chain: " + openssl_error();
        return false;
    }
    auto* param = X509_STORE_CTX_get0_param(ctx.get());
    if (trust.check_crl)
        X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
    X509_VERIFY_PARAM_set_time(param, static_cast<time_t>(at));
    if (X509_verify_cert(ctx.get()) == 1) {
        KeptChain kept{good_span(ctx.get(), *built, trust.check_crl),
                       taken_from_message(ctx.get(), in_message)};
        std::lock_guard lock(built->mutex);
        if (built->good.size() >= kMaxGoodChains) built->good.clear();  // bounded: many signers
        built->good[std::move(key)] = std::move(kept);
        return true;
    }
    error = std::string("signer certificate chain: ") +
            X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
    ERR_clear_error();
    return false;
}

}  // namespace

std::uint64_t TrustCache::kept_chain_uses() const {
    std::lock_guard lock(mutex_);
    return built_ ? built_->hits.load() : 0;
}

namespace {

CmsVerification verify(std::string_view cms_bytes, const std::string_view* data, const TrustStore* trust) {
    CmsVerification v;
    STACK_OF(X509)* certs = nullptr;
    auto cms = parse_with_certificates(cms_bytes, certs);
    std::unique_ptr<STACK_OF(X509), void (*)(STACK_OF(X509)*)> certs_guard(
        certs, [](STACK_OF(X509) * s) { sk_X509_pop_free(s, X509_free); });
    if (!cms) {
        v.error = "the signature is not a readable CMS structure";
        return v;
    }
    if (OBJ_obj2nid(CMS_get0_type(cms.get())) != NID_pkcs7_signed) {
        v.error = "the CMS structure is not SignedData";
        return v;
    }
    v.parsed = true;
    for (int i = 0; certs && i < sk_X509_num(certs); ++i) {
        X509* x = sk_X509_value(certs, i);
        X509_up_ref(x);
        v.certificates.emplace_back(x, X509Free{});
    }
    auto* infos = CMS_get0_SignerInfos(cms.get());
    if (!infos || sk_CMS_SignerInfo_num(infos) < 1) {
        v.error = "no signer in the CMS structure";
        return v;
    }
    CMS_set1_signers_certs(cms.get(), certs, 0);
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
    // OpenSSL 3.0's CMS_verify copies detached content given as a memory BIO into a
    // BIO of its own, and leaks that copy on some error paths (hostile structures
    // found it under LeakSanitizer). Handed through a buffering filter, the content is
    // read in place: no copy to leak, and a large message is not duplicated.
    BioPtr content, reader;
    if (data) {
        content = mem_bio(*data);
        reader.reset(BIO_new(BIO_f_buffer()));
        if (!reader) throw Error("CMS verification: " + openssl_error());
        BIO_push(reader.get(), content.get());
    }
    unsigned flags = CMS_NO_SIGNER_CERT_VERIFY | CMS_BINARY;
    v.signature_ok = CMS_verify(cms.get(), certs, nullptr, reader.get(), out.get(), flags) == 1;
    if (reader) BIO_pop(reader.get());
    if (!v.signature_ok) v.error = "signature does not match the signed content: " + openssl_error();
    if (!data) v.content = bio_bytes(out.get());
    if (!v.signer && v.error.empty()) v.error = "the signer certificate is not in the CMS structure";
    if (trust && v.signer) {
        v.chain_checked = true;
        std::string chain_error;
        v.chain_ok = verify_chain(v.signer.get(), certs, *trust, chain_error);
        if (!v.chain_ok && v.error.empty()) v.error = chain_error;
    }
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

std::string distinguished_name(const X509_NAME* name) {
    BioPtr out(BIO_new(BIO_s_mem()));
    X509_NAME_print_ex(out.get(), name, 0, XN_FLAG_RFC2253);
    return bio_bytes(out.get());
}

std::string certificate_subject(X509* cert) {
    return distinguished_name(X509_get_subject_name(cert));
}

}  // namespace pecd::crypto
