// server.cpp - HTTPS + mutual TLS listener of the mailbox API (see server.hpp)
#include "api/server.hpp"

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <future>
#include <mutex>
#include <set>

#include "core/error.hpp"

namespace pecd::api {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::use_awaitable;
using boost::system::error_code;

namespace {

using Stream = beast::ssl_stream<beast::tcp_stream>;

// Wrapped so that use_awaitable hands the error back instead of throwing it.
struct Durable {
    std::exception_ptr error;
    explicit operator bool() const { return error != nullptr; }
};

// Waits for an audit record (or change) to be durable, resuming on the coroutine's
// executor. Initiating functions, not coroutines: GCC 12 mishandles lambda temporaries
// captured in co_await expressions.
auto audit_record(AuditTrail& trail, const AuditEntry& entry) {
    auto initiate = [&trail](auto handler, AuditEntry e) {
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        trail.record(e, [h](std::exception_ptr err) {
            auto ex = asio::get_associated_executor(*h);
            asio::post(ex, [h, err]() mutable { (*h)(Durable{err}); });
        });
    };
    return asio::async_initiate<decltype(use_awaitable), void(Durable)>(initiate, use_awaitable, entry);
}

auto audit_change(AuditTrail& trail, std::function<void(store::Tx&)> work, const AuditEntry& entry) {
    auto initiate = [&trail](auto handler, std::function<void(store::Tx&)> w, AuditEntry e) {
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        trail.change(std::move(w), e, [h](std::exception_ptr err) {
            auto ex = asio::get_associated_executor(*h);
            asio::post(ex, [h, err]() mutable { (*h)(Durable{err}); });
        });
    };
    return asio::async_initiate<decltype(use_awaitable), void(Durable)>(initiate, use_awaitable,
                                                                        std::move(work), entry);
}

std::string certificate_subject(SSL* ssl) {
    X509* cert = SSL_get0_peer_certificate(ssl);
    if (!cert) return {};
    BIO* bio = BIO_new(BIO_s_mem());
    if (!bio) return {};
    X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
    char* data = nullptr;
    long len = BIO_get_mem_data(bio, &data);
    std::string out(data, static_cast<std::size_t>(len > 0 ? len : 0));
    BIO_free(bio);
    return out;
}

http::response<http::string_body> to_http(const ApiResponse& r, unsigned version, bool keep_alive) {
    http::response<http::string_body> res{static_cast<http::status>(r.status), version};
    res.set(http::field::server, "pecd");
    res.set(http::field::content_type, r.content_type);
    res.set(http::field::cache_control, "no-store");
    res.set("X-Content-Type-Options", "nosniff");
    for (auto& [k, v] : r.headers) res.set(k, v);
    res.body() = r.body;
    res.keep_alive(keep_alive);
    res.prepare_payload();
    return res;
}

}  // namespace

struct ApiServer::Impl : std::enable_shared_from_this<Impl> {
    Impl(asio::io_context& i, MailboxApi& a, AuditTrail& t, store::MailboxLifecycle& l, ApiServerSettings s)
        : io(i), api(a), audit(t), lifecycle(l), settings(std::move(s)), acceptor(i), sweep_timer(i) {}

    asio::io_context& io;
    MailboxApi& api;
    AuditTrail& audit;
    store::MailboxLifecycle& lifecycle;
    ApiServerSettings settings;
    tcp::acceptor acceptor;
    asio::steady_timer sweep_timer;
    std::atomic<bool> stopping{false};
    std::atomic<std::size_t> connections{0};
    std::mutex open_mu;
    std::set<beast::tcp_stream*> open;

