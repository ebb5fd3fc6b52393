// cms.hpp - CMS (PKCS#7) SignedData: sign and verify, detached and attached
//
// Detached signatures are what S/MIME multipart/signed carries (PEC messages, legal-log
// seals); attached ones are what a signed LDIF (.p7m) is. Outputs are DER. Inputs may be
// DER, BER (indefinite length, as Java/BouncyCastle writes) or PEM.
//
// Verification keeps its verdicts apart: a signature can be intact while the signer's
// chain is not trusted, and callers (pecctl verify, the reception point) report each.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"
#include "crypto/identity.hpp"

namespace pecd::crypto {

enum class Digest { sha1, sha256 };

// Signs data; the signer certificate and chain are embedded. SHA-256 unless told.
std::string cms_sign_detached(const SigningIdentity& id, std::string_view data,
                              Digest digest = Digest::sha256);
std::string cms_sign_attached(const SigningIdentity& id, std::string_view data,
                              Digest digest = Digest::sha256);

// An ASN.1 time (UTCTime or GeneralizedTime) as UTC seconds; nullopt when unreadable.
std::optional<std::chrono::sys_seconds> asn1_time_seconds(const ASN1_TIME* t);

// What a TrustStore's chain checks reuse: the OpenSSL store of its anchors and CRLs,
// built at the first verification, and the chains found good with it, each with the span
// of time in which every certificate and CRL that decided it is valid. Why: decoding the
// anchors and CRLs for every message costs ~30 ms with a CA's CRL of 100 000 entries, and
// checking a chain against that CRL still ~2.5 ms (its signature is over all its bytes),
// where a provider receives the same few signer certificates all day
// (bench/pec_verify, BM_VerifyEnvelopeCrl). Shared by concurrent verifications; rebuilt,
// with no chain known, when the anchors or CRLs change; a copy of a TrustStore starts
// empty and builds its own. Only good verdicts are kept: a failure is checked every time.
// A kept chain is found by its signer certificate and used while the message carries the
// intermediates it was built with; other certificates in the message do not matter.
class TrustCache {
public:
    struct Built;  // cms.cpp

    TrustCache() = default;
    TrustCache(const TrustCache&) noexcept {}
    TrustCache& operator=(const TrustCache&) noexcept;

    std::shared_ptr<Built> get(const std::vector<X509Ptr>& anchors,
                               const std::vector<std::string>& crls) const;
    // Chain checks answered by a kept chain since the store was last built.
    std::uint64_t kept_chain_uses() const;

private:
    mutable std::mutex mutex_;
    mutable std::shared_ptr<Built> built_;
    mutable std::vector<const void*> built_from_;  // each anchor; each CRL's address, size, last bytes' hash
};

// Trust anchors (and optional CRLs) for chain validation. Empty = chain not checked.
struct TrustStore {
    std::vector<X509Ptr> anchors;
    std::vector<std::string> crls_der;
    bool check_crl = false;
    std::optional<TimePoint> at;  // validate at this time instead of now (tests, old messages)
    static TrustStore from_pem_file(const std::filesystem::path& path);
    // Adds every CRL of a PEM or DER file and turns CRL checking on; throws Error naming
    // the file when it holds no CRL.
    void add_crl_file(const std::filesystem::path& path);

    TrustCache cache;
};

struct CmsVerification {
    bool parsed = false;                // the CMS structure was readable
    bool signature_ok = false;          // content digest and signature match
    bool chain_checked = false;         // a trust store was given
    bool chain_ok = false;              // signer chains to an anchor, dates (and CRL) valid
    std::string digest_name;            // "sha1", "sha256", ...
    X509Ptr signer;                     // signer certificate, when found
    std::vector<X509Ptr> certificates;  // all certificates carried in the CMS
    std::optional<TimePoint> signing_time;
    std::string content;  // for attached signatures: the signed content
    std::string error;    // first problem, human-readable, empty when all ok
};

CmsVerification cms_verify_detached(std::string_view cms, std::string_view data,
                                    const TrustStore* trust = nullptr);
CmsVerification cms_verify_attached(std::string_view cms, const TrustStore* trust = nullptr);

// SHA-1 of the certificate's DER, lower-case hex (the provider index hash form).
std::string certificate_sha1_hex(X509* cert);
std::string certificate_der(X509* cert);
std::string certificate_subject(X509* cert);  // one-line RFC 2253 form
std::string distinguished_name(const X509_NAME* name);  // one-line RFC 2253 form

}  // namespace pecd::crypto
