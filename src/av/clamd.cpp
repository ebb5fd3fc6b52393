// clamd.cpp - clamd INSTREAM client on Boost.Asio (see clamd.hpp for the contract)
#include "av/clamd.hpp"

#include <array>
#include <utility>
// <utility> first: Boost 1.74's awaitable.hpp uses std::exchange without including it.
#include <boost/asio.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <mutex>
#include <optional>

#include "core/error.hpp"
#include "core/strings.hpp"

namespace pecd::av {
namespace asio = boost::asio;
using boost::system::error_code;

namespace {

constexpr std::size_t kMaxReply = 4096;
constexpr std::string_view kSizeLimit = "INSTREAM size limit exceeded";
constexpr std::string_view kInstream{"zINSTREAM", 10};  // includes the terminating NUL

std::array<unsigned char, 4> be32(std::uint32_t n) {
    return {static_cast<unsigned char>(n >> 24), static_cast<unsigned char>(n >> 16),
            static_cast<unsigned char>(n >> 8), static_cast<unsigned char>(n)};
}

std::string seconds_text(std::chrono::milliseconds ms) {
    auto s = std::to_string(ms.count() / 1000);
    if (ms.count() % 1000) s += "." + std::to_string(ms.count() % 1000 / 100);
    return s + " s";
}

bool printable(std::string_view s) {
    for (unsigned char c : s)
        if (c < 0x20 || c == 0x7f) return false;
    return true;
}

}  // namespace

// A connection to clamd with its own io_context, so that a worker thread drives it
// synchronously. Used for one request, or in session mode for one request after another.
struct ClamdClient::Connection {
    asio::io_context io;
    asio::local::stream_protocol::socket unix_socket{io};
    asio::ip::tcp::socket tcp_socket{io};
    bool connected = false;
    unsigned requests = 0;  // sent on this connection; clamd numbers a session's replies from 1
    std::chrono::steady_clock::time_point idle_since;
};

namespace {

// One request and its reply on `c` (connected first if it is not), all under time limits.
// In session mode the first request on the connection is preceded by "zIDSESSION\0", the
// reply carries the request's number ("3: stream: OK"), which is checked and removed, and
// the connection stays open after a complete reply.
class Exchange {
public:
    Exchange(const ClamdOptions& o, ClamdClient::Connection& c, bool session, std::string_view prefix,
             const std::string_view* data)
        : o_(o), c_(c), session_(session), prefix_(prefix), data_(data) {}

    std::string run() {
        if (o_.endpoint.kind == ClamdEndpoint::Kind::unix_socket) return run_on(c_.unix_socket);
        return run_on(c_.tcp_socket);
    }

    // The connection is still open and in step: it may carry another request.
    bool reusable() const { return session_ && c_.connected && terminated_ && written_; }

private:
    template <class Socket>
    std::string run_on(Socket& sock) {
        if (!c_.connected) {
            connect(sock);
            c_.io.run();
            c_.io.restart();
            if (!c_.connected) throw_connect_error();
        }
        arm(o_.scan_timeout, sock);
        build_buffers();
        ++c_.requests;
        asio::async_write(sock, buffers_, [this](const error_code& e, std::size_t) {
            write_ec_ = e;
            written_ = !e;
        });
        asio::async_read_until(sock, asio::dynamic_buffer(reply_, kMaxReply), '\0',
                               [this, &sock](const error_code& e, std::size_t n) {
                                   read_ec_ = e;
                                   terminated_ = !e;
                                   if (!e) reply_.resize(n - 1);
                                   timer_.cancel();
                                   // The answer is all we need: a reply before the whole
                                   // request was written (clamd's size limit) ends the
                                   // connection, as does any reply outside a session.
                                   if (e || !session_ || !written_) close(sock);
                               });
        c_.io.run();
        c_.io.restart();
        return result();
    }

