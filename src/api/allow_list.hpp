// allow_list.hpp - the client IP allow-list of the API listener (CIDR, IPv4 and IPv6)
//
// Contract:
// - AllowList(entries) parses "192.0.2.0/24", "2001:db8::/32" or a bare address (a /32
//   or /128); anything else throws ParseError naming the entry.
// - allows(address) is true when the address falls in one of the networks. An IPv4
//   address seen as IPv4-mapped IPv6 (::ffff:a.b.c.d, dual-stack sockets) is matched as
//   IPv4. An empty list allows nobody (a listener without an allow-list is refused at
//   configuration time, so no default opens the API to the world).
#pragma once

#include <boost/asio/ip/address.hpp>
#include <string>
#include <vector>

namespace pecd::api {

class AllowList {
public:
    AllowList() = default;
    explicit AllowList(const std::vector<std::string>& entries);
    bool allows(const boost::asio::ip::address& address) const;
    bool empty() const { return networks_.empty(); }

private:
    struct Network {
        bool v6 = false;
        std::array<unsigned char, 16> bytes{};
        unsigned prefix = 0;
    };
    std::vector<Network> networks_;
};

}  // namespace pecd::api