    awaitable<void> accept_loop();
    awaitable<void> session(tcp::socket sock);
    awaitable<void> serve(Stream& stream, const std::string& ip);
    void schedule_sweep();
    void sweep(bool wait);
};

awaitable<void> ApiServer::Impl::accept_loop() {
    auto self = shared_from_this();
    while (!stopping) {
        error_code ec;
        tcp::socket sock =
            co_await acceptor.async_accept(asio::make_strand(io), asio::redirect_error(use_awaitable, ec));
        if (ec) {
            if (ec == asio::error::operation_aborted || stopping) co_return;
            spdlog::warn("api: accept: {}", ec.message());
            continue;
        }
        auto ex = sock.get_executor();
        asio::co_spawn(ex, session(std::move(sock)), asio::detached);
    }
}

awaitable<void> ApiServer::Impl::session(tcp::socket sock) {
    auto self = shared_from_this();
    error_code ec;
    auto remote = sock.remote_endpoint(ec);
    if (ec) co_return;
    std::string ip = remote.address().to_string();
    if (!settings.allow.allows(remote.address())) {
        spdlog::warn("api: connection from [{}] refused: address not in the allow-list", ip);
        sock.close(ec);
        AuditEntry e;
        e.client_ip = ip;
        e.action = "connect";
        e.status = 0;
        e.outcome = "refused: address not in the allow-list";
        audit.record(e, [](std::exception_ptr) {});
        co_return;
    }
    if (connections.fetch_add(1) >= settings.max_connections) {
        connections.fetch_sub(1);
        spdlog::warn("api: connection from [{}] refused: connection limit", ip);
        co_return;
    }
    struct Release {
        Impl* impl;
        beast::tcp_stream* raw = nullptr;
        ~Release() {
            impl->connections.fetch_sub(1);
            std::lock_guard lock(impl->open_mu);
            impl->open.erase(raw);
        }
    } release{this};
    auto ctx = settings.tls->current();  // held for the session: a reload does not cut it
    Stream stream(std::move(sock), *ctx);
    {
        std::lock_guard lock(open_mu);
        release.raw = &beast::get_lowest_layer(stream);
        open.insert(release.raw);
    }
    if (stopping) co_return;
    beast::get_lowest_layer(stream).expires_after(settings.handshake_timeout);
    co_await stream.async_handshake(asio::ssl::stream_base::server, asio::redirect_error(use_awaitable, ec));
    if (ec) {
        spdlog::info("api: TLS handshake with [{}] failed: {}", ip, ec.message());
        co_return;
    }
    co_await serve(stream, ip);
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(5));
    co_await stream.async_shutdown(asio::redirect_error(use_awaitable, ec));
}

awaitable<void> ApiServer::Impl::serve(Stream& stream, const std::string& ip) {
    std::string subject = certificate_subject(stream.native_handle());
    beast::flat_buffer buffer;
    for (;;) {
        error_code ec;
        http::request_parser<http::string_body> parser;
        parser.header_limit(16 * 1024);
        parser.body_limit(settings.max_body);
        beast::get_lowest_layer(stream).expires_after(settings.idle_timeout);
        co_await http::async_read(stream, buffer, parser, asio::redirect_error(use_awaitable, ec));
        if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == beast::error::timeout ||
            ec == asio::ssl::error::stream_truncated || ec == asio::error::operation_aborted ||
            ec == asio::error::connection_reset)
            co_return;
        bool close_after = false;
        ApiResponse response;
        AuditEntry failed_read;
        unsigned version = 11;
        if (ec) {
            // The request could not be read as HTTP: answer, record it, and close.
            close_after = true;
            response =
                ec == http::error::body_limit
                    ? problem(413, "Payload Too Large",
                              "the request body exceeds " + std::to_string(settings.max_body) + " bytes")
                : ec == http::error::header_limit
                    ? problem(431, "Request Header Fields Too Large", "request headers exceed 16384 bytes")
                    : problem(400, "Bad Request", "malformed HTTP request: " + ec.message());
            AuditEntry e;
            e.client_ip = ip;
            e.client_cert = subject;
            e.action = "request";
            e.status = response.status;
            e.outcome = "refused: " + ec.message();
            if (parser.is_header_done()) {
                e.method = std::string(parser.get().method_string());
                e.target = std::string(parser.get().target());
            }
            auto err = co_await audit_record(audit, e);
            if (err)
                response =
                    problem(503, "Service Unavailable", "the audit trail is not available; retry later");
        } else {
            auto& req = parser.get();
            version = req.version();
            close_after = !req.keep_alive();
            ApiRequest r;
            r.method = std::string(req.method_string());
            r.target = std::string(req.target());
            r.content_type = std::string(req[http::field::content_type]);
            r.authorization = std::string(req[http::field::authorization]);
            r.body = std::move(req.body());
            r.client_ip = ip;
            r.client_cert = subject;
            Plan plan = api.handle(r);
            if (plan.change) {
                auto err = co_await audit_change(audit, std::move(plan.change), plan.audit);
                if (err) {
                    auto [resp, outcome] = api.failed_change(err.error);
                    plan.audit.outcome = outcome;
                    plan.audit.status = resp.status;
                    response = resp;
                    if (co_await audit_record(audit, plan.audit))
                        response = problem(503, "Service Unavailable",
                                           "the audit trail is not available; retry later");
                } else {
                    try {
                        response = plan.after_change();
                    } catch (const std::exception& e) {
                        response = problem(500, "Internal Server Error",
                                           "the change was made; reading it back failed");
                    }
                }
            } else if (plan.audited) {
                if (co_await audit_record(audit, plan.audit)) {
                    spdlog::error("api: audit record not written; answering 503");
                    response =
                        problem(503, "Service Unavailable", "the audit trail is not available; retry later");
                } else {
                    response = std::move(plan.response);
                }
            } else {
                response = std::move(plan.response);
            }
        }
        if (stopping) close_after = true;
        auto res = to_http(response, version, !close_after);
        beast::get_lowest_layer(stream).expires_after(settings.idle_timeout);
        co_await http::async_write(stream, res, asio::redirect_error(use_awaitable, ec));
        if (ec || close_after) co_return;
    }
}

