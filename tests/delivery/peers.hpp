// peers.hpp - real mail peers for the delivery tests, started on 127.0.0.1 in temporary
// directories: smtp-sink (Postfix's test server), Dovecot's LMTP server, a Postfix smtpd
// with STARTTLS relaying to smtp-sink. Each stops with its object.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/fs.hpp"

namespace pecd::test {

inline std::string run(const std::string& cmd, int* status = nullptr) {
    std::string out;
    FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
    if (!p) return "popen failed";
    std::array<char, 4096> buf{};
    std::size_t n;
    while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
    int st = ::pclose(p);
    if (status) *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return out;
}

inline unsigned short free_port() {
    int s = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(s);
    return ntohs(a.sin_port);
}

inline bool port_open(unsigned short port, const std::string& address = "127.0.0.1") {
    int s = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    ::inet_pton(AF_INET, address.c_str(), &a.sin_addr);
    bool ok = ::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(s);
    return ok;
}

inline bool wait_for_port(unsigned short port, std::chrono::milliseconds limit = std::chrono::seconds(15),
                          const std::string& address = "127.0.0.1") {
    auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
        if (port_open(port, address)) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
}

// A child process, killed (SIGTERM, then SIGKILL) when the object goes.
class Process {
public:
    Process() = default;
    explicit Process(const std::vector<std::string>& args, const std::filesystem::path& log = {}) {
        pid_ = ::fork();
        if (pid_ == 0) {
            if (!log.empty()) {
                FILE* f = std::fopen(log.c_str(), "a");
                if (f) {
                    ::dup2(::fileno(f), 1);
                    ::dup2(::fileno(f), 2);
                }
            }
            std::vector<char*> argv;
            for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
            argv.push_back(nullptr);
            ::execvp(argv[0], argv.data());
            ::_exit(127);
        }
    }
    Process(Process&& o) noexcept : pid_(std::exchange(o.pid_, -1)) {}
    Process& operator=(Process&& o) noexcept {
        stop();
        pid_ = std::exchange(o.pid_, -1);
        return *this;
    }
    ~Process() { stop(); }
    void stop() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGTERM);
        for (int i = 0; i < 100; ++i) {
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
    pid_t pid() const { return pid_; }

private:
    pid_t pid_ = -1;
};

inline void give_to_postfix(const std::filesystem::path& p) {
    if (passwd* pw = ::getpwnam("postfix")) {
        if (::chown(p.c_str(), pw->pw_uid, pw->pw_gid) != 0) std::perror("chown");
    }
}

// smtp-sink on address:port (any 127.x.y.z) dumping each message into dump_dir; extra
// flags as given.
inline Process start_smtp_sink(unsigned short port, const std::filesystem::path& dump_dir,
                               const std::vector<std::string>& flags = {},
                               const std::string& address = "127.0.0.1") {
    std::filesystem::create_directories(dump_dir);
    give_to_postfix(dump_dir);
    std::vector<std::string> args{"/usr/sbin/smtp-sink", "-u", "postfix", "-d",
                                  (dump_dir / "%H%M%S.").string()};
    args.insert(args.end(), flags.begin(), flags.end());
    args.push_back(address + ":" + std::to_string(port));
    args.push_back("100");
    Process p(args, dump_dir.parent_path() / ("smtp-sink-" + address + "-" + std::to_string(port) + ".log"));
    wait_for_port(port, std::chrono::seconds(15), address);
    return p;
}

inline std::vector<std::string> dumped_messages(const std::filesystem::path& dump_dir) {
    std::vector<std::string> out;
    std::error_code ec;
    for (auto& e : std::filesystem::directory_iterator(dump_dir, ec)) out.push_back(fs::read_file(e.path()));
    return out;
}

// Dovecot with only the LMTP service, on 127.0.0.1:port, maildirs under dir/mail, users
// from a passwd-file.
class Dovecot {
public:
    Dovecot(const std::filesystem::path& dir, const std::vector<std::string>& users) : dir_(dir) {
        port_ = free_port();
        std::filesystem::create_directories(dir / "run");
        std::filesystem::create_directories(dir / "mail");
        auto* pw = ::getpwnam("dovenull");
        auto* owner = ::getpwnam("nobody");
        std::string uid = owner ? std::to_string(owner->pw_uid) : "65534";
        std::string gid = owner ? std::to_string(owner->pw_gid) : "65534";
        {
            std::ofstream users_file(dir / "users");
            for (const auto& u : users)
                users_file << u << ":{PLAIN}unused:" << uid << ":" << gid
                           << "::" << (dir / "mail" / u).string() << "::\n";
        }
        if (owner) {
            if (::chown((dir / "mail").c_str(), owner->pw_uid, owner->pw_gid) != 0) std::perror("chown");
        }
        (void)pw;
        std::ofstream conf(dir / "dovecot.conf");
        conf << "protocols = lmtp\n"
             << "base_dir = " << (dir / "run").string() << "\n"
             << "state_dir = " << (dir / "run").string() << "\n"
             << "log_path = " << (dir / "dovecot.log").string() << "\n"
             << "info_log_path = " << (dir / "dovecot.log").string() << "\n"
             << "ssl = no\nlisten = 127.0.0.1\n"
             << "default_internal_user = nobody\ndefault_login_user = nobody\ndefault_internal_group = "
                "nogroup\n"
             << "mail_location = maildir:~/Maildir\n"
             << "passdb {\n  driver = passwd-file\n  args = " << (dir / "users").string() << "\n}\n"
             << "userdb {\n  driver = passwd-file\n  args = " << (dir / "users").string() << "\n}\n"
             << "service lmtp {\n  inet_listener lmtp {\n    address = 127.0.0.1\n    port = " << port_
             << "\n  }\n  unix_listener lmtp {\n    mode = 0666\n  }\n}\n"
             << "service anvil {\n  chroot =\n}\nservice stats {\n  chroot =\n}\n"
             << "service log {\n  chroot =\n}\n"
             << "lmtp_save_to_detail_mailbox = no\n";
        conf.close();
        process_ =
            Process({"/usr/sbin/dovecot", "-F", "-c", (dir / "dovecot.conf").string()}, dir / "dovecot.out");
        ok_ = wait_for_port(port_);
    }
    bool ok() const { return ok_; }
    unsigned short port() const { return port_; }
    std::string log() const {
        std::string s;
        for (auto f : {"dovecot.log", "dovecot.out"})
            if (std::filesystem::exists(dir_ / f)) s += fs::read_file(dir_ / f);
        return s;
    }
    // Bytes of every message in the user's maildir (new/ and cur/).
    std::vector<std::string> messages(const std::string& user) const {
        std::vector<std::string> out;
        for (auto sub : {"new", "cur"}) {
            std::error_code ec;
            for (auto& e : std::filesystem::directory_iterator(dir_ / "mail" / user / "Maildir" / sub, ec))
                out.push_back(fs::read_file(e.path()));
        }
        return out;
    }

private:
    std::filesystem::path dir_;
    unsigned short port_ = 0;
    Process process_;
    bool ok_ = false;
};

}  // namespace pecd::test

