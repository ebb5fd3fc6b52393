// tls_test_support.hpp - helpers shared by the TLS tests: temporary directories, a small
// PKI written to files, a loopback TLS server on Asio, and running external programs.
//
// Everything binds to 127.0.0.1 on ports chosen by the kernel and lives in a fresh
// directory removed at the end; every wait is bounded.
#pragma once

#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <future>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/fs.hpp"
#include "tls/certificate.hpp"
#include "tls/server_tls.hpp"

namespace pecd::tls::test {

namespace asio = boost::asio;
using asio::ip::tcp;

class TempDir {
public:
    TempDir() {
        std::random_device rd;
        path_ = std::filesystem::temp_directory_path() /
                ("pecd-tls-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
        std::filesystem::create_directories(path_);
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path operator/(const std::string& n) const { return path_ / n; }

private:
    std::filesystem::path path_;
};

struct Issued {
    X509Ptr cert;
    KeyPtr key;
};

inline Issued make_ca(const std::string& cn, X509* issuer = nullptr, EVP_PKEY* issuer_key = nullptr) {
    Issued out;
    out.key = generate_key(KeyType::ec_p256);
    CertificateSpec spec;
    spec.common_name = cn;
    spec.usage = Usage::ca;
    out.cert = issue_certificate(spec, out.key.get(), issuer, issuer ? issuer_key : out.key.get(),
                                 std::chrono::system_clock::now());
    return out;
}

inline Issued make_leaf(const std::string& cn, std::vector<std::string> dns, const Issued& issuer,
                        Usage usage = Usage::server, TimePoint now = std::chrono::system_clock::now(),
                        std::chrono::days validity = std::chrono::days(90), KeyType type = KeyType::ec_p256) {
    Issued out;
    out.key = generate_key(type);
    CertificateSpec spec;
    spec.common_name = cn;
    spec.dns_names = std::move(dns);
    spec.usage = usage;
    spec.validity = validity;
    out.cert = issue_certificate(spec, out.key.get(), issuer.cert.get(), issuer.key.get(), now);
    return out;
}

inline void write_pair(const std::filesystem::path& cert_path, const std::filesystem::path& key_path,
                       const Issued& leaf, std::vector<X509*> chain = {}) {
    std::string pem = to_pem(leaf.cert.get());
    for (X509* c : chain) pem += to_pem(c);
    fs::write_file_durable(cert_path, pem);
    fs::write_file_durable(key_path, private_key_to_pem(leaf.key.get()), 0600);
}

// Runs a shell command, returns exit status and stdout+stderr.
struct CommandResult {
    int status = -1;
    std::string output;
};
inline CommandResult run_command(const std::string& cmd) {
    CommandResult r;
    FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
    if (!p) return r;
    char buf[4096];
    while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) r.output.append(buf, n);
    int st = ::pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

// A background process started with fork/exec, killed (SIGTERM then SIGKILL) on destruction.
class Process {
public:
    explicit Process(std::vector<std::string> argv, const std::filesystem::path& log = {}) {
        pid_ = ::fork();
        if (pid_ == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGTERM);  // no orphan if the test crashes
            if (!log.empty()) {
                FILE* f = std::fopen(log.c_str(), "w");
                if (f) {
                    ::dup2(fileno(f), 1);
                    ::dup2(fileno(f), 2);
                }
            }
            std::vector<char*> args;
            for (auto& a : argv) args.push_back(a.data());
            args.push_back(nullptr);
            ::execvp(args[0], args.data());
            ::_exit(127);
        }
    }
    ~Process() { stop(); }
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;
    void stop() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGTERM);
        for (int i = 0; i < 50; ++i) {
            if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
                pid_ = -1;
                return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
        pid_ = -1;
    }
    bool running() const { return pid_ > 0 && ::waitpid(pid_, nullptr, WNOHANG) == 0; }

private:
    pid_t pid_ = -1;
};

inline unsigned short free_port() {
    asio::io_context io;
    tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    return a.local_endpoint().port();
}

// True once something accepts TCP connections on 127.0.0.1:port (bounded wait).
inline bool wait_for_port(unsigned short port, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
        asio::io_context io;
        tcp::socket s(io);
        boost::system::error_code ec;
        s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
        if (!ec) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
}

// Accepts connections one at a time, handshakes with the current context, says "ok", and
// after it the subject CN of the client certificate when one was presented.
class LoopbackServer {
public:
    explicit LoopbackServer(ServerTls& tls)
        : tls_(tls), acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
        port_ = acceptor_.local_endpoint().port();
        thread_ = std::thread([this] { run(); });
    }
    ~LoopbackServer() {
        stopping_ = true;
        boost::system::error_code ec;
        tcp::socket poke(io_);
        poke.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_), ec);
        thread_.join();
    }
    unsigned short port() const { return port_; }

private:
    void run() {
        while (!stopping_) {
            tcp::socket sock(io_);
            boost::system::error_code ec;
            acceptor_.accept(sock, ec);
            if (ec || stopping_) break;
            timeval tv{5, 0};
            setsockopt(sock.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
            auto ctx = tls_.current();
            asio::ssl::stream<tcp::socket&> stream(sock, *ctx);
            stream.handshake(asio::ssl::stream_base::server, ec);
            if (!ec) asio::write(stream, asio::buffer(greeting(stream.native_handle())), ec);
            sock.close(ec);
        }
    }
    static std::string greeting(SSL* ssl) {
        X509* client = SSL_get0_peer_certificate(ssl);
        return client ? "ok " + describe(client).common_name + "\n" : "ok\n";
    }
    ServerTls& tls_;
    asio::io_context io_;
    tcp::acceptor acceptor_;
    unsigned short port_ = 0;
    std::atomic<bool> stopping_{false};
    std::thread thread_;
};

}  // namespace pecd::tls::test
