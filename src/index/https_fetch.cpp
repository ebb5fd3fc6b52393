// https_fetch.cpp - conditional HTTPS GET on Boost.Beast (see https_fetch.hpp)
#include "index/https_fetch.hpp"

#include <openssl/ssl.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "core/error.hpp"
#include "core/strings.hpp"

namespace pecd::index {
namespace asio = boost::asio;
namespace ssl = asio::ssl;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

ParsedUrl parse_https_url(const std::string& url) {
    constexpr std::string_view scheme = "https://";
    if (!istarts_with(url, scheme)) throw Error("index URL " + url + ": only https:// is supported");
    std::string_view rest = std::string_view(url).substr(scheme.size());
    auto slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    ParsedUrl u;
    u.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
    if (!authority.empty() && authority.front() == '[') {
        auto close = authority.find(']');
        if (close == std::string_view::npos) throw Error("index URL " + url + ": bad IPv6 literal");
        u.host = authority.substr(1, close - 1);
        std::string_view after = authority.substr(close + 1);
        u.port = after.starts_with(":") ? std::string(after.substr(1)) : "443";
    } else {
        auto colon = authority.rfind(':');
        u.host = authority.substr(0, colon);
        u.port = colon == std::string_view::npos ? "443" : std::string(authority.substr(colon + 1));
    }
    if (u.host.empty() || u.port.empty()) throw Error("index URL " + url + ": no host or port");
    return u;
}

namespace {

bool is_ip_literal(const std::string& host) {
    beast::error_code ec;
    asio::ip::make_address(host, ec);
    return !ec;
}

ssl::context make_context(const HttpsRequest& r) {
    ssl::context ctx(ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
    beast::error_code ec;
    if (r.ca_file.empty())
        ctx.set_default_verify_paths(ec);
    else
        ctx.load_verify_file(r.ca_file.string(), ec);
    if (ec) throw Error("index download: cannot load CA file " + r.ca_file.string() + ": " + ec.message());
    ctx.set_verify_mode(ssl::verify_peer);
    return ctx;
}

}  // namespace

HttpsResponse https_get(const HttpsRequest& r) {
    auto url = parse_https_url(r.url);
    auto ctx = make_context(r);
    asio::io_context io;
    beast::ssl_stream<beast::tcp_stream> stream(io, ctx);
    if (!is_ip_literal(url.host)) SSL_set_tlsext_host_name(stream.native_handle(), url.host.c_str());
    stream.set_verify_callback(ssl::host_name_verification(url.host));

    http::request<http::empty_body> req{http::verb::get, url.target, 11};
    req.set(http::field::host, url.host);
    req.set(http::field::user_agent, "pecd-index");
    req.set(http::field::connection, "close");
    if (!r.etag.empty()) req.set(http::field::if_none_match, r.etag);
    if (!r.last_modified.empty()) req.set(http::field::if_modified_since, r.last_modified);

    http::response_parser<http::string_body> parser;
    parser.body_limit(r.max_body);
    beast::flat_buffer buffer;
    beast::error_code failure;
    std::string stage = "resolve";
    auto fail_on = [&](beast::error_code ec) {
        if (ec && !failure) failure = ec;
        return static_cast<bool>(ec);
    };
    tcp::resolver resolver(io);
    beast::get_lowest_layer(stream).expires_after(r.timeout);
    resolver.async_resolve(
        url.host, url.port, [&](beast::error_code ec, tcp::resolver::results_type results) {
            if (fail_on(ec)) return;
            stage = "connect";
            beast::get_lowest_layer(stream).async_connect(
                results, [&](beast::error_code ec2, const tcp::endpoint&) {
                    if (fail_on(ec2)) return;
                    stage = "TLS handshake";
                    stream.async_handshake(ssl::stream_base::client, [&](beast::error_code ec3) {
                        if (fail_on(ec3)) return;
                        stage = "request";
                        http::async_write(stream, req, [&](beast::error_code ec4, std::size_t) {
                            if (fail_on(ec4)) return;
                            stage = "response";
                            http::async_read(stream, buffer, parser,
                                             [&](beast::error_code ec5, std::size_t) { fail_on(ec5); });
                        });
                    });
                });
        });
    io.run_for(r.timeout + std::chrono::seconds(1));
    std::string where = "index download " + r.url + ": ";
    if (failure) {
        std::string detail = failure.message();
        if (stage == "TLS handshake") {
            long v = SSL_get_verify_result(stream.native_handle());
            if (v != X509_V_OK) detail += " (" + std::string(X509_verify_cert_error_string(v)) + ")";
        }
        throw TemporaryError(where + stage + ": " + detail);
    }
    if (!parser.is_done()) throw TemporaryError(where + "no complete reply within the timeout");
    const auto& res = parser.get();
    HttpsResponse out;
    out.status = res.result_int();
    if (out.status != 200 && out.status != 304)
        throw TemporaryError(where + "HTTP status " + std::to_string(out.status));
    out.etag = std::string(res[http::field::etag]);
    out.last_modified = std::string(res[http::field::last_modified]);
    if (out.status == 200) out.body = res.body();
    return out;
}

}  // namespace pecd::index
