// tsa_http.cpp - RFC 3161 HTTP transport on Boost.Beast (see tsa_http.hpp)
#include "log/tsa_http.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "core/error.hpp"
#include "core/strings.hpp"

namespace pecd::log {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr std::string_view kQueryType = "application/timestamp-query";
constexpr std::string_view kReplyType = "application/timestamp-reply";
constexpr std::size_t kMaxRequestBody = 64 * 1024;
constexpr std::size_t kMaxReplyBody = 1024 * 1024;

// The media type without parameters, lower-cased.
std::string media_type(beast::string_view field) {
    std::string_view content_type(field.data(), field.size());
    return to_lower(trim(content_type.substr(0, content_type.find(';'))));
}

}  // namespace

HttpTimestampSource::HttpTimestampSource(const std::string& url, std::chrono::milliseconds timeout)
    : url_(url), timeout_(timeout) {
    constexpr std::string_view scheme = "http://";
    if (!istarts_with(url, scheme))
        throw Error("TSA URL " + url + ": only http:// is supported (RFC 3161 3.4)");
    std::string_view rest = std::string_view(url).substr(scheme.size());
    auto slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    target_ = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
    if (!authority.empty() && authority.front() == '[') {  // [v6]:port
        auto close = authority.find(']');
        if (close == std::string_view::npos) throw Error("TSA URL " + url + ": bad IPv6 literal");
        host_ = authority.substr(1, close - 1);
        std::string_view after = authority.substr(close + 1);
        port_ = after.starts_with(":") ? std::string(after.substr(1)) : "80";
    } else {
        auto colon = authority.rfind(':');
        host_ = authority.substr(0, colon);
        port_ = colon == std::string_view::npos ? "80" : std::string(authority.substr(colon + 1));
    }
    if (host_.empty() || port_.empty()) throw Error("TSA URL " + url + ": no host or port");
}

std::string HttpTimestampSource::exchange(std::string_view request_der) {
    asio::io_context io;
    beast::tcp_stream stream(io);
    http::request<http::string_body> req{http::verb::post, target_, 11};
    req.set(http::field::host, host_);
    req.set(http::field::content_type, std::string(kQueryType));
    req.set(http::field::accept, std::string(kReplyType));
    req.set(http::field::connection, "close");
    req.body().assign(request_der);
    req.prepare_payload();
    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxReplyBody);
    beast::flat_buffer buffer;
    beast::error_code failure;
    tcp::resolver resolver(io);
    auto fail_on = [&](beast::error_code ec) {
        if (ec && !failure) failure = ec;
        return static_cast<bool>(ec);
    };
    stream.expires_after(timeout_);
    resolver.async_resolve(host_, port_, [&](beast::error_code ec, tcp::resolver::results_type results) {
        if (fail_on(ec)) return;
        stream.async_connect(results, [&](beast::error_code ec2, const tcp::endpoint&) {
            if (fail_on(ec2)) return;
            http::async_write(stream, req, [&](beast::error_code ec3, std::size_t) {
                if (fail_on(ec3)) return;
                http::async_read(stream, buffer, parser,
                                 [&](beast::error_code ec4, std::size_t) { fail_on(ec4); });
            });
        });
    });
    io.run_for(timeout_ + std::chrono::seconds(1));
    if (failure) throw TemporaryError(name() + ": " + failure.message());
    if (!parser.is_done()) throw TemporaryError(name() + ": no reply within the timeout");
    const auto& res = parser.get();
    if (res.result() != http::status::ok)
        throw TemporaryError(name() + ": HTTP status " + std::to_string(res.result_int()));
    if (media_type(res[http::field::content_type]) != kReplyType)
        throw TemporaryError(name() + ": reply is not " + std::string(kReplyType));
    return res.body();
}

struct TsaHttpServer::State : std::enable_shared_from_this<TsaHttpServer::State> {
    State(asio::io_context& io, const tcp::endpoint& ep, std::shared_ptr<crypto::TimestampAuthority> t)
        : acceptor(io, ep), tsa(std::move(t)) {}

    asio::awaitable<void> accept_loop() {
        auto self = shared_from_this();
        while (acceptor.is_open()) {
            beast::error_code ec;
            tcp::socket socket =
                co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
            if (ec) {
                if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
                continue;
            }
            asio::co_spawn(acceptor.get_executor(), serve(std::move(socket)), asio::detached);
        }
    }

    http::response<http::string_body> answer(const http::request<http::string_body>& req) {
        http::response<http::string_body> res{http::status::ok, req.version()};
        res.keep_alive(req.keep_alive());
        auto error = [&](http::status status, std::string text) {
            res.result(status);
            res.set(http::field::content_type, "text/plain");
            res.body() = std::move(text) + "\n";
            res.prepare_payload();
            return res;
        };
        if (req.method() != http::verb::post) {
            res.set(http::field::allow, "POST");
            return error(http::status::method_not_allowed, "RFC 3161 requests are POSTed");
        }
        if (media_type(req[http::field::content_type]) != kQueryType)
            return error(http::status::unsupported_media_type, "expected " + std::string(kQueryType));
        try {
            res.body() = tsa->respond(req.body());
        } catch (const std::exception& e) {
            spdlog::error("built-in TSA: {}", e.what());
            return error(http::status::internal_server_error, "time stamping failed");
        }
        res.set(http::field::content_type, std::string(kReplyType));
        res.prepare_payload();
        return res;
    }

    asio::awaitable<void> serve(tcp::socket socket) {
        auto self = shared_from_this();
        beast::tcp_stream stream(std::move(socket));
        beast::flat_buffer buffer;
        for (int served = 0; served < 100; ++served) {  // bounded keep-alive
            stream.expires_after(std::chrono::seconds(30));
            http::request_parser<http::string_body> parser;
            parser.body_limit(kMaxRequestBody);
            beast::error_code ec;
            co_await http::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
            if (ec == http::error::body_limit) {
                http::response<http::string_body> res{http::status::payload_too_large, 11};
                res.body() = "request too large\n";
                res.prepare_payload();
                co_await http::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
                break;
            }
            if (ec) break;
            auto res = answer(parser.get());
            beast::error_code wec;
            co_await http::async_write(stream, res, asio::redirect_error(asio::use_awaitable, wec));
            if (wec || !res.keep_alive()) break;
        }
        beast::error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    }

    tcp::acceptor acceptor;
    std::shared_ptr<crypto::TimestampAuthority> tsa;
};

TsaHttpServer::TsaHttpServer(asio::io_context& io, const tcp::endpoint& endpoint,
                             std::shared_ptr<crypto::TimestampAuthority> tsa)
    : state_(std::make_shared<State>(io, endpoint, std::move(tsa))) {
    asio::co_spawn(io, state_->accept_loop(), asio::detached);
}

TsaHttpServer::~TsaHttpServer() {
    stop();
}

unsigned short TsaHttpServer::port() const {
    return state_->acceptor.local_endpoint().port();
}

void TsaHttpServer::stop() {
    asio::post(state_->acceptor.get_executor(), [s = state_] {
        beast::error_code ignored;
        s->acceptor.close(ignored);
    });
}

}  // namespace pecd::log
