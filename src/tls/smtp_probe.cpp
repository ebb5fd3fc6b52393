// smtp_probe.cpp - what a receiving domain sees of a mail server's TLS (`pecctl tls-check`)
//
// See smtp_probe.hpp for the contract. The I/O uses Asio's asynchronous operations driven
// by io_context::run_for(), because synchronous Asio reads ignore SO_RCVTIMEO and a silent
// peer must not hang the check.
#include "tls/smtp_probe.hpp"

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include <cctype>

#include "core/error.hpp"
#include "core/strings.hpp"
#include "tls/certificate.hpp"

namespace pecd::tls {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

bool is_ip_literal(const std::string& s) {
    boost::system::error_code ec;
    asio::ip::make_address(s, ec);
    return !ec;
}

class Session {
public:
    Session(const ProbeOptions& o, ClientTls& client) : o_(o), client_(client), socket_(io_) {}

    // Runs one asynchronous operation to completion or timeout.
    template <class Start>
    boost::system::error_code step(Start start) {
        boost::system::error_code result = asio::error::timed_out;
        bool done = false;
        start([&](boost::system::error_code ec, auto&&...) {
            result = ec;
            done = true;
        });
        io_.restart();
        io_.run_for(o_.timeout);
        if (!done) {
            boost::system::error_code ignored;
            socket_.cancel(ignored);
            io_.restart();
            io_.run_for(std::chrono::seconds(1));
            return asio::error::timed_out;
        }
        return result;
    }

    std::string connect() {
        tcp::resolver resolver(io_);
        boost::system::error_code ec;
        auto endpoints = resolver.resolve(o_.host, std::to_string(o_.port), ec);
        if (ec) return "cannot resolve " + o_.host + ": " + ec.message();
        ec = step([&](auto h) { asio::async_connect(socket_, endpoints, h); });
        return ec ? "cannot connect to " + o_.host + ":" + std::to_string(o_.port) + ": " + ec.message() : "";
    }

    std::string handshake(const std::string& sni) {
        tls_.emplace(socket_, client_.context());
        client_.prepare(tls_->native_handle(), is_ip_literal(sni) ? "" : sni, {});
        auto ec = step([&](auto h) { tls_->async_handshake(asio::ssl::stream_base::client, h); });
        return ec ? ec.message() : "";
    }

    // Reads one SMTP reply (over TLS once started).
    std::optional<SmtpReply> read_reply(std::string& error) {
        for (int reads = 0; reads < 1000; ++reads) {
            std::size_t used = 0;
            try {
                if (auto r = parse_reply(buffer_, used)) {
                    buffer_.erase(0, used);
                    return r;
                }
            } catch (const ParseError& e) {
                error = std::string("not an SMTP reply: ") + e.what();
                return std::nullopt;
            }
            if (buffer_.size() > 65536) break;
            char chunk[4096];
            std::size_t got = 0;
            auto ec = step([&](auto h) {
                auto done = [&got, h](boost::system::error_code e, std::size_t n) mutable {
                    got = n;
                    h(e);
                };
                if (tls_)
                    tls_->async_read_some(asio::buffer(chunk), done);
                else
                    socket_.async_read_some(asio::buffer(chunk), done);
            });
            buffer_.append(chunk, got);
            if (ec && got == 0) {
                error = "reading reply: " + ec.message();
                return std::nullopt;
            }
        }
        error = "reply too long";
        return std::nullopt;
    }

    bool send(const std::string& line, std::string& error) {
        auto ec = step([&](auto h) {
            auto done = [h](boost::system::error_code e, std::size_t) mutable { h(e); };
            if (tls_)
                asio::async_write(*tls_, asio::buffer(line), done);
            else
                asio::async_write(socket_, asio::buffer(line), done);
        });
        if (ec) error = "sending " + line.substr(0, line.find(' ')) + ": " + ec.message();
        return !ec;
    }

    std::optional<SmtpReply> command(const std::string& line, std::string& error) {
        if (!send(line + "\r\n", error)) return std::nullopt;
        return read_reply(error);
    }

