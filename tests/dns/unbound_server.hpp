// unbound_server.hpp - a real DNS server for tests: unbound on 127.0.0.1 with static zones
//
// UnboundServer(zones) starts `unbound -d` on a free port (UDP and TCP) in a fresh
// directory with the given local-zone/local-data lines, and stops it with the object (also
// when the test process dies: PR_SET_PDEATHSIG). ready() waits, bounded, until `probe`
// resolves. address() is "127.0.0.1:PORT" for ResolverSettings::servers and [dns].
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>

#include "dns/resolver.hpp"

namespace pecd::test {

inline unsigned short free_udp_tcp_port() {
    for (int attempt = 0; attempt < 20; ++attempt) {
        int u = ::socket(AF_INET, SOCK_DGRAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ::bind(u, reinterpret_cast<sockaddr*>(&a), sizeof a);
        socklen_t len = sizeof a;
        ::getsockname(u, reinterpret_cast<sockaddr*>(&a), &len);
        int t = ::socket(AF_INET, SOCK_STREAM, 0);
        int ok = ::bind(t, reinterpret_cast<sockaddr*>(&a), sizeof a);
        ::close(t);
        ::close(u);
        if (ok == 0) return ntohs(a.sin_port);
    }
    return 0;
}

class UnboundServer {
public:
    explicit UnboundServer(const std::string& zones) {
        dir_ = std::filesystem::temp_directory_path() /
               ("pecd-unbound-" + std::to_string(::getpid()) + "-" + std::to_string(std::random_device{}()));
        std::filesystem::create_directories(dir_);
        port_ = free_udp_tcp_port();
        std::ofstream(dir_ / "unbound.conf") << "server:\n  interface: 127.0.0.1\n  port: " << port_
                                             << "\n  do-daemonize: no\n  username: \"\"\n  chroot: \"\"\n"
                                             << "  directory: \"" << dir_.string() << "\"\n  pidfile: \"\"\n"
                                             << "  use-syslog: no\n  logfile: \"\"\n  do-ip6: no\n"
                                             << "  access-control: 127.0.0.0/8 allow\n"
                                             << "  module-config: \"iterator\"\n"
                                             << zones;
        pid_ = ::fork();
        if (pid_ == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGTERM);
            auto log = (dir_ / "unbound.log").string();
            FILE* f = std::fopen(log.c_str(), "w");
            if (f) ::dup2(fileno(f), 2), ::dup2(fileno(f), 1);
            auto conf = (dir_ / "unbound.conf").string();
            ::execl("/usr/sbin/unbound", "unbound", "-d", "-c", conf.c_str(), static_cast<char*>(nullptr));
            ::_exit(127);
        }
    }
    ~UnboundServer() {
        if (pid_ > 0) {
            ::kill(pid_, SIGTERM);
            ::waitpid(pid_, nullptr, 0);
        }
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    UnboundServer(const UnboundServer&) = delete;
    UnboundServer& operator=(const UnboundServer&) = delete;

    std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
    dns::ResolverSettings settings() const {
        dns::ResolverSettings s;
        s.servers = {address()};
        s.timeout = std::chrono::milliseconds(500);
        s.tries = 2;
        s.use_ipv6 = false;
        return s;
    }
    bool ready(const std::string& probe) const {
        auto s = settings();
        s.timeout = std::chrono::milliseconds(200);
        s.tries = 1;
        dns::Resolver r(s);
        for (int i = 0; i < 50; ++i) {
            try {
                if (!r.a(probe).empty()) return true;
            } catch (const std::exception&) {
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        return false;
    }
    std::string log() const {
        std::ifstream in(dir_ / "unbound.log");
        return std::string(std::istreambuf_iterator<char>(in), {});
    }

private:
    std::filesystem::path dir_;
    unsigned short port_ = 0;
    pid_t pid_ = -1;
};

}  // namespace pecd::test
