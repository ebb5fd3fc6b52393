// ldif.hpp - LDIF (RFC 2849) reading and writing, and applying change records
//
// Hand-written: libldap ships no public LDIF parser API (its ldif_* helpers are internal
// to the OpenLDAP tools), and the index needs precise line numbers in every error.
//
// Contract:
// - parse_ldif() accepts the whole RFC 2849 grammar the provider index meets: an optional
//   "version: 1", comments (also continued ones), folded lines (a leading single space
//   continues the previous line), "::" base64 values, attribute options such as
//   ";binary", CRLF or LF line ends, content records and change records (add, delete,
//   modify with add/delete/replace and "-"). ":<" URL values and modrdn/moddn are
//   refused. Any error throws ParseError carrying the 1-based line of the offending
//   (first physical) line and the reason; hostile input never crashes.
// - apply_ldif() folds a record sequence into the resulting entries (content and add
//   records create, delete removes, modify edits), keyed by the normalised DN; order of
//   first appearance is kept. Changes that do not fit (delete of a missing entry, a
//   duplicate DN) throw ParseError naming the record's line.
// - write_ldif_line() emits "attr: value" or "attr:: base64" (when the value is not a
//   SAFE-STRING) folded at 76 columns.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace pecd::index {

struct LdifValue {
    std::string type;                  // attribute type as written ("providerCertificate")
    std::vector<std::string> options;  // ";binary" -> {"binary"}, lower-case
    std::string value;                 // decoded bytes
    std::size_t line = 0;
};

enum class ChangeType { content, add, remove, modify };

struct LdifModification {
    enum class Op { add, remove, replace };
    Op op = Op::add;
    std::string type;
    std::vector<LdifValue> values;
    std::size_t line = 0;
};

struct LdifRecord {
    std::string dn;
    std::size_t line = 0;  // line of the dn:
    ChangeType change = ChangeType::content;
    std::vector<LdifValue> attributes;            // content and add records
    std::vector<LdifModification> modifications;  // modify records
};

// One directory entry after the records have been applied.
struct LdifEntry {
    std::string dn;
    std::size_t line = 0;
    std::vector<LdifValue> attributes;

    // Values of one attribute type (case-insensitive, options ignored).
    std::vector<const LdifValue*> values(std::string_view type) const;
    // The first value, or empty.
    std::string first(std::string_view type) const;
    bool has(std::string_view type) const;
};

std::vector<LdifRecord> parse_ldif(std::string_view text);
std::vector<LdifEntry> apply_ldif(const std::vector<LdifRecord>& records);

// DN compared case-insensitively, spaces around ',', '=' and '+' removed.
std::string normalize_dn(std::string_view dn);

// "type: value\n" or "type:: base64\n", folded at 76 columns.
std::string write_ldif_line(std::string_view type, std::string_view value);

std::string base64_encode(std::string_view bytes);
// Throws ParseError(line) when the text is not valid base64.
std::string base64_decode(std::string_view text, std::size_t line = 0);

}  // namespace pecd::index