    SSL* ssl() { return tls_ ? tls_->native_handle() : nullptr; }
    bool pending_plaintext() const { return !buffer_.empty(); }

private:
    const ProbeOptions& o_;
    ClientTls& client_;
    asio::io_context io_;
    tcp::socket socket_;
    std::optional<asio::ssl::stream<tcp::socket&>> tls_;
    std::string buffer_;
};

std::string first_line(const SmtpReply& r) {
    return std::to_string(r.code) + (r.lines.empty() ? "" : " " + r.lines.front());
}

void record_tls(ProbeResult& r, const ProbeOptions& o, ClientTls& client, SSL* ssl) {
    std::string name = o.name.empty() ? o.host : o.name;
    r.verification = client.inspect(ssl, {name});
    r.chain = client.inspect_chain(ssl);
    if (X509* leaf = SSL_get0_peer_certificate(ssl)) {
        r.leaf = describe(leaf);
        r.days_to_expiry = days_until_expiry(leaf, std::chrono::system_clock::now());
        if (!r.banner_host.empty()) r.banner_name = match_certificate(leaf, {r.banner_host});
    }
}

bool starttls_dialogue(Session& s, ProbeResult& r, const ProbeOptions& o) {
    auto banner = s.read_reply(r.dialogue_error);
    if (!banner) return false;
    r.banner = first_line(*banner);
    r.banner_host = banner_host(*banner);
    if (banner->code != 220) {
        r.dialogue_error = "banner is not 220: " + r.banner;
        return false;
    }
    auto ehlo = s.command("EHLO " + o.ehlo_name, r.dialogue_error);
    if (!ehlo) return false;
    r.ehlo_ok = ehlo->code == 250;
    r.starttls_offered = r.ehlo_ok && ehlo_offers(*ehlo, "STARTTLS");
    if (!r.starttls_offered) return false;
    auto ready = s.command("STARTTLS", r.dialogue_error);
    if (!ready) return false;
    if (ready->code != 220) {
        r.handshake_error = "STARTTLS refused: " + first_line(*ready);
        return false;
    }
    if (s.pending_plaintext()) {
        r.handshake_error = "server sent data after 220 to STARTTLS (pipelining into TLS)";
        return false;
    }
    return true;
}

}  // namespace

std::optional<SmtpReply> parse_reply(std::string_view buffer, std::size_t& consumed) {
    SmtpReply reply;
    std::size_t pos = 0;
    for (std::size_t lines = 0; lines < 1000; ++lines) {
        auto eol = buffer.find('\n', pos);
        if (eol == std::string_view::npos) return std::nullopt;
        auto line = buffer.substr(pos, eol - pos);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.size() < 3 || !std::isdigit(static_cast<unsigned char>(line[0])) ||
            !std::isdigit(static_cast<unsigned char>(line[1])) ||
            !std::isdigit(static_cast<unsigned char>(line[2])) ||
            (line.size() > 3 && line[3] != ' ' && line[3] != '-'))
            throw ParseError("malformed reply line '" + std::string(line.substr(0, 80)) + "'", lines + 1);
        int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
        if (lines > 0 && code != reply.code)
            throw ParseError("reply code changed within a multi-line reply", lines + 1);
        reply.code = code;
        reply.lines.emplace_back(line.size() > 4 ? line.substr(4) : std::string_view{});
        pos = eol + 1;
        if (line.size() == 3 || line[3] == ' ') {
            consumed = pos;
            return reply;
        }
    }
    throw ParseError("reply has too many lines");
}

std::string banner_host(const SmtpReply& banner) {
    if (banner.lines.empty()) return {};
    auto text = trim(banner.lines.front());
    auto end = text.find(' ');
    return to_lower(text.substr(0, end));
}

