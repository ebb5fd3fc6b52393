// allow_list.cpp - CIDR matching for the API listener (see allow_list.hpp)
#include "api/allow_list.hpp"

#include "core/error.hpp"
#include "core/strings.hpp"

namespace pecd::api {
namespace {

bool prefix_matches(const unsigned char* a, const unsigned char* b, unsigned prefix) {
    unsigned full = prefix / 8, rest = prefix % 8;
    for (unsigned i = 0; i < full; ++i)
        if (a[i] != b[i]) return false;
    if (rest == 0) return true;
    unsigned char mask = static_cast<unsigned char>(0xff << (8 - rest));
    return (a[full] & mask) == (b[full] & mask);
}

}  // namespace

AllowList::AllowList(const std::vector<std::string>& entries) {
    for (std::size_t i = 0; i < entries.size(); ++i) {
        std::string field = "allow[" + std::to_string(i + 1) + "]";
        std::string e(trim(entries[i]));
        auto slash = e.find('/');
        boost::system::error_code ec;
        auto addr = boost::asio::ip::make_address(e.substr(0, slash), ec);
        if (ec) throw ParseError("\"" + e + "\" is not an address or CIDR network", 0, field);
        Network n;
        n.v6 = addr.is_v6();
        unsigned max = n.v6 ? 128 : 32;
        n.prefix = max;
        if (slash != std::string::npos) {
            auto p = e.substr(slash + 1);
            if (p.empty() || p.size() > 3 || p.find_first_not_of("0123456789") != std::string::npos ||
                std::stoul(p) > max)
                throw ParseError("\"" + e + "\" has a bad prefix length", 0, field);
            n.prefix = static_cast<unsigned>(std::stoul(p));
        }
        if (n.v6) {
            auto b = addr.to_v6().to_bytes();
            std::copy(b.begin(), b.end(), n.bytes.begin());
        } else {
            auto b = addr.to_v4().to_bytes();
            std::copy(b.begin(), b.end(), n.bytes.begin());
        }
        networks_.push_back(n);
    }
}

bool AllowList::allows(const boost::asio::ip::address& address) const {
    auto a = address;
    if (a.is_v6() && a.to_v6().is_v4_mapped())
        a = boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, a.to_v6());
    std::array<unsigned char, 16> bytes{};
    if (a.is_v6()) {
        auto b = a.to_v6().to_bytes();
        std::copy(b.begin(), b.end(), bytes.begin());
    } else {
        auto b = a.to_v4().to_bytes();
        std::copy(b.begin(), b.end(), bytes.begin());
    }
    for (auto& n : networks_)
        if (n.v6 == a.is_v6() && prefix_matches(n.bytes.data(), bytes.data(), n.prefix)) return true;
    return false;
}

}  // namespace pecd::api
