#include "server/smtp_server.hpp"

#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <limits>

#include "core/error.hpp"
#include "core/strings.hpp"

namespace pecd::server {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::use_awaitable;
using boost::system::error_code;

namespace {

// Runs fn() on the pool and resumes the awaiting coroutine on its own executor. These are
// initiating functions, not coroutines, and take their work as arguments: GCC 12
// miscompiles capturing lambda temporaries inside co_await expressions (double free).
template <class Fn>
auto run_on(asio::thread_pool& pool, Fn fn) {
    auto initiate = [&pool](auto handler, Fn f) {
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        asio::post(pool, [h, f = std::move(f)]() mutable {
            bool r = f();
            auto ex = asio::get_associated_executor(*h);
            asio::post(ex, [h, r]() mutable { (*h)(r); });
        });
    };
    return asio::async_initiate<decltype(use_awaitable), void(bool)>(initiate, use_awaitable, std::move(fn));
}

auto commit_async(queue::IncomingMessage& message) {
    auto initiate = [](auto handler, queue::IncomingMessage* m) {
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        m->commit([h](queue::CommitResult r) {
            auto ex = asio::get_associated_executor(*h);
            asio::post(ex, [h, r = std::move(r)]() mutable { (*h)(std::move(r)); });
        });
    };
    return asio::async_initiate<decltype(use_awaitable), void(queue::CommitResult)>(initiate, use_awaitable,
                                                                                  &message);
}

// A password check to run off the event loop; the password is wiped when done.
struct PasswordCheck {
    Directory* directory;
    std::shared_ptr<std::pair<std::string, std::string>> credentials;
    bool operator()() {
        bool r = directory->verify_password(credentials->first, credentials->second);
        std::fill(credentials->second.begin(), credentials->second.end(), '\0');
        return r;
    }
};

// The SessionHandler of one listener: local delivery or authenticated relay only.
class RelayPolicy final : public smtp::SessionHandler {
public:
    RelayPolicy(Directory& d, queue::MessageSink& s) : dir_(d), sink_(s) {}
    smtp::RecipientVerdict check_recipient(const SessionInfo& session, const std::string& address) override {
        if (auto local = dir_.local_recipient(address)) return *local;
        // No open relay: only an authenticated client may send to other domains.
        return session.auth_user.empty() ? smtp::RecipientVerdict::relay_denied : smtp::RecipientVerdict::accept;
    }
    std::unique_ptr<queue::IncomingMessage> begin_message(const Envelope& e) override {
        try {
            return sink_.begin(e);
        } catch (const TemporaryError& ex) {
            // The client only sees a 4xx; the operator needs the cause (a full disk, say).
            spdlog::error("smtp: [{}] message refused: {}", e.session.client_ip, ex.what());
            throw;
        }
    }

private:
    Directory& dir_;
    queue::MessageSink& sink_;
};

}  // namespace

struct SmtpServer::Impl : std::enable_shared_from_this<Impl> {
    struct Listener {
        ListenerConfig config;
        tcp::acceptor acceptor;
        std::unique_ptr<RelayPolicy> handler;
    };

    Impl(asio::io_context& i, Directory& d, queue::MessageSink& s, const Clock& c, ServerLimits l,
         smtp::AuthLimits a)
        : io(i), directory(d), sink(s), clock(c), limits(l), auth_limiter(a), pool(2), reload_timer(i) {}

    asio::io_context& io;
    Directory& directory;
    queue::MessageSink& sink;
    const Clock& clock;
    ServerLimits limits;
    smtp::AuthLimiter auth_limiter;
    asio::thread_pool pool;
    asio::steady_timer reload_timer;
    std::vector<std::unique_ptr<Listener>> listeners;
    std::atomic<bool> stopping{false};
    std::function<std::size_t()> queue_backlog;
    // Steady-clock seconds of the last in-flow log line (none yet: far in the past).
    std::atomic<std::int64_t> last_inflow_note{std::numeric_limits<std::int32_t>::min()};

