// submit_load.cpp - the bulk submitters of the PEC flow benchmark (run_pec_flow_bench.py)
//
//   pecd_bench_submit --port P --ca TLS_CA.pem --user U --password W --from ADDR --to ADDR
//                     [--sessions 8] [--messages 600] [--rate R] [--server-name NAME]
//
// Why it exists: the benchmark runs the two providers, clamd and its load generator on the
// same two cores, so every millisecond the generator spends is taken from the servers it
// measures. The Python submitters (smtplib over ssl) cost 0.4-0.5 ms of CPU per message;
// this program does the same SMTP conversation for a small fraction of that.
//
// What it does is what the Python submitters did: SESSIONS connections to 127.0.0.1:P, each
// EHLO, STARTTLS (TLS 1.2 or later, the server's chain verified against --ca; its name too
// when --server-name is given), EHLO, AUTH PLAIN; then MAIL FROM (with SIZE= when the server
// offers SIZE, as smtplib does), RCPT TO, DATA and the message, one command at a time (no
// pipelining), for MESSAGES messages in all (MESSAGES / SESSIONS each, one more for the
// first MESSAGES % SESSIONS sessions), and QUIT. With --rate R, message i of session n is
// due at go + (i * SESSIONS + n) / R seconds; without it the sessions send back to back.
//
// Start protocol with the driving script: once every session is authenticated (or has
// failed) it prints "ready"; it sends nothing until a line arrives on stdin ("go"). At the
// end it prints one JSON line {"sent", "errors" (the first three), "seconds" (go to the last
// reply)} and waits for one more stdin line before exiting, so that the script can read
// this process's CPU time while it is still alive. Exit status 0 without errors, 1 with.
// Replies are read, EHLO keywords found and the body dot-stuffed by pecd's own SMTP client
// code (smtp/client.hpp).
// Blocking OpenSSL calls on a socket with SO_RCVTIMEO/SO_SNDTIMEO rather than Asio's
// synchronous calls (as pecd_api_load uses): those wait without limit, and a stuck server
// must end a session with an error, not hang the benchmark.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iostream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "smtp/client.hpp"

namespace {

namespace smtp = pecd::smtp;

using Clock = std::chrono::steady_clock;

constexpr int kIoTimeoutSeconds = 120;
constexpr std::size_t kErrorsReported = 3;

struct Options {
    int port = 0;
    std::string ca, server_name, user, password, from, to;
    int sessions = 8;
    long messages = 600;
    double rate = 0;  // submissions/s over all sessions; 0 = as fast as the server answers
};

// Options through CLI11, as pecctl reads its own.
Options parse(int argc, char** argv) {
    Options o;
    CLI::App app{"bulk PEC submitters for bench/pec/run_pec_flow_bench.py"};
    app.add_option("--port", o.port, "submission port on 127.0.0.1")->required()->check(CLI::PositiveNumber);
    app.add_option("--ca", o.ca, "CA file for the server's certificate")->required();
    app.add_option("--server-name", o.server_name, "name checked in the server's certificate");
    app.add_option("--user", o.user, "AUTH PLAIN user")->required();
    app.add_option("--password", o.password, "AUTH PLAIN password")->required();
    app.add_option("--from", o.from, "sender address")->required();
    app.add_option("--to", o.to, "recipient address")->required();
    app.add_option("--sessions", o.sessions, "concurrent SMTP sessions")->check(CLI::Range(1, 1 << 16));
    app.add_option("--messages", o.messages, "messages in all")->check(CLI::NonNegativeNumber);
    app.add_option("--rate", o.rate, "submissions/s over all sessions; 0 = as fast as answered")
        ->check(CLI::NonNegativeNumber);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        std::exit(app.exit(e));  // --help, or the error on stderr
    }
    return o;
}

// --- RAII -------------------------------------------------------------------------------

class Fd {
public:
    explicit Fd(int fd) : fd_(fd) {}
    Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    Fd& operator=(Fd&&) = delete;
    Fd(const Fd&) = delete;
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    int get() const { return fd_; }

private:
    int fd_;
};

