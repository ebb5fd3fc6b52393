// index_test_support.hpp - helpers shared by the provider-index tests
//
// A temporary directory per test, running commands, a small PKI made with the openssl
// command-line tool (CA, provider signing certificates, an expired one, a foreign CA), and
// an LDIF writer for provider records modelled on RFC 6109 s.4.5.10. Hashes are taken from
// `openssl x509 -fingerprint -sha1` (upper-case, as RFC 6109's example), independently of
// the code under test.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "index/ldif.hpp"

namespace pecd::index::test {

namespace fs = std::filesystem;

struct TempDir {
    fs::path path;
    TempDir() {
        std::random_device rd;
        path = fs::temp_directory_path() / ("pecd-index-test-" + std::to_string(rd()) + std::to_string(rd()));
        fs::create_directories(path);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    fs::path operator/(const std::string& name) const { return path / name; }
};

struct CommandResult {
    int status = -1;
    std::string output;  // stdout and stderr together
};

inline CommandResult run_command(const std::string& command) {
    CommandResult r;
    FILE* p = popen((command + " 2>&1").c_str(), "r");
    if (!p) throw std::runtime_error("popen failed: " + command);
    char buf[4096];
    while (std::size_t n = fread(buf, 1, sizeof buf, p)) r.output.append(buf, n);
    int raw = pclose(p);
    r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
    return r;
}

inline void must(const std::string& command) {
    auto r = run_command(command);
    if (r.status != 0) throw std::runtime_error("command failed: " + command + "\n" + r.output);
}

inline void write_file(const fs::path& p, const std::string& data) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << data;
    if (!out) throw std::runtime_error("cannot write " + p.string());
}

inline std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

inline std::string quote(const fs::path& p) {
    return "'" + p.string() + "'";
}

struct TestCert {
    fs::path pem, key;
    std::string der;
    std::string sha1;  // upper-case hex, as openssl prints it
};

// A CA made with `openssl req -x509`; leaves issued with `openssl ca` so that validity
// dates (also past ones) can be chosen.
class TestCa {
public:
    TestCa(const fs::path& dir, const std::string& name) : dir_(dir / name) {
        fs::create_directories(dir_ / "newcerts");
        write_file(dir_ / "index.txt", "");
        write_file(dir_ / "serial", "1000\n");
        write_file(dir_ / "ca.cnf", "[ca]\ndefault_ca = d\n[d]\ndir = " + dir_.string() +
                                        "\ndatabase = $dir/index.txt\nnew_certs_dir = $dir/newcerts\n"
                                        "certificate = $dir/ca.pem\nprivate_key = $dir/ca.key\n"
                                        "serial = $dir/serial\ndefault_md = sha256\npolicy = p\n"
                                        "unique_subject = no\ncopy_extensions = none\n"
                                        "[p]\ncommonName = supplied\n"
                                        "[leaf]\nkeyUsage = critical,digitalSignature\n"
                                        "subjectKeyIdentifier = hash\n"
                                        "authorityKeyIdentifier = keyid\n"
                                        "subjectAltName = $ENV::PECD_SAN\n");
        must(
            "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 -subj "
            "'/C=IT/O=" +
            name + "/CN=" + name + " CA' -keyout " + quote(dir_ / "ca.key") + " -out " +
            quote(dir_ / "ca.pem"));
    }
    fs::path pem() const { return dir_ / "ca.pem"; }

