// daemon_pg_test.cpp - the real pecd daemon configured with [store] backend = "postgresql"
//
// pecd is started as a separate process with a configuration file naming the test
// PostgreSQL server (the password in a password_file), receives a message over SMTP on
// 127.0.0.1, and delivers it into a mailbox provisioned beforehand in the same database;
// the rows are read back from PostgreSQL and the body from the configured blob_dir. The
// daemon's log must name the server but never contain the password.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/clock.hpp"
#include "store/blob_store.hpp"
#include "store/mail_store.hpp"
#include "test_database.hpp"

namespace pecd {
namespace {

namespace fsys = std::filesystem;

std::string slurp(const fsys::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// A line-oriented SMTP client on a blocking socket with a receive timeout.
class SmtpClient {
public:
    explicit SmtpClient(int port) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        timeval tv{10, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<std::uint16_t>(port));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
            throw std::runtime_error("cannot connect to pecd on port " + std::to_string(port));
    }
    ~SmtpClient() { ::close(fd_); }
    // The last line of the next reply (multi-line replies end with "NNN ").
    std::string reply() {
        for (;;) {
            auto nl = buffer_.find("\r\n");
            if (nl != std::string::npos) {
                std::string line = buffer_.substr(0, nl);
                buffer_.erase(0, nl + 2);
                if (line.size() < 4 || line[3] != '-') return line;
                continue;
            }
            char buf[4096];
            ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n <= 0) return "(connection closed or timed out)";
            buffer_.append(buf, static_cast<std::size_t>(n));
        }
    }
    std::string command(const std::string& line) {
        std::string data = line + "\r\n";
        if (::send(fd_, data.data(), data.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(data.size()))
            return "(send failed)";
        return reply();
    }

private:
    int fd_ = -1;
    std::string buffer_;
};

TEST(PgDaemon, PecdOnPostgresqlAcceptsAndDeliversOverSmtp) {
    auto& server = test::postgres_server();
    test::TestDatabase target("postgresql");
    auto data_dir = target.dir() / "node1";
    auto blob_dir = target.dir() / "shared-blobs";
    fsys::create_directories(data_dir);
    auto conninfo = target.conninfo();
    auto plain = conninfo.substr(0, conninfo.find(" password="));
    {  // Provisioning, as an operator's tool would do on the shared database.
        auto db = target.open();
        store::BlobStore blobs(blob_dir);
        store::MailStore mail(*db, blobs, SystemClock::instance());
        mail.add_domain("pg.test");
        mail.add_mailbox({"rcpt@pg.test"});
    }
    auto password_file = target.dir() / "db.password";
    { std::ofstream(password_file) << server.password() << "\n"; }
    auto config = target.dir() / "pecd.toml";
    {
        std::ofstream out(config);
        out << "data_dir = \"" << data_dir.string() << "\"\n"
            << "domains = [\"pg.test\"]\n"
            << "[store]\nbackend = \"postgresql\"\n"
            << "conninfo = \"" << plain << "\"\n"
            << "password_file = \"" << password_file.string() << "\"\n"
            << "blob_dir = \"" << blob_dir.string() << "\"\n"
            << "pool_size = 4\n"
            << "[[listener]]\nname = \"mx\"\nport = 0\ntls = \"none\"\n";
    }
    auto log = target.dir() / "pecd.log";
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        FILE* f = std::freopen(log.c_str(), "w", stdout);
        if (f) ::dup2(::fileno(stdout), 2);
        std::string bin = std::string(PECD_BINARY_DIR) + "/app/pecd/pecd";
        ::execl(bin.c_str(), "pecd", "--data-dir", data_dir.c_str(), "--config", config.c_str(),
                static_cast<char*>(nullptr));
        ::_exit(127);
    }
    struct Stop {
        pid_t pid;
        ~Stop() {
            ::kill(pid, SIGTERM);
            for (int i = 0; i < 200; ++i) {
                if (::waitpid(pid, nullptr, WNOHANG) == pid) return;
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
            }
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
    } stop{pid};

    auto listeners = data_dir / "listeners.json";
    int port = 0;
    for (int i = 0; i < 600 && port == 0; ++i) {  // at most 60 s
        if (::waitpid(pid, nullptr, WNOHANG) == pid) FAIL() << "pecd exited:\n" << slurp(log);
        if (fsys::exists(listeners)) {
            auto doc = slurp(listeners);
            auto at = doc.find("\"port\"");
            if (at != std::string::npos) port = std::atoi(doc.c_str() + doc.find(':', at) + 1);
        }
        if (port == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_GT(port, 0) << "pecd did not become ready:\n" << slurp(log);

    const std::string body = "From: a@remote.test\r\nSubject: via pecd on pg\r\n\r\nhello\r\n";
    {
        SmtpClient c(port);
        EXPECT_EQ(c.reply().substr(0, 3), "220");
        EXPECT_EQ(c.command("EHLO client.test").substr(0, 3), "250");
        EXPECT_EQ(c.command("MAIL FROM:<a@remote.test>").substr(0, 3), "250");
        EXPECT_EQ(c.command("RCPT TO:<rcpt@pg.test>").substr(0, 3), "250");
        EXPECT_EQ(c.command("RCPT TO:<nobody@pg.test>").substr(0, 1), "5") << "unknown mailbox accepted";
        EXPECT_EQ(c.command("DATA").substr(0, 3), "354");
        auto r = c.command(body + ".");
        EXPECT_EQ(r.substr(0, 3), "250") << r;
        c.command("QUIT");
    }
    auto db = target.open();
    std::int64_t stored = 0;
    for (int i = 0; i < 300 && stored == 0; ++i) {  // at most 30 s
        db->read([&](store::Tx& tx) {
            stored = tx.query_one("SELECT count(*) FROM mailbox_messages")->integer(0);
        });
        if (stored == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_EQ(stored, 1) << slurp(log);
    std::string key;
    db->read([&](store::Tx& tx) { key = tx.query_one("SELECT blob_key FROM mailbox_messages")->text(0); });
    store::BlobStore blobs(blob_dir);
    EXPECT_NE(blobs.get(key).find("hello\r\n"), std::string::npos);
    EXPECT_NE(blobs.get(key).find("Subject: via pecd on pg"), std::string::npos);
    auto text = slurp(log);
    EXPECT_NE(text.find("store: postgresql pecd_test@127.0.0.1:" + std::to_string(server.port())),
              std::string::npos)
        << text;
    EXPECT_EQ(text.find(server.password()), std::string::npos) << "the password reached the log";
}

}  // namespace
}  // namespace pecd
