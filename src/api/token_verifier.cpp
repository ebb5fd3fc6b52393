// token_verifier.cpp - JWKS loading, refresh and the verified-token cache (see token_verifier.hpp)
#include "api/token_verifier.hpp"

#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "core/fs.hpp"

namespace pecd::api {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct Url {
    bool tls = false;
    std::string host;
    std::string port;
    std::string target;
};

Url parse_url(const std::string& url) {
    Url u;
    std::string rest;
    if (url.rfind("https://", 0) == 0) {
        u.tls = true;
        rest = url.substr(8);
    } else if (url.rfind("http://", 0) == 0) {
        rest = url.substr(7);
    } else {
        throw ParseError("must start with http:// or https://", 0, "api.jwks_url");
    }
    auto slash = rest.find('/');
    std::string authority = rest.substr(0, slash);
    u.target = slash == std::string::npos ? "/" : rest.substr(slash);
    auto colon = authority.rfind(':');
    if (colon != std::string::npos && authority.find(']') == std::string::npos) {
        u.host = authority.substr(0, colon);
        u.port = authority.substr(colon + 1);
    } else {
        u.host = authority;
        u.port = u.tls ? "443" : "80";
    }
    if (u.host.size() > 2 && u.host.front() == '[') u.host = u.host.substr(1, u.host.size() - 2);
    if (u.host.empty()) throw ParseError("has no host", 0, "api.jwks_url");
    return u;
}

template <class Stream>
asio::awaitable<void> exchange(Stream& stream, const Url& u, http::response<http::string_body>& res) {
    http::request<http::empty_body> req{http::verb::get, u.target, 11};
    req.set(http::field::host, u.host);
    req.set(http::field::user_agent, "pecd");
    req.set(http::field::accept, "application/json");
    co_await http::async_write(stream, req, asio::use_awaitable);
    beast::flat_buffer buf;
    http::response_parser<http::string_body> parser;
    parser.body_limit(1 << 20);
    co_await http::async_read(stream, buf, parser, asio::use_awaitable);
    res = parser.release();
}

}  // namespace

std::string http_get(const std::string& url, const std::filesystem::path& ca_file,
                     std::chrono::seconds timeout) {
    auto u = parse_url(url);
    asio::io_context io;
    http::response<http::string_body> res;
    std::exception_ptr failure;
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    if (u.tls) {
        SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
        ctx.set_verify_mode(asio::ssl::verify_peer);
        if (ca_file.empty())
            ctx.set_default_verify_paths();
        else
            ctx.load_verify_file(ca_file.string());
    }
    auto run = [&]() -> asio::awaitable<void> {
        tcp::resolver resolver(io);
        auto results = co_await resolver.async_resolve(u.host, u.port, asio::use_awaitable);
        if (!u.tls) {
            beast::tcp_stream stream(io);
            stream.expires_after(timeout);
            co_await stream.async_connect(results, asio::use_awaitable);
            co_await exchange(stream, u, res);
        } else {
            beast::ssl_stream<beast::tcp_stream> stream(io, ctx);
            beast::get_lowest_layer(stream).expires_after(timeout);
            SSL_set_tlsext_host_name(stream.native_handle(), u.host.c_str());
            stream.set_verify_callback(asio::ssl::host_name_verification(u.host));
            co_await beast::get_lowest_layer(stream).async_connect(results, asio::use_awaitable);
            co_await stream.async_handshake(asio::ssl::stream_base::client, asio::use_awaitable);
            co_await exchange(stream, u, res);
        }
    };
    asio::co_spawn(io, run(), [&](std::exception_ptr e) { failure = e; });
    io.run_for(timeout + std::chrono::seconds(1));
    if (!io.stopped()) throw TemporaryError("GET " + url + ": timed out");
    if (failure) {
        try {
            std::rethrow_exception(failure);
        } catch (const std::exception& e) {
            throw TemporaryError("GET " + url + ": " + e.what());
        }
    }
    if (res.result_int() != 200)
        throw TemporaryError("GET " + url + ": HTTP " + std::to_string(res.result_int()));
    return res.body();
}

TokenVerifier::TokenVerifier(KeySettings keys, TokenPolicy policy, const Clock& clock)
    : settings_(std::move(keys)), policy_(std::move(policy)), clock_(clock) {}

bool TokenVerifier::load() {
    std::lock_guard lock(key_mutex_);
    return fetch_locked();
}

bool TokenVerifier::fetch_locked() {
    attempted_at_ = std::chrono::steady_clock::now();
    try {
        std::string text;
        if (!settings_.jwks_file.empty()) {
            std::error_code ec;
            auto mtime = std::filesystem::last_write_time(settings_.jwks_file, ec);
            auto size = std::filesystem::file_size(settings_.jwks_file, ec);
            if (keys_ && mtime == file_mtime_ && size == file_size_) return true;
            text = fs::read_file(settings_.jwks_file);
            file_mtime_ = mtime;
            file_size_ = size;
        } else {
            text = http_get(settings_.jwks_url, settings_.jwks_ca, settings_.timeout);
        }
        auto set = std::make_shared<const KeySet>(parse_jwks(text));
        keys_ = set;
        ++generation_;
        fetched_at_ = attempted_at_;
        spdlog::info("api: {} signing keys loaded from {}", set->keys.size(),
                     settings_.jwks_file.empty() ? settings_.jwks_url : settings_.jwks_file.string());
        return true;
    } catch (const std::exception& e) {
        spdlog::warn("api: JWKS not loaded: {}", e.what());
        return keys_ != nullptr;
    }
}

std::shared_ptr<const KeySet> TokenVerifier::keys(bool force) {
    std::lock_guard lock(key_mutex_);
    auto now = std::chrono::steady_clock::now();
    bool stale = !keys_ || now - fetched_at_ >= settings_.refresh_interval;
    bool file_check = !settings_.jwks_file.empty() && now - attempted_at_ >= std::chrono::seconds(1);
    bool may_retry = now - attempted_at_ >= settings_.min_refresh_interval;
    if (file_check || ((stale || force) && may_retry)) fetch_locked();
    return keys_;
}

Claims TokenVerifier::verify(const std::string& token) {
    auto now = clock_.now();
    std::uint64_t generation;
    std::shared_ptr<const KeySet> set;
    set = keys(false);
    {
        std::lock_guard lock(key_mutex_);
        generation = generation_;
    }
    {
        std::lock_guard lock(cache_mutex_);
        auto it = cache_.find(token);
        if (it != cache_.end()) {
            // A clock set back (tests) re-checks nbf: only forward from the check is cached.
            if (it->second.generation == generation && now < it->second.until && now >= it->second.since)
                return it->second.claims;
            cache_.erase(it);
        }
    }
    if (!set) throw TokenError("no signing keys are available to check the token");
    if (!set->find(token_kid(token))) {
        set = keys(true);  // maybe rotated: look again (rate limited)
        std::lock_guard lock(key_mutex_);
        generation = generation_;
    }
    auto claims = verify_token(token, *set, policy_, now);
    auto until = std::min(claims.expires + policy_.leeway, now + std::chrono::minutes(5));
    std::lock_guard lock(cache_mutex_);
    if (cache_.size() >= 10000) cache_.clear();
    cache_[token] = Cached{claims, now, until, generation};
    return claims;
}

}  // namespace pecd::api
