// postfix_peer.hpp - a real Postfix on 127.0.0.1 playing remote MX hosts for the TLS tests
//
// One Postfix instance (config directory kConfigDir, which must be listed in
// alternate_config_directories of /etc/postfix/main.cf; the helper adds it there when
// missing) with one smtpd per port, each with its own certificate or without STARTTLS.
// Started and stopped by the test; its log is kConfigDir/log.
#pragma once

#include <pwd.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <sstream>

#include "tls_test_support.hpp"

namespace pecd::tls::test {

inline const std::filesystem::path kPostfixConfigDir = "/tmp/pecd-tls-postfix";

// Adds dir to alternate_config_directories in /etc/postfix/main.cf, keeping what is there.
inline void allow_postfix_config_dir(const std::filesystem::path& dir) {
    const std::filesystem::path main_cf = "/etc/postfix/main.cf";
    std::string text;
    if (std::filesystem::exists(main_cf)) text = fs::read_file(main_cf);
    std::istringstream in(text);
    std::string line, out;
    bool found = false;
    while (std::getline(in, line)) {
        out += line + "\n";
        if (line.rfind("alternate_config_directories", 0) == 0) {
            found = true;
            if (text.find(dir.string()) == std::string::npos) out += "    " + dir.string() + "\n";
        }
    }
    if (!found) out += "alternate_config_directories = " + dir.string() + "\n";
    if (out != text) fs::write_file_durable(main_cf, out, 0644);
}

struct PostfixService {
    std::string name;
    std::vector<std::string> options;  // "-o name=value" pairs, without the "-o"
};

class PostfixPeer {
public:
    // services: name -> smtpd options; each gets a free port on 127.0.0.1.
    explicit PostfixPeer(const std::vector<PostfixService>& services, const std::string& hostname) {
        const auto& d = kPostfixConfigDir;
        run_command("postfix -c " + d.string() + " stop");
        std::filesystem::remove_all(d / "queue");
        std::filesystem::create_directories(d / "queue");
        std::filesystem::create_directories(d / "data");
        if (passwd* pw = ::getpwnam("postfix")) {
            if (::chown((d / "data").c_str(), pw->pw_uid, pw->pw_gid) != 0) error_ = "chown data";
        }
        std::filesystem::remove(d / "log");
        std::ofstream(d / "main.cf") << "compatibility_level = 3.6\n"
                                     << "queue_directory = " << (d / "queue").string() << "\n"
                                     << "data_directory = " << (d / "data").string() << "\n"
                                     << "mail_owner = postfix\nmyhostname = " << hostname << "\n"
                                     << "inet_interfaces = 127.0.0.1\ninet_protocols = ipv4\n"
                                     << "mydestination =\nmynetworks = 127.0.0.0/8\n"
                                     << "maillog_file_prefixes = /tmp\n"
                                     << "maillog_file = " << (d / "log").string() << "\n"
                                     << "smtpd_tls_security_level = may\n";
        std::ofstream master(d / "master.cf");
        for (const auto& s : services) {
            ports_[s.name] = free_port();
            master << "127.0.0.1:" << ports_[s.name] << " inet n - n - - smtpd";
            for (const auto& o : s.options) master << " -o " << o;
            master << "\n";
        }
        master << "cleanup unix n - n - 0 cleanup\nqmgr unix n - n 300 1 qmgr\n"
               << "tlsmgr unix - - n 1000? 1 tlsmgr\nrewrite unix - - n - - trivial-rewrite\n"
               << "bounce unix - - n - 0 bounce\ndefer unix - - n - 0 bounce\ntrace unix - - n - 0 bounce\n"
               << "verify unix - - n - 1 verify\nproxymap unix - - n - - proxymap\n"
               << "smtp unix - - n - - smtp\nerror unix - - n - - error\nretry unix - - n - - error\n"
               << "discard unix - - n - - discard\nanvil unix - - n - 1 anvil\nscache unix - - n - 1 scache\n"
               << "postlog unix-dgram n - n - 1 postlogd\n";
        master.close();
        allow_postfix_config_dir(d);
        auto r = run_command("postfix -c " + d.string() + " start");
        if (r.status != 0) {
            error_ = "postfix start failed: " + r.output + log();
            return;
        }
        started_ = true;
        for (const auto& [name, port] : ports_)
            if (!wait_for_port(port)) error_ = "postfix service " + name + " not listening\n" + log();
    }
    ~PostfixPeer() {
        if (started_) run_command("postfix -c " + kPostfixConfigDir.string() + " stop");
    }
    const std::string& error() const { return error_; }
    unsigned short port(const std::string& name) const { return ports_.at(name); }
    std::string log() const {
        std::error_code ec;
        return std::filesystem::exists(kPostfixConfigDir / "log", ec)
                   ? fs::read_file(kPostfixConfigDir / "log")
                   : "";
    }

private:
    std::map<std::string, unsigned short> ports_;
    bool started_ = false;
    std::string error_;
};

}  // namespace pecd::tls::test
