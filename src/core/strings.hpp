// strings.hpp - ASCII string helpers used by the protocol parsers
//
// All helpers are locale-independent: SMTP, MIME and LDIF keywords are ASCII and must
// not change meaning under a Turkish or any other locale.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pecd {

constexpr char ascii_lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? char(c + 32) : c; }
constexpr char ascii_upper(char c) noexcept { return (c >= 'a' && c <= 'z') ? char(c - 32) : c; }

std::string to_lower(std::string_view s);
std::string to_upper(std::string_view s);
bool iequals(std::string_view a, std::string_view b) noexcept;
bool istarts_with(std::string_view s, std::string_view prefix) noexcept;
std::string_view trim(std::string_view s) noexcept;
std::vector<std::string_view> split(std::string_view s, char sep);
// Lower-case hex of bytes.
std::string to_hex(std::string_view bytes);
// The domain part of an address (after the last '@'), lower-cased; empty if none.
std::string domain_of(std::string_view address);

}  // namespace pecd