void ApiServer::Impl::sweep(bool wait) {
    std::vector<std::future<void>> waits;
    for (auto& address : lifecycle.due_for_closure()) {
        AuditEntry e;
        e.token_subject = "pecd";
        e.action = "mailbox.close";
        e.mailbox = address;
        e.status = 0;
        e.outcome = "ok: read-only period ended";
        auto p = std::make_shared<std::promise<void>>();
        waits.push_back(p->get_future());
        auto* lc = &lifecycle;
        audit.change([lc, address](store::Tx&) { lc->close_if_due(address); }, e,
                     [p, address](std::exception_ptr err) {
                         if (err) spdlog::error("api: closing mailbox {} failed", address);
                         p->set_value();
                     });
        spdlog::info("api: mailbox {} closed for good (read-only period ended)", address);
    }
    if (wait)
        for (auto& f : waits) f.wait();
}

void ApiServer::Impl::schedule_sweep() {
    sweep_timer.expires_after(settings.closure_sweep_interval);
    sweep_timer.async_wait([w = weak_from_this()](error_code ec) {
        auto self = w.lock();
        if (ec || !self || self->stopping) return;
        try {
            self->sweep(false);
        } catch (const std::exception& e) {
            spdlog::error("api: closure sweep: {}", e.what());
        }
        self->schedule_sweep();
    });
}

ApiServer::ApiServer(asio::io_context& io, MailboxApi& api, AuditTrail& audit,
                     store::MailboxLifecycle& lifecycle, ApiServerSettings settings)
    : impl_(std::make_shared<Impl>(io, api, audit, lifecycle, std::move(settings))) {
    if (!impl_->settings.tls) throw Error("api: the listener needs a TLS context with a client CA");
    if (impl_->settings.allow.empty()) throw Error("api: the listener needs a client allow-list");
}

ApiServer::~ApiServer() {
    stop();
}

unsigned short ApiServer::start() {
    error_code ec;
    auto addr = asio::ip::make_address(impl_->settings.address, ec);
    if (ec) throw Error("api: bad listen address '" + impl_->settings.address + "'");
    tcp::endpoint ep(addr, impl_->settings.port);
    auto& acc = impl_->acceptor;
    acc.open(ep.protocol());
    acc.set_option(tcp::acceptor::reuse_address(true));
    acc.bind(ep, ec);
    if (ec)
        throw Error("api: cannot listen on " + impl_->settings.address + " port " +
                    std::to_string(impl_->settings.port) + ": " + ec.message());
    acc.listen(asio::socket_base::max_listen_connections);
    asio::co_spawn(impl_->io, impl_->accept_loop(), asio::detached);
    impl_->schedule_sweep();
    return acc.local_endpoint().port();
}

void ApiServer::stop() {
    if (impl_->stopping.exchange(true)) return;
    asio::post(impl_->io, [impl = impl_] {
        error_code ec;
        impl->acceptor.close(ec);
        impl->sweep_timer.cancel();
        std::lock_guard lock(impl->open_mu);
        for (auto* s : impl->open) s->socket().close(ec);
    });
}

void ApiServer::sweep_closures() {
    impl_->sweep(true);
}

}  // namespace pecd::api
