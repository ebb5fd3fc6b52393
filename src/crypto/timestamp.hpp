// timestamp.hpp - RFC 3161 time stamps: requests, responses, verification, a built-in TSA
//
// A time stamp proves that a digest existed at a time, signed by a time-stamping
// authority (TSA). pecd asks a TSA for a token over every legal-log seal (log/sealer) and
// can itself act as a TSA (TimestampAuthority) for its embedded default, served over HTTP
// (log/tsa_http) so another instance can use it.
//
// Contract:
// - make_timestamp_request() builds a DER TimeStampReq for a SHA-256 digest, with a
//   nonce and certReq=true (the TSA certificate travels in the token, so
//   `openssl ts -verify -CAfile tsa.pem` works on the response as stored).
// - parse_timestamp_response() reads a DER TimeStampResp; it never throws on a
//   well-formed rejection: the status is reported. Malformed DER throws pecd::ParseError.
// - verify_timestamp_response() checks the token's signature, the TSA certificate's
//   critical timeStamping extended key usage, the message imprint and (when given) the
//   nonce, and the chain against the trust anchors. Verdicts are reported, not thrown.
// - TimestampAuthority answers requests with tokens signed by its identity, whose
//   certificate must carry the critical timeStamping EKU (create_tsa_identity() makes
//   such a self-signed one). The time comes from the given Clock. Thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"
#include "crypto/identity.hpp"

namespace pecd::crypto {

// SHA-256 of data, raw 32 bytes.
std::string sha256(std::string_view data);

struct TimestampRequest {
    std::string der;    // the TimeStampReq, DER
    std::string nonce;  // the nonce sent, big-endian bytes (to match the reply)
};

// digest: raw SHA-256 (32 bytes) of the data to stamp. Throws Error on a wrong length.
TimestampRequest make_timestamp_request(std::string_view sha256_digest);

struct TimestampResponse {
    int status = -1;          // PKIStatus: 0 granted, 1 grantedWithMods, 2 rejection...
    std::string status_text;  // failure text / info from the TSA, may be empty
    bool granted() const { return status == 0 || status == 1; }
    std::string token_der;  // the TimeStampToken (CMS ContentInfo), when granted
    std::optional<TimePoint> gen_time;
    std::string serial_hex;  // serial number of the token, hex
    std::string policy_oid;
    std::string imprint;      // raw message imprint digest carried in the token
    std::string tsa_subject;  // signer certificate subject, when carried
};

TimestampResponse parse_timestamp_response(std::string_view response_der);

struct TimestampVerification {
    bool ok = false;    // signature, EKU, imprint, nonce and chain all good
    std::string error;  // first problem, human-readable; empty when ok
    std::optional<TimePoint> gen_time;
};

// trust_anchors: certificates trusted as TSA roots (a self-signed TSA certificate is
// its own anchor). expected_nonce empty = not checked (stored tokens, years later).
TimestampVerification verify_timestamp_response(std::string_view response_der, std::string_view sha256_digest,
                                                const std::vector<X509Ptr>& trust_anchors,
                                                std::string_view expected_nonce = {});

// The certificates carried in a response's token (the TSA certificate when certReq was
// set). Used as anchors only when the operator gives none and the TSA is self-signed.
std::vector<X509Ptr> timestamp_certificates(std::string_view response_der);

// A self-signed TSA identity: EC P-256 key, certificate with critical extendedKeyUsage
// timeStamping, digitalSignature+nonRepudiation key usage, valid `days` from now.
SigningIdentity create_tsa_identity(const std::string& common_name, int days = 3650);
// PEM forms, for keeping the built-in TSA's identity on disk.
std::string certificate_pem(X509* cert);
std::string private_key_pem(EVP_PKEY* key);

class TimestampAuthority {
public:
    // policy_oid: the TSA policy put in every token. Throws Error when the certificate
    // lacks the critical timeStamping EKU (OpenSSL refuses such a signer).
    TimestampAuthority(SigningIdentity identity, const Clock& clock,
                       std::string policy_oid = "1.3.6.1.4.1.99999.3161.1");
    // Answers one DER TimeStampReq with a DER TimeStampResp (a rejection for bad input).
    std::string respond(std::string_view request_der);
    const SigningIdentity& identity() const { return identity_; }

private:
    SigningIdentity identity_;
    const Clock& clock_;
    std::string policy_oid_;
};

}  // namespace pecd::crypto