struct SslFree {
    void operator()(SSL* s) const { SSL_free(s); }
    void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
using SslPtr = std::unique_ptr<SSL, SslFree>;
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslFree>;

std::string openssl_errors() {
    std::string out;
    char buf[256];
    while (unsigned long e = ERR_get_error()) {
        ERR_error_string_n(e, buf, sizeof buf);
        if (!out.empty()) out += "; ";
        out += buf;
    }
    return out.empty() ? "unknown OpenSSL error" : out;
}

SslCtxPtr make_context(const std::string& ca_file) {
    SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
    if (!ctx) throw std::runtime_error("SSL_CTX_new: " + openssl_errors());
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
    if (SSL_CTX_load_verify_locations(ctx.get(), ca_file.c_str(), nullptr) != 1)
        throw std::runtime_error("cannot load CA " + ca_file + ": " + openssl_errors());
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    return ctx;
}

// --- the message ------------------------------------------------------------------------

// The body of run_pec_flow_bench.py: ("Testo del messaggio di prova.\r\n" * 160)[:5000].
std::string make_body() {
    std::string body;
    for (int i = 0; i < 160; ++i) body += "Testo del messaggio di prova.\r\n";
    body.resize(std::min<std::size_t>(body.size(), 5000));
    return body;
}

std::string rfc5322_now() {
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);  // the "C" locale: English
    return buf;
}

// The message of run_pec_flow_bench.py's message(): subject and Message-ID carico-<n>-<i>.
std::string make_message(const Options& o, const std::string& body, int session, long index) {
    std::string subject = "carico-" + std::to_string(session) + "-" + std::to_string(index);
    std::string m;
    m.reserve(body.size() + 512);
    m += "Date: " + rfc5322_now() + "\r\n";
    m += "From: " + o.from + "\r\n";
    m += "To: " + o.to + "\r\n";
    m += "Subject: " + subject + "\r\n";
    m += "Message-ID: <" + subject + "@client.test>\r\n";
    m += "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n";
    m += body;
    return m;
}

