// remote_transport.cpp - LMTP/SMTP next hops over Boost.Asio (see remote_transport.hpp)
//
// Each delivery runs on the calling queue worker with its own io_context; every network
// step is started asynchronously and the context is run for that step's timeout, so a
// silent peer costs a bounded wait and never blocks the worker for good.
#include "delivery/remote_transport.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include <fstream>
#include <optional>

#include "core/error.hpp"
#include "core/strings.hpp"
#include "smtp/client.hpp"

namespace pecd::delivery {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

class HandshakeError : public TemporaryError {
public:
    using TemporaryError::TemporaryError;
};

class Connection {
public:
    explicit Connection(std::string what) : what_(std::move(what)) {}

    void connect_tcp(const std::string& host, std::uint16_t port, Clock::duration timeout) {
        tcp::resolver resolver(io_);
        tcp::resolver::results_type endpoints;
        run(
            [&](auto done) {
                resolver.async_resolve(
                    host, std::to_string(port),
                    [&, done](const boost::system::error_code& ec, tcp::resolver::results_type r) {
                        endpoints = std::move(r);
                        done(ec);
                    });
            },
            timeout, "resolve " + host, [&] { resolver.cancel(); });
        tcp_.emplace(io_);
        run(
            [&](auto done) {
                asio::async_connect(
                    *tcp_, endpoints,
                    [done](const boost::system::error_code& ec, const tcp::endpoint&) { done(ec); });
            },
            timeout, "connect to " + what_, [&] { close(); });
        boost::system::error_code ignored;
        tcp_->set_option(tcp::no_delay(true), ignored);
    }

    void connect_unix(const std::string& path, Clock::duration timeout) {
        unix_.emplace(io_);
        run(
            [&](auto done) {
                unix_->async_connect(asio::local::stream_protocol::endpoint(path),
                                     [done](const boost::system::error_code& ec) { done(ec); });
            },
            timeout, "connect to " + path, [&] { close(); });
    }

    void start_tls(tls::ClientTls& tls, const std::string& server_name, const std::string& session_key,
                   Clock::duration timeout) {
        tls_ = std::make_unique<asio::ssl::stream<tcp::socket>>(std::move(*tcp_), tls.context());
        tcp_.reset();
        tls.prepare(tls_->native_handle(), server_name, session_key);
        try {
            run(
                [&](auto done) {
                    tls_->async_handshake(asio::ssl::stream_base::client,
                                          [done](const boost::system::error_code& ec) { done(ec); });
                },
                timeout, "TLS handshake with " + what_, [&] { close(); });
        } catch (const TemporaryError& e) {
            throw HandshakeError(e.what());
        }
    }

    SSL* ssl() { return tls_ ? tls_->native_handle() : nullptr; }

    void write(std::string_view data, Clock::duration timeout) {
        if (data.empty()) return;
        run(
            [&](auto done) {
                auto handler = [done](const boost::system::error_code& ec, std::size_t) { done(ec); };
                if (tls_)
                    asio::async_write(*tls_, asio::buffer(data), handler);
                else if (tcp_)
                    asio::async_write(*tcp_, asio::buffer(data), handler);
                else
                    asio::async_write(*unix_, asio::buffer(data), handler);
            },
            timeout, "write to " + what_, [&] { close(); });
    }

    std::size_t read_some(char* buf, std::size_t size, Clock::duration timeout) {
        std::size_t n = 0;
        run(
            [&](auto done) {
                auto handler = [&n, done](const boost::system::error_code& ec, std::size_t k) {
                    n = k;
                    done(ec);
                };
                if (tls_)
                    tls_->async_read_some(asio::buffer(buf, size), handler);
                else if (tcp_)
                    tcp_->async_read_some(asio::buffer(buf, size), handler);
                else
                    unix_->async_read_some(asio::buffer(buf, size), handler);
            },
            timeout, "read from " + what_, [&] { close(); });
        return n;
    }

    void close() {
        boost::system::error_code ec;
        if (tls_) tls_->lowest_layer().close(ec);
        if (tcp_) tcp_->close(ec);
        if (unix_) unix_->close(ec);
    }

private:
    // Starts one operation with a completion `done(ec)` and runs the context until it
    // completes or the timeout passes (then `cancel` and a TemporaryError).
    template <class Start, class Cancel>
    void run(Start&& start, Clock::duration timeout, const std::string& what, Cancel&& cancel) {
        bool finished = false;
        boost::system::error_code result;
        start([&finished, &result](const boost::system::error_code& ec) {
            result = ec;
            finished = true;
        });
        io_.restart();
        io_.run_for(timeout);
        if (!finished) {
            cancel();
            io_.restart();
            io_.run();
            throw TemporaryError(what + ": timed out");
        }
        if (result) throw TemporaryError(what + ": " + result.message());
    }

    std::string what_;
    asio::io_context io_;
    std::optional<tcp::socket> tcp_;
    std::optional<asio::local::stream_protocol::socket> unix_;
    std::unique_ptr<asio::ssl::stream<tcp::socket>> tls_;
};

smtp::Reply read_reply(Connection& c, smtp::ReplyParser& parser, Clock::duration timeout) {
    char buf[8192];
    for (;;) {
        if (auto r = parser.next()) return *r;
        auto n = c.read_some(buf, sizeof buf, timeout);
        parser.feed(std::string_view(buf, n));
    }
}

void send_body(Connection& c, const std::filesystem::path& data, Clock::duration timeout) {
    std::ifstream in(data, std::ios::binary);
    if (!in) throw TemporaryError("cannot open queued message " + data.string());
    smtp::DotStuffer stuffer;
    std::string chunk(64 * 1024, '\0');
    while (in) {
        in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
        auto n = static_cast<std::size_t>(in.gcount());
        if (n == 0) break;
        c.write(stuffer.encode(std::string_view(chunk.data(), n)), timeout);
    }
    if (in.bad()) throw TemporaryError("cannot read queued message " + data.string());
    c.write(stuffer.finish(), timeout);
}

struct AttemptResult {
    std::vector<std::optional<smtp::Reply>> replies;
    bool handshake_failed = false;
    std::string peer;
    std::string tls_note;
};

}  // namespace

