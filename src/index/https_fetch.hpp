// https_fetch.hpp - one conditional HTTPS GET (Boost.Beast over OpenSSL)
//
// The index download: the server's certificate is verified (chain to the CA file or the
// system store, and the URL's host name or IP address), TLS 1.2 at least. The previous
// ETag and Last-Modified are sent as If-None-Match / If-Modified-Since so an unchanged
// index costs a 304 and no body.
//
// Contract: https_get() returns status 200 with the body and validators, or 304 with no
// body; any other status, a redirect, a network or TLS failure, a body over max_body or a
// timeout throws TemporaryError naming the URL and the reason. Only https:// URLs.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>

namespace pecd::index {

struct HttpsRequest {
    std::string url;
    std::string etag;               // from the last 200, sent as If-None-Match
    std::string last_modified;      // from the last 200, sent as If-Modified-Since
    std::filesystem::path ca_file;  // empty: the system trust store
    std::chrono::milliseconds timeout{30000};
    std::size_t max_body = 256u << 20;
};

struct HttpsResponse {
    unsigned status = 0;  // 200 or 304
    std::string body;
    std::string etag;
    std::string last_modified;
};

struct ParsedUrl {
    std::string host, port, target;
};
// Throws Error on anything but https://host[:port][/path] (IPv6 literals in brackets).
ParsedUrl parse_https_url(const std::string& url);

HttpsResponse https_get(const HttpsRequest& request);

}  // namespace pecd::index