    void connect(asio::local::stream_protocol::socket& sock) {
        arm(o_.connect_timeout, sock);
        sock.async_connect(asio::local::stream_protocol::endpoint(o_.endpoint.path),
                           [this, &sock](const error_code& ec) { connected(ec, sock); });
    }

    void connect(asio::ip::tcp::socket& sock) {
        resolver_.emplace(c_.io);
        arm(o_.connect_timeout, sock);
        resolver_->async_resolve(
            o_.endpoint.host, std::to_string(o_.endpoint.port), asio::ip::resolver_base::numeric_service,
            [this, &sock](const error_code& ec, asio::ip::tcp::resolver::results_type r) {
                if (ec) {
                    connect_ec_ = ec;
                    timer_.cancel();
                    return;
                }
                asio::async_connect(sock, r,
                                    [this, &sock](const error_code& e, const auto&) { connected(e, sock); });
            });
    }

    template <class Socket>
    void connected(const error_code& ec, Socket& sock) {
        timer_.cancel();
        if (ec || timed_out_) {
            connect_ec_ = ec ? ec : asio::error::timed_out;
            close(sock);
            return;
        }
        c_.connected = true;
    }

    template <class Socket>
    void close(Socket& sock) {
        error_code ignored;
        sock.close(ignored);
        c_.connected = false;
    }

    template <class Socket>
    void arm(std::chrono::milliseconds limit, Socket& sock) {
        timed_out_ = false;
        timer_.expires_after(limit);
        timer_.async_wait([this, &sock](const error_code& ec) {
            if (ec) return;  // cancelled or re-armed
            timed_out_ = true;
            if (resolver_) resolver_->cancel();
            close(sock);
        });
    }

    void build_buffers() {
        if (session_ && c_.requests == 0) buffers_.push_back(asio::buffer(kSession.data(), kSession.size()));
        buffers_.push_back(asio::buffer(prefix_.data(), prefix_.size()));
        if (!data_) return;
        std::size_t chunk = o_.chunk_size ? o_.chunk_size : 64 * 1024;
        std::string_view d = *data_;
        headers_.reserve(d.size() / chunk + 2);
        for (std::size_t off = 0; off < d.size(); off += chunk) {
            auto n = std::min(chunk, d.size() - off);
            headers_.push_back(be32(static_cast<std::uint32_t>(n)));
            buffers_.push_back(asio::buffer(headers_.back()));
            buffers_.push_back(asio::buffer(d.data() + off, n));
        }
        headers_.push_back(be32(0));
        buffers_.push_back(asio::buffer(headers_.back()));
    }

    [[noreturn]] void throw_connect_error() const {
        const auto where = "clamd at " + o_.endpoint.to_string();
        if (timed_out_)
            throw TemporaryError(where + ": no connection within " + seconds_text(o_.connect_timeout));
        throw TemporaryError(where + " unreachable: " + connect_ec_.message());
    }

    std::string result() {
        const auto where = "clamd at " + o_.endpoint.to_string();
        if (terminated_) return session_ ? without_number(where) : reply_;
        if (timed_out_) throw TemporaryError(where + ": no answer within " + seconds_text(o_.scan_timeout));
        if (read_ec_ == asio::error::not_found)
            throw TemporaryError(where + ": answer longer than " + std::to_string(kMaxReply) +
                                 " bytes (not clamd?)");
        if (!reply_.empty() && !session_)
            return reply_;  // closed after an unterminated line: let the parser judge it
        std::string why =
            read_ec_ == asio::error::eof ? "closed the connection without an answer" : read_ec_.message();
        if (write_ec_) why += " (while sending: " + write_ec_.message() + ")";
        throw TemporaryError(where + ": " + why);
    }

