// mime.hpp - small MIME helpers over GMime 3: headers, RFC 2047, addresses, encodings, CRLF
//
// pecd keeps messages as bytes and builds PEC messages by assembling bytes (a 100 MB
// original is never copied into an object tree). These helpers give the header-level
// facts the PEC engine needs and the encodings it emits:
//   - split_message(): header block and body of a message or entity, with its header
//     fields as views into the input (no copy); names compare case-insensitively.
//   - decode_text()/encode_text()/encode_phrase(): RFC 2047 via GMime, UTF-8 inside.
//   - parse_addresses(): RFC 5322 address lists via GMime (groups flattened).
//   - base64()/quoted_printable(): GMime's encoders, CRLF line ends.
//   - append_crlf(): canonical CRLF form (bare LF and bare CR become CRLF).
//   - content_type()/content_disposition(): parameters (RFC 2231 decoded) of a field value.
//   - find_delimiters()/body_parts()/decode_transfer(): the parts of a multipart body as
//     views into it, and a part's content without its transfer encoding.
// Every function accepts arbitrary bytes: malformed input yields empty/partial results,
// never a crash. GMime is initialised once, on first use, thread-safely.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pecd::mime {

struct HeaderField {
    std::string_view name;  // as written
    std::string_view raw;   // the whole field, folded lines included, without the final line end
    // Field body: unfolded (line breaks removed) and trimmed, still RFC 2047 encoded.
    std::string value() const;
};

struct SplitMessage {
    std::string_view header;  // header block including the final line end of its last field
    std::string_view body;    // after the empty line; empty when there is none
    std::size_t body_offset = 0;
    std::vector<HeaderField> fields;

    const HeaderField* find(std::string_view name) const noexcept;  // first, case-insensitive
    std::optional<std::string> value(std::string_view name) const;  // first field's value()
};

// Header ends at the first empty line (CRLF CRLF or LF LF); lines that are neither
// fields nor continuations (garbage) are skipped.
SplitMessage split_message(std::string_view message);

// RFC 2047 encoded-words to UTF-8; invalid bytes are interpreted leniently (GMime).
std::string decode_text(std::string_view raw);
// UTF-8 to an unstructured header value, RFC 2047-encoding only when needed.
std::string encode_text(std::string_view utf8);
// A display name as a phrase: atoms as is, otherwise quoted or RFC 2047-encoded.
std::string encode_phrase(std::string_view utf8);

struct Mailbox {
    std::string name;     // decoded display name, UTF-8, may be empty
    std::string address;  // addr-spec
};
std::vector<Mailbox> parse_addresses(std::string_view raw);

// "Name: value" folded at white space to lines of at most 78 characters where possible,
// CRLF-terminated.
std::string header_line(std::string_view name, std::string_view value);

std::string base64(std::string_view data);            // 76-character lines, CRLF, final CRLF
std::string quoted_printable(std::string_view data);  // input lines may end LF or CRLF; output CRLF

// Appends in to out in canonical form: every line end CRLF.
void append_crlf(std::string& out, std::string_view in);
std::string to_crlf(std::string_view in);

// Whether data is 7-bit text (no NUL, no byte > 127, lines at most 998 octets): it can
// then travel with Content-Transfer-Encoding 7bit.
bool is_7bit(std::string_view data) noexcept;

// A MIME boundary that does not occur in any of the given texts.
std::string make_boundary(std::initializer_list<std::string_view> must_not_contain);

struct ContentType {
    std::string type;     // lower case, "text" when absent or unparsable (RFC 2045 default)
    std::string subtype;  // lower case, "plain" by default
    std::string boundary;
    std::string name;  // name parameter, decoded
    bool is(std::string_view t, std::string_view s) const noexcept;
};
ContentType content_type(std::string_view field_value);
// filename parameter of a Content-Disposition value, decoded; empty when absent.
std::string disposition_filename(std::string_view field_value);

// A delimiter line of a multipart body (RFC 2046 5.1.1): "--" boundary at the start of a
// line, then "--" (the close delimiter) or only white space up to the line end. A line that
// merely starts with it ("--boundaryX") is content.
struct Delimiter {
    std::size_t start;        // first byte of the line
    std::size_t content_end;  // end of the line before its CR LF / LF
    std::size_t next;         // first byte of the following line (body size: none follows)
    bool close;
};
// Every delimiter line of `body`, up to and including the close delimiter.
std::vector<Delimiter> find_delimiters(std::string_view body, std::string_view boundary);
// The body parts between the delimiters (never the preamble or the epilogue). The line end
// before a delimiter belongs to the delimiter; without a close delimiter the last part runs
// to the end of the body.
std::vector<std::string_view> body_parts(std::string_view body, const std::vector<Delimiter>& delimiters);

// Content-Transfer-Encoding undone as GMime's decoders do it (base64, quoted-printable,
// x-uuencode; invalid input decoded leniently); 7bit, 8bit, binary, absent or unknown
// encodings give the bytes unchanged.
std::string decode_transfer(std::string_view body, std::string_view encoding);

// ISO-8859-1 bytes of UTF-8 text; characters beyond U+00FF become '?'.
std::string utf8_to_latin1(std::string_view utf8);

}  // namespace pecd::mime

namespace pecd::mime {
// `; attr="value"` for a Content-Type / Content-Disposition parameter: quoted when the
// value is printable ASCII, RFC 2231 (UTF-8, percent-encoded) otherwise.
std::string parameter(std::string_view attribute, std::string_view value);
}  // namespace pecd::mime
