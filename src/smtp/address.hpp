// address.hpp - parsing of SMTP paths and ESMTP parameters (RFC 5321 4.1.2, 4.1.3)
//
// parse_path() takes what follows "FROM:" or "TO:" and returns the mailbox without
// angle brackets (source routes are dropped, as RFC 5321 C permits) plus the raw
// parameter list. It is strict where laxness has caused trouble in the field: brackets
// are required, no control characters or spaces inside the path, a local part and a
// domain are required (except the null path "<>"), lengths are bounded (RFC 5321 4.5.3.1).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pecd::smtp {

struct ParsedPath {
    std::string address;  // empty for <>
    std::vector<std::pair<std::string, std::string>> params;  // keyword upper-case, value as sent
};

// Returns nullopt with *error set when the path is malformed.
std::optional<ParsedPath> parse_path(std::string_view text, bool allow_null, std::string* error);
// True for a syntactically valid mailbox local@domain (dot-atom or quoted local part,
// domain name or address literal).
bool valid_mailbox(std::string_view address);

}  // namespace pecd::smtp
