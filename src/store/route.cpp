// route.cpp - parsing and printing of per-domain routes (see route.hpp)
#include "store/route.hpp"

#include <charconv>

#include "core/error.hpp"

namespace pecd::store {
namespace {

std::uint16_t parse_port(std::string_view s, std::string_view whole) {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || p != s.data() + s.size() || v == 0 || v > 65535)
        throw ParseError("bad port \"" + std::string(s) + "\" in \"" + std::string(whole) + "\"", 0, "route");
    return static_cast<std::uint16_t>(v);
}

void parse_host_port(std::string_view rest, std::string_view whole, Route& r) {
    std::size_t colon;
    if (!rest.empty() && rest.front() == '[') {
        auto close = rest.find(']');
        if (close == std::string_view::npos || close + 1 >= rest.size() || rest[close + 1] != ':')
            throw ParseError("expected [IPv6]:PORT in \"" + std::string(whole) + "\"", 0, "route");
        r.host = std::string(rest.substr(1, close - 1));
        colon = close + 1;
    } else {
        colon = rest.rfind(':');
        if (colon == std::string_view::npos)
            throw ParseError("expected HOST:PORT in \"" + std::string(whole) + "\"", 0, "route");
        r.host = std::string(rest.substr(0, colon));
        if (r.host.find(':') != std::string::npos)
            throw ParseError("an IPv6 host must be bracketed in \"" + std::string(whole) + "\"", 0, "route");
    }
    if (r.host.empty()) throw ParseError("empty host in \"" + std::string(whole) + "\"", 0, "route");
    for (char c : r.host)
        if (c <= ' ' || c == '/' || c == '@')
            throw ParseError("bad host in \"" + std::string(whole) + "\"", 0, "route");
    r.port = parse_port(rest.substr(colon + 1), whole);
}

}  // namespace

Route parse_route(std::string_view text) {
    Route r;
    if (text == "local") return r;
    if (text.starts_with("lmtp:")) {
        r.kind = Route::Kind::lmtp;
        auto rest = text.substr(5);
        if (rest.starts_with("unix:")) {
            r.unix_path = std::string(rest.substr(5));
            if (r.unix_path.empty() || r.unix_path.front() != '/')
                throw ParseError("UNIX socket path must be absolute in \"" + std::string(text) + "\"", 0,
                                 "route");
            return r;
        }
        parse_host_port(rest, text, r);
        return r;
    }
    if (text.starts_with("smtp:")) {
        r.kind = Route::Kind::smtp;
        parse_host_port(text.substr(5), text, r);
        return r;
    }
    throw ParseError("unknown route \"" + std::string(text) +
                         "\" (expected local, lmtp:HOST:PORT, lmtp:unix:/PATH or smtp:HOST:PORT)",
                     0, "route");
}

std::string to_string(const Route& r) {
    auto host = r.host.find(':') != std::string::npos ? "[" + r.host + "]" : r.host;
    switch (r.kind) {
        case Route::Kind::local:
            return "local";
        case Route::Kind::lmtp:
            if (!r.unix_path.empty()) return "lmtp:unix:" + r.unix_path;
            return "lmtp:" + host + ":" + std::to_string(r.port);
        case Route::Kind::smtp:
            return "smtp:" + host + ":" + std::to_string(r.port);
    }
    return "local";
}

}  // namespace pecd::store