    mutable std::mutex conn_mu;
    std::size_t total = 0;
    std::unordered_map<std::string, std::size_t> per_client;

    bool admit(const std::string& ip) {
        std::lock_guard lock(conn_mu);
        if (total >= limits.max_connections || per_client[ip] >= limits.per_client) return false;
        ++total;
        ++per_client[ip];
        return true;
    }
    void release(const std::string& ip) {
        std::lock_guard lock(conn_mu);
        --total;
        if (--per_client[ip] == 0) per_client.erase(ip);
    }

    awaitable<void> accept_loop(Listener& l);
    awaitable<void> session(tcp::socket sock, Listener& l);
    awaitable<void> pace_inflow(const std::string& listener);
    bool congested() const {
        return limits.in_flow_backlog > 0 && queue_backlog && queue_backlog() > limits.in_flow_backlog;
    }
    void schedule_reload();
};

namespace {

// The connection's byte streams: plain socket, then TLS over it after a handshake.
struct Connection {
    explicit Connection(tcp::socket s) : sock(std::move(s)), timer(sock.get_executor()) {}
    tcp::socket sock;
    tls::ContextPtr context;  // keeps the context of this session alive across reloads
    std::unique_ptr<ssl::stream<tcp::socket&>> tls;
    asio::steady_timer timer;
    bool timed_out = false;

    // Cancels the socket if the deadline passes before the next arm() or disarm().
    void arm(std::chrono::seconds d) {
        timer.expires_after(d);
        timer.async_wait([this](error_code ec) {
            if (ec) return;
            timed_out = true;
            error_code ignored;
            sock.cancel(ignored);
        });
    }
    void disarm() { timer.cancel(); }