bool ehlo_offers(const SmtpReply& ehlo, std::string_view keyword) {
    // The first line is the greeting; extensions follow, keyword first.
    for (std::size_t i = 1; i < ehlo.lines.size(); ++i) {
        auto word = trim(ehlo.lines[i]).substr(0, trim(ehlo.lines[i]).find(' '));
        if (iequals(word, keyword)) return true;
    }
    return false;
}

ProbeResult probe(const ProbeOptions& o) {
    ProbeResult r;
    ClientTlsSettings settings;
    settings.ca_file = o.ca_file;
    settings.reuse_sessions = false;
    ClientTls client(settings);
    Session s(o, client);
    r.connect_error = s.connect();
    r.connected = r.connect_error.empty();
    if (!r.connected) return r;
    std::string sni = o.name.empty() ? o.host : o.name;
    if (o.mode == ProbeMode::starttls && !starttls_dialogue(s, r, o)) return r;
    r.handshake_error = s.handshake(sni);
    r.handshake_ok = r.handshake_error.empty();
    if (!r.handshake_ok) return r;
    if (o.mode == ProbeMode::implicit) {
        auto banner = s.read_reply(r.dialogue_error);
        if (banner) {
            r.banner = first_line(*banner);
            r.banner_host = banner_host(*banner);
            auto ehlo = s.command("EHLO " + o.ehlo_name, r.dialogue_error);
            r.ehlo_ok = ehlo && ehlo->code == 250;
        }
    }
    record_tls(r, o, client, s.ssl());
    std::string ignored;
    s.command("QUIT", ignored);
    return r;
}

Target parse_target(std::string_view text, unsigned short default_port) {
    Target t;
    t.port = default_port;
    std::string_view host = trim(text), port;
    bool has_port = false;
    if (host.starts_with('[')) {
        auto close = host.find(']');
        if (close == std::string_view::npos)
            throw ParseError("missing ']' in '" + std::string(text) + "'", 0, "host");
        auto rest = host.substr(close + 1);
        host = host.substr(1, close - 1);
        if (!rest.empty()) {
            if (rest.front() != ':') throw ParseError("expected ':' after ']'", 0, "port");
            port = rest.substr(1);
            has_port = true;
        }
    } else if (std::count(host.begin(), host.end(), ':') == 1) {
        auto colon = host.find(':');
        port = host.substr(colon + 1);
        host = host.substr(0, colon);
        has_port = true;
    }
    if (host.empty()) throw ParseError("empty host in '" + std::string(text) + "'", 0, "host");
    if (has_port) {
        unsigned long n = 0;
        for (char ch : port) {
            if (ch < '0' || ch > '9' || n > 65535)
                throw ParseError("invalid port '" + std::string(port) + "'", 0, "port");
            n = n * 10 + static_cast<unsigned long>(ch - '0');
        }
        if (n == 0 || n > 65535) throw ParseError("invalid port '" + std::string(port) + "'", 0, "port");
        t.port = static_cast<unsigned short>(n);
    }
    t.host = std::string(host);
    return t;
}

std::string_view to_string(Verdict v) {
    switch (v) {
        case Verdict::ok:
            return "ok";
        case Verdict::warn:
            return "warn";
        case Verdict::fail:
            return "fail";
        case Verdict::skip:
            return "skip";
    }
    return "?";
}

namespace {

std::string joined(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return s;
}

Check name_check(const std::string& check, const NameMatch& m, const std::string& wanted,
                 const std::vector<std::string>& presented) {
    if (wanted.empty()) return {check, Verdict::skip, "no name to check"};
    if (m.matched)
        return {check, Verdict::ok,
                wanted + " matches " + m.presented + (m.from_common_name ? " (subject CN, no DNS SAN)" : "")};
    return {check, Verdict::fail, wanted + " not in certificate names [" + joined(presented) + "]"};
}

}  // namespace