namespace pecd::test {

// Adds dir to alternate_config_directories in /etc/postfix/main.cf (a Postfix started
// with -c DIR requires it), keeping what is there.
inline void allow_postfix_config_dir(const std::filesystem::path& dir) {
    const std::filesystem::path main_cf = "/etc/postfix/main.cf";
    std::string text = std::filesystem::exists(main_cf) ? fs::read_file(main_cf) : std::string();
    if (text.find(dir.string()) != std::string::npos) return;
    std::istringstream in(text);
    std::string line, out;
    bool found = false;
    while (std::getline(in, line)) {
        out += line + "\n";
        if (line.rfind("alternate_config_directories", 0) == 0) {
            found = true;
            out += "    " + dir.string() + "\n";
        }
    }
    if (!found) out += "alternate_config_directories = " + dir.string() + "\n";
    fs::write_file_durable(main_cf, out, 0644);
}

// A Postfix smtpd on 127.0.0.1 offering STARTTLS with a self-signed certificate, relaying
// everything it accepts to relay_port (an smtp-sink).
class PostfixTlsRelay {
public:
    PostfixTlsRelay(const std::filesystem::path& d, unsigned short relay_port,
                    const std::string& extra_main_cf = {})
        : dir_(d) {
        run("postfix -c " + d.string() + " stop");
        std::filesystem::remove_all(d);
        std::filesystem::create_directories(d / "queue");
        std::filesystem::create_directories(d / "data");
        give_to_postfix(d / "data");
        run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "
            "/CN=mx.tls.test"
            " -keyout " +
            (d / "key.pem").string() + " -out " + (d / "cert.pem").string());
        port_ = free_port();
        std::ofstream(d / "main.cf") << "compatibility_level = 3.6\n"
                                     << "queue_directory = " << (d / "queue").string() << "\n"
                                     << "data_directory = " << (d / "data").string() << "\n"
                                     << "mail_owner = postfix\nmyhostname = mx.tls.test\n"
                                     << "inet_interfaces = 127.0.0.1\ninet_protocols = ipv4\n"
                                     << "mydestination =\nmynetworks = 127.0.0.0/8\n"
                                     << "relayhost = [127.0.0.1]:" << relay_port << "\n"
                                     << "maillog_file_prefixes = /tmp\n"
                                     << "maillog_file = " << (d / "log").string() << "\n"
                                     << "smtpd_tls_security_level = may\n"
                                     << "smtpd_tls_cert_file = " << (d / "cert.pem").string() << "\n"
                                     << "smtpd_tls_key_file = " << (d / "key.pem").string() << "\n"
                                     << "smtpd_tls_loglevel = 1\n"
                                     << extra_main_cf;
        std::ofstream(d / "master.cf")
            << "127.0.0.1:" << port_ << " inet n - n - - smtpd\n"
            << "cleanup unix n - n - 0 cleanup\nqmgr unix n - n 300 1 qmgr\n"
            << "tlsmgr unix - - n 1000? 1 tlsmgr\nrewrite unix - - n - - trivial-rewrite\n"
            << "bounce unix - - n - 0 bounce\ndefer unix - - n - 0 bounce\n"
            << "trace unix - - n - 0 bounce\nverify unix - - n - 1 verify\n"
            << "proxymap unix - - n - - proxymap\nsmtp unix - - n - - smtp\n"
            << "relay unix - - n - - smtp\nerror unix - - n - - error\n"
            << "retry unix - - n - - error\ndiscard unix - - n - - discard\n"
            << "anvil unix - - n - 1 anvil\nscache unix - - n - 1 scache\n"
            << "postlog unix-dgram n - n - 1 postlogd\n";
        allow_postfix_config_dir(d);
        int status = -1;
        auto out = run("postfix -c " + d.string() + " start", &status);
        started_ = status == 0;
        if (!started_)
            error_ = "postfix start failed: " + out;
        else if (!wait_for_port(port_))
            error_ = "postfix not listening\n" + log();
    }
    ~PostfixTlsRelay() {
        if (started_) run("postfix -c " + dir_.string() + " stop");
    }
    const std::string& error() const { return error_; }
    unsigned short port() const { return port_; }
    std::string log() const {
        return std::filesystem::exists(dir_ / "log") ? fs::read_file(dir_ / "log") : std::string();
    }
    // The smtpd process of each SMTP session so far, in order (not the probes of
    // wait_for_port, which Postfix logs as lost after CONNECT).
    std::vector<int> smtpd_connections() const {
        std::vector<int> pids;
        std::istringstream in(log());
        for (std::string line; std::getline(in, line);) {
            auto at = line.find("postfix/smtpd[");
            if (at == std::string::npos) continue;
            int pid = std::stoi(line.substr(at + 14));
            if (line.find("]: connect from ") != std::string::npos)
                pids.push_back(pid);
            else if (line.find("lost connection after CONNECT") != std::string::npos)
                for (auto p = pids.rbegin(); p != pids.rend(); ++p)
                    if (*p == pid) {
                        pids.erase(std::next(p).base());
                        break;
                    }
        }
        return pids;
    }

private:
    std::filesystem::path dir_;
    unsigned short port_ = 0;
    bool started_ = false;
    std::string error_;
};

}  // namespace pecd::test
