// smime.hpp - reading S/MIME multipart/signed messages (RFC 5751 / RFC 1847) as PEC uses them
//
// Contract:
// - smime_locate() finds the top-level multipart/signed of a raw RFC 5322 message and
//   returns views into the caller's buffer: the first body part byte for byte as it is in
//   the message (that is what was signed) and the signature part. It never throws on
//   hostile input; every structural problem is a distinct SmimeStatus with a precise text.
// - smime_verify() additionally canonicalises the signed part to CRLF, decodes smime.p7s
//   (base64 or binary) and verifies the detached CMS (DER or BER) with
//   crypto::cms_verify_detached, keeping the CMS verdicts (intact / chain) apart.
// - Accepted: protocol application/pkcs7-signature and application/x-pkcs7-signature,
//   any micalg the CMS carries (sha1, sha-256 seen in PEC); a micalg that disagrees with
//   the CMS digest is a warning, not a failure (the CMS is authoritative).
// - Views returned point into `raw`; the caller keeps `raw` alive.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "crypto/cms.hpp"

namespace pecd::crypto {

enum class SmimeStatus {
    ok,                      // structure found, p7s parsed: see cms for the verdicts
    not_multipart_signed,    // top-level Content-Type is not multipart/signed
    malformed_multipart,     // multipart/signed without boundary, delimiters or close delimiter
    missing_signature_part,  // multipart/signed whose only body part is the signed content
    unsupported_protocol,    // protocol / signature part type is not (x-)pkcs7-signature
    unparsable_signature,    // smime.p7s is not valid base64 or not a CMS SignedData
};

std::string_view to_string(SmimeStatus s) noexcept;

// A header field of a raw header block, unfolded (CR/LF removed), value trimmed.
struct RawHeader {
    std::string_view name;
    std::string value;
};

// The header block of a raw message or MIME part (up to, not including, the empty line)
// and the body after it. A block with no empty line is all header, empty body.
struct RawEntity {
    std::string_view headers;
    std::string_view body;
};
RawEntity split_entity(std::string_view raw) noexcept;
// Every header field in order; malformed lines (no colon) are skipped.
std::vector<RawHeader> parse_raw_headers(std::string_view header_block);
// The first field with this name (case-insensitive), unfolded; empty when absent.
std::string raw_header(std::string_view header_block, std::string_view name);

// Converts every bare LF to CRLF (the S/MIME canonical form). Returns the input unchanged
// (no copy) when it already is canonical; otherwise fills `storage` and returns a view of it.
std::string_view canonicalize_crlf(std::string_view data, std::string& storage);

struct SmimeParts {
    SmimeStatus status = SmimeStatus::not_multipart_signed;
    std::string finding;  // precise text when status != ok
    std::vector<std::string> warnings;
    std::string content_type;  // top-level type/subtype, lower case
    std::string protocol;      // protocol parameter, lower case
    std::string micalg;        // micalg parameter, lower case
    std::string boundary;
    std::string_view signed_part;     // first body part, verbatim (headers + body)
    std::string_view signature_part;  // second body part, verbatim (headers + body)
    std::string signature_type;       // its Content-Type type/subtype, lower case
    std::string signature_der;        // decoded p7s (filled by smime_verify)
    std::size_t body_parts = 0;
};

SmimeParts smime_locate(std::string_view raw);

struct SmimeVerification {
    SmimeParts parts;
    CmsVerification cms;  // meaningful when parts.status == ok
    // The whole verdict on the signature (not the chain): structure ok and digest matches.
    bool intact() const noexcept { return parts.status == SmimeStatus::ok && cms.signature_ok; }
};

SmimeVerification smime_verify(std::string_view raw, const TrustStore* trust = nullptr);

}  // namespace pecd::crypto