    // startdate/enddate: "YYYYMMDDHHMMSSZ"; empty = now .. now + 365 days.
    // san: "email:a@b" / "IP:127.0.0.1,DNS:localhost"; a bare address means email:.
    TestCert issue(const std::string& id, const std::string& cn, const std::string& san,
                   const std::string& startdate = {}, const std::string& enddate = {}) const {
        TestCert c;
        c.pem = dir_ / (id + ".pem");
        c.key = dir_ / (id + ".key");
        auto csr = dir_ / (id + ".csr");
        must("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj '/C=IT/O=" + cn +
             "/CN=" + cn + "' -keyout " + quote(c.key) + " -out " + quote(csr));
        std::string dates =
            startdate.empty() ? " -days 365" : " -startdate " + startdate + " -enddate " + enddate;
        std::string ext = san.find(':') == std::string::npos ? "email:" + san : san;
        must("PECD_SAN='" + ext + "' openssl ca -batch -notext -config " + quote(dir_ / "ca.cnf") +
             " -extensions leaf" + dates + " -in " + quote(csr) + " -out " + quote(c.pem));
        must("openssl x509 -in " + quote(c.pem) + " -outform DER -out " + quote(dir_ / (id + ".der")));
        c.der = read_file(dir_ / (id + ".der"));
        auto fp = run_command("openssl x509 -in " + quote(c.pem) + " -noout -fingerprint -sha1");
        auto eq = fp.output.find('=');
        for (char ch : fp.output.substr(eq + 1))
            if (std::isxdigit(static_cast<unsigned char>(ch))) c.sha1 += ch;
        if (c.sha1.size() != 40) throw std::runtime_error("unexpected fingerprint output: " + fp.output);
        return c;
    }

private:
    fs::path dir_;
};

// The o=postacert root entry, as in RFC 6109 s.4.5.10.
inline std::string root_ldif(const std::string& url = "https://igpec.rupa.example.com/igpec.ldif.p7m") {
    return "dn: o=postacert\nobjectClass: top\nobjectClass: organization\nobjectClass: "
           "LDIFLocationURLObject\n"
           "o: postacert\nLDIFLocationURL: " +
           url + "\n\n";
}

struct RecordSpec {
    std::string name;
    std::string unit;  // empty: main record
    std::string mail_receipt;
    std::vector<std::string> domains;
    std::vector<const TestCert*> certs;
    std::string url;
};

inline std::string provider_ldif(const RecordSpec& r) {
    std::string dn = "providerName=" + r.name + ",o=postacert";
    if (!r.unit.empty()) dn = "providerUnit=" + r.unit + "," + dn;
    std::string s = "dn: " + dn + "\nobjectClass: top\nobjectClass: provider\n";
    if (r.unit.empty() && !r.url.empty()) s += "objectClass: LDIFLocationURLObject\n";
    s += "providerName: " + r.name + "\n";
    if (!r.unit.empty()) s += "providerUnit: " + r.unit + "\n";
    s += "mailReceipt: " + r.mail_receipt + "\n";
    for (auto& d : r.domains) s += "managedDomains: " + d + "\n";
    for (auto* c : r.certs) {
        s += "providerCertificateHash: " + c->sha1 + "\n";
        s += write_ldif_line("providerCertificate;binary", c->der);
    }
    if (r.unit.empty() && !r.url.empty()) s += "LDIFLocationURL: " + r.url + "\n";
    return s + "\n";
}

// Signs with the openssl tool (an independent CMS producer): attached, DER or PEM.
inline void openssl_sign(const fs::path& in, const TestCert& signer, const fs::path& out, bool pem = false) {
    must("openssl cms -sign -binary -nodetach -md sha256 -in " + quote(in) + " -signer " + quote(signer.pem) +
         " -inkey " + quote(signer.key) + " -outform " + (pem ? "PEM" : "DER") + " -out " + quote(out));
}

// A child process (argv[0] looked up in PATH), stopped with SIGTERM (then SIGKILL) when
// destroyed; every wait is bounded.
class Process {
public:
    explicit Process(std::vector<std::string> argv, const fs::path& output = "/dev/null") {
        pid_ = ::fork();
        if (pid_ < 0) throw std::runtime_error("fork failed");
        if (pid_ == 0) {
            int fd = ::open(output.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (fd >= 0) {
                ::dup2(fd, 1);
                ::dup2(fd, 2);
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
    pid_t pid() const { return pid_; }
    bool running() {
        if (pid_ <= 0) return false;
        int st = 0;
        if (::waitpid(pid_, &st, WNOHANG) == pid_) {
            pid_ = -1;
            return false;
        }
        return true;
    }
    void stop() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGTERM);
        for (int i = 0; i < 100; ++i) {
            int st = 0;
            if (::waitpid(pid_, &st, WNOHANG) == pid_) {
                pid_ = -1;
                return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
        pid_ = -1;
    }

private:
    pid_t pid_ = -1;
};

// A free TCP port on 127.0.0.1 (bind to 0, read it back, close).
inline int free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
        throw std::runtime_error("cannot find a free port");
    ::close(fd);
    return ntohs(a.sin_port);
}

// Polls until pred() or the deadline; bounded.
template <class Pred>
bool wait_until(Pred pred, std::chrono::milliseconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
        if (pred()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return pred();
}

}  // namespace pecd::index::test