std::vector<Check> evaluate(const ProbeOptions& o, const ProbeResult& r) {
    std::vector<Check> c;
    if (!r.connected) {
        c.push_back({"connect", Verdict::fail, r.connect_error});
        return c;
    }
    c.push_back({"connect", Verdict::ok, o.host + ":" + std::to_string(o.port)});
    bool plain = o.mode == ProbeMode::starttls;
    if (plain || !r.banner.empty()) {
        if (r.banner.empty())
            c.push_back({"banner", Verdict::fail, r.dialogue_error});
        else
            c.push_back({"banner", r.banner.starts_with("220") ? Verdict::ok : Verdict::fail, r.banner});
    }
    if (plain) {
        if (!r.ehlo_ok && r.handshake_error.empty() && !r.banner.empty())
            c.push_back(
                {"ehlo", Verdict::fail, r.dialogue_error.empty() ? "EHLO refused" : r.dialogue_error});
        c.push_back({"starttls", r.starttls_offered ? Verdict::ok : Verdict::fail,
                     r.starttls_offered ? "offered" : "not offered"});
        if (!r.starttls_offered) return c;
    }
    if (!r.handshake_ok) {
        c.push_back(
            {"handshake", Verdict::fail, r.handshake_error.empty() ? r.dialogue_error : r.handshake_error});
        return c;
    }
    const auto& v = r.verification;
    c.push_back({"handshake", Verdict::ok, v.protocol + " " + v.cipher});
    bool modern = v.protocol == "TLSv1.2" || v.protocol == "TLSv1.3";
    c.push_back({"protocol", modern ? Verdict::ok : Verdict::fail, v.protocol});
    c.push_back({"certificate", r.leaf ? Verdict::ok : Verdict::fail,
                 r.leaf ? r.leaf->subject + " (" + r.leaf->key_description + ")" : "no certificate"});
    std::string wanted = o.name.empty() ? o.host : o.name;
    c.push_back(name_check("name", v.name, wanted, v.certificate_names));
    if (r.banner_host.empty())
        c.push_back({"banner_name", Verdict::skip, "no host name in banner"});
    else
        c.push_back(name_check("banner_name", r.banner_name, r.banner_host, v.certificate_names));
    c.push_back({"chain_trusted", v.chain_ok ? Verdict::ok : Verdict::fail,
                 v.chain_ok ? "verified up to a trusted root" : v.chain_error});
    c.push_back({"chain_complete", r.chain.complete ? Verdict::ok : Verdict::fail,
                 r.chain.complete ? std::to_string(r.chain.sent_subjects.size()) + " certificate(s) sent"
                                  : r.chain.missing});
    Verdict expiry = r.days_to_expiry < 0                          ? Verdict::fail
                     : r.days_to_expiry < o.expiry_warning.count() ? Verdict::warn
                                                                   : Verdict::ok;
    c.push_back({"expiry", expiry,
                 r.days_to_expiry < 0 ? "expired " + std::to_string(-r.days_to_expiry) + " days ago"
                                      : std::to_string(r.days_to_expiry) + " days left"});
    return c;
}

PeerVerdict policy_outcome(const DestinationPolicy& p, std::string_view mx_host, std::string_view domain,
                           const ProbeResult& r, ProbeMode mode) {
    if (!r.connected) return {false, r.connect_error};
    auto start = decide_starttls(p.policy, mode == ProbeMode::implicit || r.starttls_offered);
    if (start.step == TlsStep::defer) return {false, start.reason};
    if (start.step == TlsStep::plain) return judge_peer(p.policy, PeerVerification{});
    if (!r.handshake_ok) {
        auto after = decide_after_handshake_failure(p.policy, r.handshake_error);
        return {after.step == TlsStep::plain, after.reason};
    }
    PeerVerification v = r.verification;
    v.reference_names = reference_names(p, mx_host, domain);
    v.name = r.leaf ? match_names(r.leaf->dns_names, r.leaf->common_name, v.reference_names) : NameMatch{};
    return judge_peer(p.policy, v);
}

int exit_status(const std::vector<Check>& checks) {
    for (const auto& c : checks)
        if (c.verdict == Verdict::fail) return 1;
    return 0;
}

}  // namespace pecd::tls