    awaitable<std::size_t> read(asio::mutable_buffer b, error_code& ec) {
        if (tls) co_return co_await tls->async_read_some(b, asio::redirect_error(use_awaitable, ec));
        co_return co_await sock.async_read_some(b, asio::redirect_error(use_awaitable, ec));
    }
    awaitable<void> write(std::string_view data, error_code& ec) {
        if (tls)
            co_await asio::async_write(*tls, asio::buffer(data), asio::redirect_error(use_awaitable, ec));
        else
            co_await asio::async_write(sock, asio::buffer(data), asio::redirect_error(use_awaitable, ec));
    }
    // Empty when the handshake succeeded, else why it failed, for the operator's log: the
    // peer's TLS version or ciphers that we refuse, a plain-text client, a time-out.
    awaitable<std::string> handshake(const tls::ContextPtr& ctx, std::chrono::seconds limit) {
        context = ctx;
        tls = std::make_unique<ssl::stream<tcp::socket&>>(sock, *ctx);
        // Idle TLS sessions give their I/O buffers back (memory per idle connection).
        SSL_set_mode(tls->native_handle(), SSL_MODE_RELEASE_BUFFERS);
        error_code ec;
        arm(limit);
        co_await tls->async_handshake(ssl::stream_base::server, asio::redirect_error(use_awaitable, ec));
        disarm();
        if (!ec) co_return std::string();
        if (timed_out) co_return "no handshake within " + std::to_string(limit.count()) + " s";
        if (ec == asio::error::eof || ec == ssl::error::stream_truncated)
            co_return "the client closed the connection";
        co_return ec.message();
    }
};

}  // namespace

awaitable<void> SmtpServer::Impl::accept_loop(Listener& l) {
    auto self = shared_from_this();
    while (!stopping) {
        error_code ec;
        tcp::socket sock = co_await l.acceptor.async_accept(asio::make_strand(io),
                                                            asio::redirect_error(use_awaitable, ec));
        if (ec) {
            if (ec == asio::error::operation_aborted || stopping) co_return;
            spdlog::warn("smtp: accept on {}: {}", l.config.policy.name, ec.message());
            continue;  // EMFILE and friends: keep serving the sessions we have
        }
        auto ex = sock.get_executor();
        asio::co_spawn(ex, session(std::move(sock), l), asio::detached);
    }
}

awaitable<void> SmtpServer::Impl::pace_inflow(const std::string& listener) {
    if (!congested()) co_return;
    // Polled, not signalled: the backlog shrinks in the queue's threads, and a short sleep
    // costs nothing while nobody is waiting.
    constexpr auto step = std::chrono::milliseconds(5);
    auto start = std::chrono::steady_clock::now();
    auto deadline = start + limits.in_flow_delay;
    asio::steady_timer timer(co_await asio::this_coro::executor);
    error_code ec;
    while (!stopping && std::chrono::steady_clock::now() < deadline && congested()) {
        timer.expires_after(step);
        co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
    }
    // One line a minute at most: at overload every message waits.
    auto now_s = std::chrono::duration_cast<std::chrono::seconds>(start.time_since_epoch()).count();
    auto last = last_inflow_note.load();
    if (now_s - last < 60 || !last_inflow_note.compare_exchange_strong(last, now_s)) co_return;
    auto waited =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    spdlog::info(
        "smtp: {}: queue backlog over {} messages: new messages wait up to {} ms before they are "
        "accepted (in-flow control; this one waited {} ms)",
        listener, limits.in_flow_backlog, limits.in_flow_delay.count(), waited.count());
}

awaitable<void> SmtpServer::Impl::session(tcp::socket sock, Listener& l) {
    auto self = shared_from_this();
    error_code ec;
    auto remote = sock.remote_endpoint(ec);
    if (ec) co_return;
    std::string ip = remote.address().to_string();
    Connection conn(std::move(sock));
    if (!admit(ip)) {
        co_await conn.write("421 4.7.0 Error: too many connections from your address\r\n", ec);
        co_return;
    }
    struct Release {
        Impl* impl;
        std::string ip;
        ~Release() { impl->release(ip); }
    } release{this, ip};

    const auto& policy = l.config.policy;
    bool implicit = policy.tls == smtp::TlsMode::implicit;
    smtp::ServerSession s(policy, *l.handler, clock, ip, remote.port(), implicit);
    if (implicit) {
        if (auto why = co_await conn.handshake(l.config.tls->current(), limits.tls_handshake); !why.empty()) {
            spdlog::info("smtp: {} TLS handshake failed from [{}]: {}", policy.name, ip, why);
            co_return;
        }
        s.tls_started(SSL_get_version(conn.tls->native_handle()),
                      SSL_get_cipher_name(conn.tls->native_handle()));
    }
    s.start();

    std::array<char, 8192> buf;
    for (;;) {
        if (!s.output().empty()) {
            std::string out;
            out.swap(s.output());
            co_await conn.write(out, ec);
            if (ec) co_return;
        }
        switch (s.wait()) {
            case smtp::Wait::close:
                if (conn.tls) {
                    conn.arm(std::chrono::seconds(5));
                    co_await conn.tls->async_shutdown(asio::redirect_error(use_awaitable, ec));
                    conn.disarm();
                }
                conn.sock.shutdown(tcp::socket::shutdown_both, ec);
                co_return;
            case smtp::Wait::start_tls: {
                if (auto why = co_await conn.handshake(l.config.tls->current(), limits.tls_handshake);
                    !why.empty()) {
                    spdlog::info("smtp: {} STARTTLS handshake failed from [{}]: {}", policy.name, ip, why);
                    co_return;
                }
                s.tls_started(SSL_get_version(conn.tls->native_handle()),
                              SSL_get_cipher_name(conn.tls->native_handle()));
                spdlog::debug("smtp: {} [{}] TLS {} {}", policy.name, ip, s.info().tls_protocol,
                              s.info().tls_cipher);
                continue;
            }
            case smtp::Wait::authenticate: {
                const auto& req = s.auth_request();
                auto now = clock.now();
                if (!auth_limiter.allowed(ip, req.user, now)) {
                    spdlog::warn("smtp: {} [{}] AUTH refused: rate limit", policy.name, ip);
                    s.auth_finished(false, true);
                    continue;
                }
                std::string user = req.user;
                PasswordCheck check{&directory,
                                    std::make_shared<std::pair<std::string, std::string>>(req.user, req.password)};
                bool ok = co_await run_on(pool, std::move(check));
                if (ok) {
                    auth_limiter.succeeded(user);
                } else {
                    auth_limiter.failed(ip, user, now);
                    spdlog::warn("smtp: {} [{}] AUTH failed for account '{}'", policy.name, ip, user);
                }
                s.auth_finished(ok);
                continue;
            }
            case smtp::Wait::commit: {
                if (policy.require_auth) co_await pace_inflow(policy.name);
                auto result = co_await commit_async(*s.pending_message());
                if (!result.ok) spdlog::error("smtp: {} [{}] message not stored: {}", policy.name, ip, result.error);
                s.commit_finished(result);
                continue;
            }
            case smtp::Wait::none:
                break;
        }
        if (stopping) {
            s.shutdown();
            continue;
        }
        conn.arm(limits.idle);
        std::size_t n = co_await conn.read(asio::buffer(buf), ec);
        conn.disarm();
        if (ec) {
            if (conn.timed_out) {
                s.timeout();
                continue;
            }
            co_return;
        }
        s.feed(std::string_view(buf.data(), n));
    }
}

void SmtpServer::Impl::schedule_reload() {
    reload_timer.expires_after(limits.tls_reload_interval);
    reload_timer.async_wait([w = weak_from_this()](error_code ec) {
        auto self = w.lock();
        if (ec || !self || self->stopping) return;
        for (auto& l : self->listeners)
            if (l->config.tls) l->config.tls->reload_if_changed();
        self->schedule_reload();
    });
}

SmtpServer::SmtpServer(asio::io_context& io, Directory& directory, queue::MessageSink& sink, const Clock& clock,
                       ServerLimits limits, smtp::AuthLimits auth_limits)
    : impl_(std::make_shared<Impl>(io, directory, sink, clock, limits, auth_limits)) {}

SmtpServer::~SmtpServer() {
    stop();
    impl_->pool.join();
}

BoundListener SmtpServer::add_listener(ListenerConfig config) {
    if (config.policy.tls != smtp::TlsMode::none && !config.tls)
        throw Error("listener " + config.policy.name + ": TLS mode needs a certificate");
    error_code ec;
    auto addr = asio::ip::make_address(config.address, ec);
    if (ec) throw Error("listener " + config.policy.name + ": bad address '" + config.address + "'");
    tcp::endpoint ep(addr, config.port);
    auto l = std::make_unique<Impl::Listener>(
        Impl::Listener{std::move(config), tcp::acceptor(impl_->io), nullptr});
    l->handler = std::make_unique<RelayPolicy>(impl_->directory, impl_->sink);
    auto& a = l->acceptor;
    a.open(ep.protocol(), ec);
    if (!ec) a.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) a.bind(ep, ec);
    if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
        throw Error("listener " + l->config.policy.name + ": cannot listen on " + l->config.address + " port " +
                    std::to_string(ep.port()) + ": " + ec.message());
    BoundListener b{l->config.policy.name, l->config.address, a.local_endpoint().port(), l->config.policy.tls};
    impl_->listeners.push_back(std::move(l));
    bound_.push_back(b);
    return b;
}

void SmtpServer::set_queue_backlog(std::function<std::size_t()> backlog) {
    impl_->queue_backlog = std::move(backlog);
}

void SmtpServer::start() {
    for (auto& l : impl_->listeners)
        asio::co_spawn(impl_->io, impl_->accept_loop(*l), asio::detached);
    impl_->schedule_reload();
}

void SmtpServer::stop() {
    if (impl_->stopping.exchange(true)) return;
    impl_->reload_timer.cancel();
    for (auto& l : impl_->listeners) {
        error_code ec;
        l->acceptor.close(ec);
    }
}

std::size_t SmtpServer::connections() const {
    std::lock_guard lock(impl_->conn_mu);
    return impl_->total;
}

}  // namespace pecd::server