std::string base64(std::string_view in) {
    std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

// --- one SMTP session -------------------------------------------------------------------

Fd connect_loopback(int port) {
    Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (fd.get() < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    timeval tv{kIoTimeoutSeconds, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
        throw std::runtime_error("connect to 127.0.0.1:" + std::to_string(port) + ": " +
                                 std::strerror(errno));
    return fd;
}

class SmtpSession {
public:
    // Connected, upgraded to TLS and authenticated.
    SmtpSession(const Options& o, SSL_CTX* ctx) : fd_(connect_loopback(o.port)) {
        expect(read_reply(), 220, "greeting");
        expect(command("EHLO client.test"), 250, "EHLO");
        expect(command("STARTTLS"), 220, "STARTTLS");
        if (replies_.has_partial()) throw std::runtime_error("data after the STARTTLS reply");
        start_tls(ctx, o.server_name);
        smtp::Reply ehlo = command("EHLO client.test");
        expect(ehlo, 250, "EHLO after STARTTLS");
        size_offered_ = smtp::parse_extensions(ehlo).has_size;
        std::string plain = std::string(1, '\0') + o.user + '\0' + o.password;
        expect(command("AUTH PLAIN " + base64(plain)), 235, "AUTH PLAIN");
    }

    void send_mail(const Options& o, const std::string& message) {
        std::string mail = "MAIL FROM:<" + o.from + ">";
        if (size_offered_) mail += " SIZE=" + std::to_string(message.size());
        expect(command(mail), 250, "MAIL FROM");
        expect(command("RCPT TO:<" + o.to + ">"), 250, "RCPT TO");
        expect(command("DATA"), 354, "DATA");
        smtp::DotStuffer stuffer;
        write_all(stuffer.encode(message) + stuffer.finish());
        expect(read_reply(), 250, "end of DATA");
    }

    void quit() { expect(command("QUIT"), 221, "QUIT"); }

private:
    static void expect(const smtp::Reply& r, int code, std::string_view what) {
        if (r.code != code) throw std::runtime_error(std::string(what) + ": " + r.summary());
    }

    void start_tls(SSL_CTX* ctx, const std::string& server_name) {
        ssl_.reset(SSL_new(ctx));
        if (!ssl_ || SSL_set_fd(ssl_.get(), fd_.get()) != 1)
            throw std::runtime_error("SSL_new: " + openssl_errors());
        if (!server_name.empty() && (SSL_set_tlsext_host_name(ssl_.get(), server_name.c_str()) != 1 ||
                                     SSL_set1_host(ssl_.get(), server_name.c_str()) != 1))
            throw std::runtime_error("server name: " + openssl_errors());
        int r = SSL_connect(ssl_.get());
        if (r != 1) {
            long verify = SSL_get_verify_result(ssl_.get());
            std::string why = tls_error(r, "TLS handshake");
            if (verify != X509_V_OK) why += " (" + std::string(X509_verify_cert_error_string(verify)) + ")";
            throw std::runtime_error(why);
        }
    }

    std::string tls_error(int ret, std::string_view what) const {
        int e = SSL_get_error(ssl_.get(), ret);
        std::string s(what);
        if (e == SSL_ERROR_ZERO_RETURN) return s + ": connection closed";
        if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return s + ": timed out";
            return s + ": " + (errno ? std::strerror(errno) : "connection closed");
        }
        return s + ": " + openssl_errors();
    }

    smtp::Reply command(std::string_view line) {
        std::string out(line);
        out += "\r\n";
        write_all(out);
        return read_reply();
    }

    void write_all(std::string_view data) {
        while (!data.empty()) {
            std::size_t n = ssl_ ? write_tls(data) : write_plain(data);
            data.remove_prefix(n);
        }
    }

    std::size_t write_tls(std::string_view data) {
        std::size_t n = 0;
        int r = SSL_write_ex(ssl_.get(), data.data(), data.size(), &n);
        if (r != 1) throw std::runtime_error(tls_error(r, "write"));
        return n;
    }

    std::size_t write_plain(std::string_view data) {
        ssize_t n = ::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL);
        if (n < 0) throw std::runtime_error(std::string("write: ") + std::strerror(errno));
        return static_cast<std::size_t>(n);
    }

    void read_more() {
        char buf[4096];
        std::size_t n = 0;
        if (ssl_) {
            int r = SSL_read_ex(ssl_.get(), buf, sizeof buf, &n);
            if (r != 1) throw std::runtime_error(tls_error(r, "read"));
        } else {
            ssize_t got = ::recv(fd_.get(), buf, sizeof buf, 0);
            if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                throw std::runtime_error("read: timed out");
            if (got < 0) throw std::runtime_error(std::string("read: ") + std::strerror(errno));
            if (got == 0) throw std::runtime_error("read: connection closed");
            n = static_cast<std::size_t>(got);
        }
        replies_.feed(std::string_view(buf, n));
    }

    smtp::Reply read_reply() {
        for (;;) {
            if (auto r = replies_.next()) return *r;
            read_more();
        }
    }

    Fd fd_;
    SslPtr ssl_;
    smtp::ReplyParser replies_;
    bool size_offered_ = false;
};

// --- coordination -----------------------------------------------------------------------

// Every session arrives (authenticated or failed); then the main thread opens the gate
// when the go line comes, or closes it for good when stdin ends first.
class Gate {
public:
    explicit Gate(int sessions) : pending_(sessions) {}

    void arrive() {
        std::lock_guard lock(m_);
        if (--pending_ == 0) cv_.notify_all();
    }

    void wait_all() {
        std::unique_lock lock(m_);
        cv_.wait(lock, [&] { return pending_ == 0; });
    }

    Clock::time_point open(bool go) {
        std::lock_guard lock(m_);
        opened_ = true;
        go_ = go;
        at_ = Clock::now();
        cv_.notify_all();
        return at_;
    }

    // The go time, or nothing when the sessions must not send.
    std::optional<Clock::time_point> wait_open() {
        std::unique_lock lock(m_);
        cv_.wait(lock, [&] { return opened_; });
        return go_ ? std::optional(at_) : std::nullopt;
    }

private:
    std::mutex m_;
    std::condition_variable cv_;
    int pending_;
    bool opened_ = false, go_ = false;
    Clock::time_point at_;
};

class Results {
public:
    void add(long sent, std::optional<Clock::time_point> last_reply) {
        std::lock_guard lock(m_);
        sent_ += sent;
        if (last_reply && (!last_reply_ || *last_reply > *last_reply_)) last_reply_ = last_reply;
    }

    void error(std::string e) {
        std::lock_guard lock(m_);
        errors_.push_back(std::move(e));
    }

    bool ok() {
        std::lock_guard lock(m_);
        return errors_.empty();
    }

    nlohmann::json report(Clock::time_point go) {
        std::lock_guard lock(m_);
        double seconds = last_reply_ ? std::chrono::duration<double>(*last_reply_ - go).count() : 0.0;
        std::vector<std::string> first(
            errors_.begin(), errors_.begin() + static_cast<long>(std::min(errors_.size(), kErrorsReported)));
        return {{"sent", sent_}, {"errors", first}, {"seconds", seconds}};
    }

private:
    std::mutex m_;
    long sent_ = 0;
    std::optional<Clock::time_point> last_reply_;
    std::vector<std::string> errors_;
};

long share_of(const Options& o, int session) {
    return o.messages / o.sessions + (session < o.messages % o.sessions ? 1 : 0);
}

Clock::time_point due(const Options& o, Clock::time_point go, int session, long index) {
    double at = static_cast<double>(index * o.sessions + session) / o.rate;
    return go + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(at));
}