RemoteTransport::RemoteTransport(RemoteOptions options) : options_(std::move(options)) {}

std::vector<queue::RecipientResult> RemoteTransport::deliver(const queue::DeliveryAttempt& a) {
    const auto& route = a.route;
    const bool lmtp = route.kind == store::Route::Kind::lmtp;
    std::string peer =
        route.unix_path.empty() ? route.host + ":" + std::to_string(route.port) : route.unix_path;
    std::string destination = a.recipients.empty() ? std::string() : domain_of(a.recipients.front().address);
    auto policy =
        lmtp ? tls::DestinationPolicy{tls::Policy::none, {}} : options_.policies.lookup(destination);
    if (!options_.tls && policy.policy != tls::Policy::none && policy.policy != tls::Policy::may)
        policy.policy = tls::Policy::encrypt;  // and TLS is impossible: recipients wait below

    auto attempt = [&](smtp::TlsWanted wanted) {
        smtp::ClientParams p;
        p.lmtp = lmtp;
        p.helo_name = options_.helo_name;
        p.tls =
            options_.tls ? wanted : (wanted == smtp::TlsWanted::if_offered ? smtp::TlsWanted::never : wanted);
        p.mail_from = a.message.envelope.mail_from;
        for (const auto& r : a.recipients) p.recipients.push_back({r.address, r.notify, r.orcpt});
        p.size = a.message.size;
        p.eight_bit = iequals(a.message.envelope.body_type, "8BITMIME");
        p.smtputf8 = a.message.envelope.smtputf8;
        p.dsn_ret = a.message.envelope.dsn_ret;
        p.dsn_envid = a.message.envelope.dsn_envid;
        smtp::ClientSession session(p);
        smtp::ReplyParser parser;
        Connection conn(peer);
        AttemptResult out;
        out.peer = route.host.empty() ? "localhost" : route.host;
        try {
            if (route.unix_path.empty())
                conn.connect_tcp(route.host, route.port, options_.connect_timeout);
            else
                conn.connect_unix(route.unix_path, options_.connect_timeout);
            auto action = session.on_reply(read_reply(conn, parser, options_.reply_timeout));
            for (;;) {
                using Step = smtp::ClientSession::Step;
                if (action.step == Step::done) {
                    try {
                        conn.write(action.bytes, std::chrono::seconds(5));
                    } catch (const std::exception&) {
                        // QUIT is a courtesy; the transaction is already decided.
                    }
                    break;
                }
                if (action.step == Step::start_tls) {
                    conn.start_tls(*options_.tls, route.host, peer, options_.connect_timeout);
                    auto refs = tls::reference_names(policy, route.host, destination);
                    auto v = options_.tls->inspect(conn.ssl(), refs);
                    out.tls_note = tls::describe_tls(policy.policy, v);
                    auto verdict = tls::judge_peer(policy.policy, v);
                    if (!verdict.deliver) {
                        session.fail_unresolved("TLS: " + verdict.reason);
                        break;
                    }
                    action = session.tls_started();
                    continue;
                }
                if (action.step == Step::send_body) {
                    send_body(conn, a.data, options_.data_timeout);
                    action = session.on_reply(read_reply(conn, parser, options_.data_timeout));
                    continue;
                }
                conn.write(action.bytes, options_.reply_timeout);
                action = session.on_reply(read_reply(conn, parser, options_.reply_timeout));
            }
        } catch (const HandshakeError& e) {
            out.handshake_failed = true;
            session.fail_unresolved(e.what());
        } catch (const std::exception& e) {
            session.fail_unresolved(e.what());
        }
        conn.close();
        out.replies = session.results();
        return out;
    };

    smtp::TlsWanted wanted = smtp::TlsWanted::never;
    switch (policy.policy) {
        case tls::Policy::none:
            wanted = smtp::TlsWanted::never;
            break;
        case tls::Policy::may:
            wanted = smtp::TlsWanted::if_offered;
            break;
        default:
            wanted = smtp::TlsWanted::required;
            break;
    }
    auto result = attempt(wanted);
    if (result.handshake_failed &&
        tls::decide_after_handshake_failure(policy.policy, "handshake failed").step == tls::TlsStep::plain)
        result = attempt(smtp::TlsWanted::never);

    std::vector<queue::RecipientResult> out;
    for (std::size_t i = 0; i < a.recipients.size(); ++i) {
        queue::RecipientResult r;
        r.recipient_id = a.recipients[i].id;
        r.remote_mta = result.peer;
        const auto& reply = result.replies[i];
        if (!reply) {
            r.outcome = queue::Outcome::deferred;
            r.status = "4.4.2";
            r.diagnostic = "no reply from " + peer;
        } else {
            r.outcome = reply->positive()    ? queue::Outcome::delivered
                        : reply->transient() ? queue::Outcome::deferred
                                             : queue::Outcome::failed;
            r.status = reply->status();
            r.diagnostic = reply->summary();
            if (!result.tls_note.empty() && r.outcome == queue::Outcome::delivered)
                r.diagnostic += " (" + result.tls_note + ")";
        }
        out.push_back(std::move(r));
    }
    return out;
}

}  // namespace pecd::delivery
