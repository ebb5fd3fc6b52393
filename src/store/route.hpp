// route.hpp - where mail for a domain goes: the built-in mailboxes or a next hop
//
// Text forms (per domain, stored with the domain):
//   local                  the built-in mailboxes of this store
//   lmtp:HOST:PORT         an LMTP server (Dovecot, Cyrus) over TCP
//   lmtp:unix:/PATH        an LMTP server on a UNIX socket
//   smtp:HOST:PORT         an SMTP next hop (STARTTLS per the outbound TLS policy)
// HOST may be a name, an IPv4 address or a bracketed IPv6 address ("[::1]").
// parse_route() throws ParseError with field "route" and the reason; to_string() gives
// back the canonical text form.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace pecd::store {

struct Route {
    enum class Kind { local, lmtp, smtp };
    Kind kind = Kind::local;
    std::string host;  // lmtp/smtp over TCP
    std::uint16_t port = 0;
    std::string unix_path;  // lmtp over a UNIX socket

    bool operator==(const Route&) const = default;
};

Route parse_route(std::string_view text);
std::string to_string(const Route& r);

}  // namespace pecd::store