void run_session(const Options& o, SSL_CTX* ctx, const std::string& body, int n, Gate& gate,
                 Results& results) {
    std::optional<SmtpSession> session;
    try {
        session.emplace(o, ctx);
    } catch (const std::exception& e) {
        results.error("session " + std::to_string(n) + ": " + e.what());
    }
    gate.arrive();
    auto go = gate.wait_open();
    if (!session || !go) return;
    long sent = 0;
    std::optional<Clock::time_point> last_reply;
    try {
        for (long i = 0, count = share_of(o, n); i < count; ++i) {
            if (o.rate > 0) std::this_thread::sleep_until(due(o, *go, n, i));
            session->send_mail(o, make_message(o, body, n, i));
            last_reply = Clock::now();
            ++sent;
        }
        session->quit();
    } catch (const std::exception& e) {
        results.error("session " + std::to_string(n) + ": " + e.what());
    }
    results.add(sent, last_reply);
}

}  // namespace

int main(int argc, char** argv) {
    std::signal(SIGPIPE, SIG_IGN);  // a peer that closes shows as a write error, not a kill
    try {
        Options o = parse(argc, argv);
        SslCtxPtr ctx = make_context(o.ca);
        const std::string body = make_body();
        Gate gate(o.sessions);
        Results results;
        std::vector<std::thread> threads;
        for (int n = 0; n < o.sessions; ++n)
            threads.emplace_back([&, n] { run_session(o, ctx.get(), body, n, gate, results); });
        gate.wait_all();
        std::cout << "ready" << std::endl;
        std::string line;
        bool go = static_cast<bool>(std::getline(std::cin, line));
        if (!go) results.error("stdin ended before the go line");
        Clock::time_point go_at = gate.open(go);
        for (auto& t : threads) t.join();
        std::cout << results.report(go_at).dump() << std::endl;
        std::getline(std::cin, line);  // the script reads this process's CPU time before it ends
        return results.ok() ? 0 : 1;
    } catch (const std::exception& e) {
        std::cerr << "pecd_bench_submit: " << e.what() << "\n";
        return 2;
    }
}
