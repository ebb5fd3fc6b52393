// signed_message.hpp - the facts a PEC reader takes from a raw message, extracted once
//
// read_message() looks at a raw RFC 5322 message the way a reception point does: the
// top-level PEC headers (unsigned, names case-insensitive), the S/MIME structure
// (crypto::smime_locate) and, inside the signed part (or the whole body when the message
// is not multipart/signed), the parts PEC defines: daticert.xml (decoded, not yet parsed),
// postacert.eml and the text part. It is pure (no I/O), never throws on hostile input, and
// parses the content with GMime over the caller's bytes without copying them.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/smime.hpp"

namespace pecd::pec {

struct PecHeaders {
    std::optional<std::string> x_trasporto;
    std::optional<std::string> x_ricevuta;
    std::optional<std::string> x_verifica_sicurezza;
    std::optional<std::string> x_riferimento_message_id;
    std::optional<std::string> x_tipo_ricevuta;
    std::optional<std::string> x_mittente;
    std::string from;          // raw header value
    std::string from_address;  // addr-spec of its first mailbox, empty when unparsable
    std::string subject;       // decoded (RFC 2047), UTF-8
    std::string message_id;    // with angle brackets, as in the header
    std::string date;
    std::vector<std::string> duplicated;  // PEC headers present more than once
};

struct MessageContent {
    bool found_multipart = false;  // the content root is a multipart
    std::string root_type;         // type/subtype of the content root
    bool has_daticert = false;
    std::string daticert_xml;  // decoded bytes of daticert.xml
    bool has_postacert = false;
    std::string postacert_message_id;  // Message-ID of postacert.eml, without brackets
    std::string_view postacert;        // postacert.eml itself: a view of the bytes read
    // Every part besides postacert.eml and daticert.xml is text/plain or text/html, alone
    // or in a multipart/alternative: the provider's own text, nothing else attached.
    bool others_only_text = true;
    std::string text;                  // first text/plain part, transfer-decoded
    std::size_t parts = 0;             // direct children of the content root
};

struct MessageFacts {
    PecHeaders headers;
    crypto::SmimeParts smime;  // from smime_locate (no CMS verification)
    MessageContent content;
};

PecHeaders read_pec_headers(std::string_view header_block);
// Reads the MIME entity (headers + body) that carries the PEC parts.
MessageContent read_content(std::string_view entity);
MessageFacts read_message(std::string_view raw);

// What a reception point gives its antivirus for a message `facts` were read from: the
// original (postacert.eml) when everything else in it is the sending provider's signed
// text and daticert.xml, else the whole message. The provider's parts are its own words
// under its signature; a scanner spends most of a transport envelope's scan writing them
// out and normalising the HTML, and the original is the only part a user wrote.
std::string_view antivirus_content(const MessageFacts& facts, std::string_view raw);

}  // namespace pecd::pec