    // "7: stream: OK" -> "stream: OK", when 7 is this request's number.
    std::string without_number(const std::string& where) {
        auto expected = std::to_string(c_.requests) + ": ";
        if (reply_.compare(0, expected.size(), expected) != 0) {
            c_.connected = false;  // out of step: never used again
            throw TemporaryError(where + ": session reply \"" + reply_.substr(0, 64) +
                                 "\" is not for request " + std::to_string(c_.requests));
        }
        return reply_.substr(expected.size());
    }

    static constexpr std::string_view kSession{"zIDSESSION", 11};  // includes the terminating NUL

    const ClamdOptions& o_;
    ClamdClient::Connection& c_;
    bool session_;
    std::string_view prefix_;
    const std::string_view* data_;
    asio::steady_timer timer_{c_.io};
    std::optional<asio::ip::tcp::resolver> resolver_;
    std::vector<std::array<unsigned char, 4>> headers_;
    std::vector<asio::const_buffer> buffers_;
    std::string reply_;
    error_code connect_ec_, read_ec_, write_ec_;
    bool timed_out_ = false, terminated_ = false, written_ = false;
};

}  // namespace

ClamdEndpoint ClamdEndpoint::parse(std::string_view text) {
    auto t = trim(text);
    ClamdEndpoint e;
    if (t.empty()) throw ParseError("empty clamd address", 0, "antivirus");
    if (istarts_with(t, "unix:")) t.remove_prefix(5);
    if (!t.empty() && t.front() == '/') {
        // sockaddr_un holds 108 bytes including the terminating NUL.
        if (t.size() > 107) throw ParseError("clamd socket path longer than 107 bytes", 0, "antivirus");
        e.kind = Kind::unix_socket;
        e.path = std::string(t);
        return e;
    }
    if (istarts_with(t, "tcp:")) t.remove_prefix(4);
    e.kind = Kind::tcp;
    std::string_view host, port;
    if (!t.empty() && t.front() == '[') {
        auto close = t.find(']');
        if (close == std::string_view::npos || close + 1 >= t.size() || t[close + 1] != ':')
            throw ParseError("expected [address]:port, got \"" + std::string(text) + "\"", 0, "antivirus");
        host = t.substr(1, close - 1);
        port = t.substr(close + 2);
    } else {
        auto colon = t.rfind(':');
        if (colon == std::string_view::npos)
            throw ParseError(
                "expected host:port or an absolute socket path, got \"" + std::string(text) + "\"", 0,
                "antivirus");
        host = t.substr(0, colon);
        port = t.substr(colon + 1);
    }
    unsigned long p = 0;
    for (char c : port) {
        if (c < '0' || c > '9' || p > 65535)
            throw ParseError("invalid port in \"" + std::string(text) + "\"", 0, "antivirus");
        p = p * 10 + static_cast<unsigned>(c - '0');
    }
    if (host.empty() || port.empty() || p == 0 || p > 65535)
        throw ParseError("invalid host or port in \"" + std::string(text) + "\"", 0, "antivirus");
    e.host = std::string(host);
    e.port = static_cast<std::uint16_t>(p);
    return e;
}

std::string ClamdEndpoint::to_string() const {
    if (kind == Kind::unix_socket) return "unix:" + path;
    if (host.find(':') != std::string::npos) return "tcp:[" + host + "]:" + std::to_string(port);
    return "tcp:" + host + ":" + std::to_string(port);
}

ScanResult parse_reply(std::string_view reply) {
    std::string_view r = reply;
    while (!r.empty() && (r.back() == '\n' || r.back() == '\0' || r.back() == '\r')) r.remove_suffix(1);
    if (r.empty() || r.size() > kMaxReply || !printable(r))
        throw TemporaryError("clamd: unexpected answer (not the clamd protocol)");
    ScanResult out;
    out.reply = std::string(r);
    if (r.size() >= 6 && r.substr(r.size() - 6) == " ERROR") {
        if (r.substr(0, kSizeLimit.size()) == kSizeLimit) {
            out.verdict = Verdict::size_limit_exceeded;
            return out;
        }
        throw TemporaryError("clamd: scan failed: " + out.reply);
    }
    // A stream reply names the stream first: "stream: OK", "stream: Eicar-Signature FOUND".
    constexpr std::string_view kStream = "stream: ";
    if (r.substr(0, kStream.size()) != kStream)
        throw TemporaryError("clamd: unexpected answer \"" + out.reply + "\"");
    auto rest = r.substr(kStream.size());
    if (rest == "OK") return out;
    constexpr std::string_view kFound = " FOUND";
    if (rest.size() > kFound.size() && rest.substr(rest.size() - kFound.size()) == kFound) {
        out.verdict = Verdict::infected;
        out.virus = std::string(rest.substr(0, rest.size() - kFound.size()));
        return out;
    }
    throw TemporaryError("clamd: unexpected answer \"" + out.reply + "\"");
}

std::string instream_frame(std::string_view data, std::size_t chunk_size) {
    if (chunk_size == 0) chunk_size = 64 * 1024;
    std::string out(kInstream);
    out.reserve(out.size() + data.size() + 4 * (data.size() / chunk_size + 2));
    for (std::size_t off = 0; off < data.size(); off += chunk_size) {
        auto n = std::min(chunk_size, data.size() - off);
        auto h = be32(static_cast<std::uint32_t>(n));
        out.append(reinterpret_cast<const char*>(h.data()), h.size());
        out.append(data.substr(off, n));
    }
    out.append(4, '\0');
    return out;
}

ClamdClient::ClamdClient(ClamdOptions options) : options_(std::move(options)) {
    if (options_.chunk_size == 0 || options_.chunk_size > (1u << 30)) options_.chunk_size = 64 * 1024;
}

ClamdClient::~ClamdClient() = default;

std::string ClamdClient::exchange(std::string_view request, std::string_view data) const {
    Connection c;
    Exchange x(options_, c, false, request, request == kInstream ? &data : nullptr);
    return x.run();
}

std::unique_ptr<ClamdClient::Connection> ClamdClient::take_session() const {
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(mutex_);
    while (!idle_.empty()) {
        auto c = std::move(idle_.back());
        idle_.pop_back();
        if (now - c->idle_since < options_.session_idle) return c;
    }
    return nullptr;
}

void ClamdClient::keep_session(std::unique_ptr<Connection> c) const {
    c->idle_since = std::chrono::steady_clock::now();
    std::lock_guard lock(mutex_);
    if (idle_.size() < kMaxIdleSessions) idle_.push_back(std::move(c));
}

ScanResult ClamdClient::scan(std::string_view data) const {
    if (options_.session_idle.count() <= 0) return parse_reply(exchange(kInstream, data));
    // A kept session may have been closed by clamd since (its IdleTimeout, a restart):
    // then the scan, which changes nothing, runs again once on a new connection.
    if (auto kept = take_session()) {
        try {
            return scan_in_session(std::move(kept), data);
        } catch (const TemporaryError&) {
            std::lock_guard lock(mutex_);
            idle_.clear();  // kept from before the same break, most likely
        }
    }
    return scan_in_session(std::make_unique<Connection>(), data);
}

ScanResult ClamdClient::scan_in_session(std::unique_ptr<Connection> c, std::string_view data) const {
    Exchange x(options_, *c, true, kInstream, &data);
    auto result = parse_reply(x.run());
    // clamd ends a session after its size-limit reply.
    if (x.reusable() && result.verdict != Verdict::size_limit_exceeded) keep_session(std::move(c));
    return result;
}

bool ClamdClient::ping() const {
    return exchange(std::string_view("zPING", 6), {}) == "PONG";
}

std::string ClamdClient::version() const {
    auto v = exchange(std::string_view("zVERSION", 9), {});
    if (v.empty() || !printable(v)) throw TemporaryError("clamd: unexpected VERSION answer");
    return v;
}

}  // namespace pecd::av
