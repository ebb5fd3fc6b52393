// brief_receipt.hpp - the original message as a brief delivery receipt carries it
//
// pec.md 3.8 / RFC 6109 3.3.2.2: the MIME structure of the original is kept; every part
// with a Content-Type `name` or Content-Disposition `filename` parameter is replaced by a
// text/plain part named `<name>.hash` whose content is the 40-hex-digit SHA-1 of the part;
// an attached message/rfc822 with a name is replaced as a whole. In a multipart/signed
// original only the first (signed) part is rewritten and the signature part is kept as
// is. An application/(x-)pkcs7-mime original cannot be split: it is returned whole (the
// brief receipt then equals the complete one).
//
// Everything that is not replaced is copied byte for byte (in CRLF canonical form), so
// headers, preambles and unnamed parts are exactly the original's. Nesting deeper than
// 32 levels is copied unchanged. Any input is accepted; output is CRLF.
#pragma once

#include <string>
#include <string_view>

namespace pecd::pec {

std::string brief_original(std::string_view original);

// The brief-receipt hash of one part body: lower-case hex SHA-1 (see the .cpp for the
// choice of input bytes).
std::string brief_hash(std::string_view part_body);

// Whether the original is an opaque S/MIME message (application/pkcs7-mime).
bool is_pkcs7_mime(std::string_view original);

}  // namespace pecd::pec
