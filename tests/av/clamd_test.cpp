// clamd_test.cpp - the clamd INSTREAM client against a real clamd and against fake servers
//
// Covers: clean and EICAR messages over the unix socket and over TCP (EICAR raw and as a
// base64 MIME attachment), multi-chunk streams, clamd's StreamMaxLength reply, a stopped
// clamd (TemporaryError, both transports), a server that never answers (time limit ->
// TemporaryError), a server that answers garbage or hangs up, the pure reply parser,
// the INSTREAM framing and the endpoint syntax; sessions (IDSESSION): one connection for
// many scans, idle expiry, a kept connection closed by the server, a misnumbered reply,
// concurrent scans and a restarted clamd.
#include "av/clamd.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <atomic>
#include <thread>

#include "clamd_peer.hpp"
#include "core/error.hpp"

namespace pecd::av {
namespace {

using namespace std::chrono_literals;
using test::ClamdPeer;

std::string base64(const std::string& in) {
    std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

std::string mail_with_attachment(const std::string& content) {
    return "From: mario.rossi@pec.example.it\r\nTo: anna@pec.other.it\r\nSubject: allegato\r\n"
           "Date: Wed, 25 Nov 2026 09:00:00 +0100\r\nMessage-ID: <av-1@mua>\r\nMIME-Version: 1.0\r\n"
           "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
           "--b1\r\nContent-Type: text/plain\r\n\r\nIn allegato il file.\r\n"
           "--b1\r\nContent-Type: application/octet-stream; name=\"file.com\"\r\n"
           "Content-Disposition: attachment; filename=\"file.com\"\r\nContent-Transfer-Encoding: "
           "base64\r\n\r\n" +
           base64(content) + "\r\n--b1--\r\n";
}

const std::string kCleanMail = mail_with_attachment("just an ordinary document, nothing to see here\n");

ClamdOptions unix_options(const ClamdPeer& p) {
    ClamdOptions o;
    o.endpoint = ClamdEndpoint::parse(p.socket_path().string());
    o.connect_timeout = 5s;
    o.scan_timeout = 30s;
    return o;
}

ClamdOptions tcp_options(const ClamdPeer& p) {
    ClamdOptions o;
    o.endpoint = ClamdEndpoint::parse("127.0.0.1:" + std::to_string(p.port()));
    o.connect_timeout = 5s;
    o.scan_timeout = 30s;
    return o;
}

class ClamdTest : public ::testing::Test {
protected:
    void SetUp() override { ASSERT_TRUE(peer_.ok()) << "clamd did not start:\n" << peer_.log(); }
    ClamdPeer peer_;
};

TEST_F(ClamdTest, CleanAndInfectedOverUnixSocket) {
    ClamdClient c(unix_options(peer_));
    EXPECT_TRUE(c.ping());
    EXPECT_NE(c.version().find("ClamAV"), std::string::npos);
    auto clean = c.scan(kCleanMail);
    EXPECT_EQ(clean.verdict, Verdict::clean) << clean.reply;
    EXPECT_TRUE(clean.virus.empty());

    auto raw = c.scan(test::eicar());
    EXPECT_EQ(raw.verdict, Verdict::infected) << raw.reply;
    EXPECT_NE(raw.virus.find(ClamdPeer::kSignature), std::string::npos) << raw.virus;

    auto mail = c.scan(mail_with_attachment(test::eicar()));
    EXPECT_EQ(mail.verdict, Verdict::infected) << mail.reply;
    EXPECT_NE(mail.virus.find(ClamdPeer::kSignature), std::string::npos) << mail.virus;
}

TEST_F(ClamdTest, CleanAndInfectedOverTcp) {
    ClamdClient c(tcp_options(peer_));
    EXPECT_TRUE(c.ping());
    EXPECT_EQ(c.scan(kCleanMail).verdict, Verdict::clean);
    auto r = c.scan(mail_with_attachment(test::eicar()));
    EXPECT_EQ(r.verdict, Verdict::infected) << r.reply;
    EXPECT_NE(r.virus.find(ClamdPeer::kSignature), std::string::npos);
}

TEST_F(ClamdTest, ManySmallChunksAndAnEmptyStream) {
    auto o = unix_options(peer_);
    o.chunk_size = 7;
    ClamdClient c(o);
    EXPECT_EQ(c.scan(mail_with_attachment(test::eicar())).verdict, Verdict::infected);
    EXPECT_EQ(c.scan(std::string(100 * 1024, 'a')).verdict, Verdict::clean);
    EXPECT_EQ(c.scan("").verdict, Verdict::clean);
}

TEST_F(ClamdTest, StreamMaxLengthIsADistinctOutcome) {
    for (auto o : {unix_options(peer_), tcp_options(peer_)}) {
        ClamdClient c(o);
        auto big = std::string(ClamdPeer::kStreamMax * 4, 'x');
        auto r = c.scan(big);
        EXPECT_EQ(r.verdict, Verdict::size_limit_exceeded) << r.reply;
        EXPECT_NE(r.reply.find("size limit"), std::string::npos);
        // The scanner is still fine afterwards.
        EXPECT_EQ(c.scan(kCleanMail).verdict, Verdict::clean);
    }
}

TEST_F(ClamdTest, StoppedClamdIsATemporaryError) {
    ClamdClient over_unix(unix_options(peer_));
    ClamdClient over_tcp(tcp_options(peer_));
    ASSERT_EQ(over_unix.scan(kCleanMail).verdict, Verdict::clean);
    peer_.stop();
    try {
        over_unix.scan(kCleanMail);
        ADD_FAILURE() << "scan succeeded with clamd stopped";
    } catch (const TemporaryError& e) {
        EXPECT_NE(std::string(e.what()).find("unreachable"), std::string::npos) << e.what();
    }
    EXPECT_THROW(over_tcp.scan(kCleanMail), TemporaryError);
    EXPECT_THROW(over_tcp.ping(), TemporaryError);
}

// A TCP server on 127.0.0.1 that accepts and then does `behaviour` with each connection.
class FakeServer {
public:
    enum class Mode { silent, garbage, hang_up, huge };
    explicit FakeServer(Mode m) : mode_(m) {
        fd_ = test::listen_on_loopback(port_);
        thread_ = std::thread([this] { serve(); });
    }
    ~FakeServer() {
        stop_ = true;
        ::shutdown(fd_, SHUT_RDWR);
        ::close(fd_);
        thread_.join();
        for (int c : clients_) ::close(c);
    }
    std::uint16_t port() const { return port_; }

private:
    void serve() {
        for (int i = 0; i < 8 && !stop_; ++i) {
            int c = ::accept(fd_, nullptr, nullptr);
            if (c < 0) return;
            char buf[4096];
            switch (mode_) {
                case Mode::silent:
                    clients_.push_back(c);
                    break;  // keep it open, never answer
                case Mode::garbage: {
                    (void)::recv(c, buf, sizeof buf, 0);
                    static const char g[] = "220 smtp.example ESMTP ready\r\n";
                    (void)::send(c, g, sizeof g - 1, MSG_NOSIGNAL);
                    ::close(c);
                    break;
                }
                case Mode::hang_up:
                    ::close(c);
                    break;
                case Mode::huge: {
                    std::string junk(10000, 'A');
                    (void)::send(c, junk.data(), junk.size(), MSG_NOSIGNAL);
                    clients_.push_back(c);
                    break;
                }
            }
        }
    }
    Mode mode_;
    int fd_ = -1;
    std::uint16_t port_ = 0;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    std::vector<int> clients_;
};

ClamdOptions fake_options(std::uint16_t port, std::chrono::milliseconds scan_timeout) {
    ClamdOptions o;
    o.endpoint = ClamdEndpoint::parse("tcp:127.0.0.1:" + std::to_string(port));
    o.connect_timeout = 2s;
    o.scan_timeout = scan_timeout;
    return o;
}

TEST(ClamdFake, ServerThatNeverAnswersHitsTheTimeLimit) {
    FakeServer s(FakeServer::Mode::silent);
    ClamdClient c(fake_options(s.port(), 700ms));
    auto start = std::chrono::steady_clock::now();
    try {
        c.scan(kCleanMail);
        ADD_FAILURE() << "no TemporaryError";
    } catch (const TemporaryError& e) {
        EXPECT_NE(std::string(e.what()).find("no answer within"), std::string::npos) << e.what();
    }
    auto took = std::chrono::steady_clock::now() - start;
    EXPECT_GE(took, 600ms);
    EXPECT_LT(took, 5s);
}

TEST(ClamdFake, GarbageHangUpAndOverlongAnswersAreTemporaryErrors) {
    for (auto mode : {FakeServer::Mode::garbage, FakeServer::Mode::hang_up, FakeServer::Mode::huge}) {
        FakeServer s(mode);
        ClamdClient c(fake_options(s.port(), 3s));
        EXPECT_THROW(c.scan(kCleanMail), TemporaryError) << static_cast<int>(mode);
    }
}

TEST(ClamdFake, UnreachableAddressesAreTemporaryErrors) {
    ClamdOptions o;
    o.endpoint = ClamdEndpoint::parse("/nonexistent/clamd.ctl");
    EXPECT_THROW(ClamdClient(o).scan("x"), TemporaryError);
    o.endpoint = ClamdEndpoint::parse("127.0.0.1:" + std::to_string(test::free_port()));
    EXPECT_THROW(ClamdClient(o).scan("x"), TemporaryError);
}

// A clamd stand-in on 127.0.0.1 that speaks the session protocol ("zIDSESSION\0", then
// numbered replies) and the one-command form, one connection at a time, and counts them.
class FakeSessionServer {
public:
    enum class Mode { sessions, close_after_each_reply, wrong_number };
    explicit FakeSessionServer(Mode m) : mode_(m) {
        fd_ = test::listen_on_loopback(port_);
        thread_ = std::thread([this] { serve(); });
    }
    ~FakeSessionServer() {
        ::shutdown(fd_, SHUT_RDWR);
        ::close(fd_);
        thread_.join();
    }
    std::uint16_t port() const { return port_; }
    int connections() const { return connections_; }
    int scans() const { return scans_; }

private:
    static bool read_exactly(int c, char* out, std::size_t n) {
        for (std::size_t got = 0; got < n;) {
            auto r = ::recv(c, out + got, n - got, 0);
            if (r <= 0) return false;
            got += static_cast<std::size_t>(r);
        }
        return true;
    }
    static bool read_command(int c, std::string& out) {
        out.clear();
        for (char ch; read_exactly(c, &ch, 1);) {
            if (ch == '\0') return true;
            out += ch;
        }
        return false;
    }
    static bool read_stream(int c) {
        for (;;) {
            unsigned char h[4];
            if (!read_exactly(c, reinterpret_cast<char*>(h), 4)) return false;
            std::uint32_t n = (std::uint32_t{h[0]} << 24) | (std::uint32_t{h[1]} << 16) | (h[2] << 8) | h[3];
            if (n == 0) return true;
            std::string chunk(n, '\0');
            if (!read_exactly(c, chunk.data(), n)) return false;
        }
    }
    void serve_connection(int c) {
        std::string command;
        if (!read_command(c, command)) return;
        const bool session = command == "zIDSESSION";
        if (session && !read_command(c, command)) return;
        for (int n = 1; command == "zINSTREAM" && read_stream(c); ++n) {
            ++scans_;
            std::string reply = "stream: OK";
            if (session) reply = std::to_string(mode_ == Mode::wrong_number ? n + 1 : n) + ": " + reply;
            (void)::send(c, reply.c_str(), reply.size() + 1, MSG_NOSIGNAL);
            if (!session || mode_ == Mode::close_after_each_reply || !read_command(c, command)) return;
        }
    }
    void serve() {
        for (;;) {
            int c = ::accept(fd_, nullptr, nullptr);
            if (c < 0) return;
            ++connections_;
            serve_connection(c);
            ::close(c);
        }
    }
    Mode mode_;
    int fd_ = -1;
    std::uint16_t port_ = 0;
    std::thread thread_;
    std::atomic<int> connections_{0}, scans_{0};
};

ClamdOptions session_options(const FakeSessionServer& s, std::chrono::milliseconds idle) {
    auto o = fake_options(s.port(), 3s);
    o.session_idle = idle;
    return o;
}

void expect_clean_scans(const ClamdClient& c, int n) {
    for (int i = 0; i < n; ++i) ASSERT_EQ(c.scan(kCleanMail).verdict, Verdict::clean) << "scan " << i;
}

TEST(ClamdSessions, ScansShareOneConnectionUntilItIsIdleTooLong) {
    FakeSessionServer s(FakeSessionServer::Mode::sessions);
    ClamdClient c(session_options(s, 300ms));
    expect_clean_scans(c, 20);
    EXPECT_EQ(s.connections(), 1);
    std::this_thread::sleep_for(400ms);  // longer than session_idle: a new connection
    EXPECT_EQ(c.scan(kCleanMail).verdict, Verdict::clean);
    EXPECT_EQ(s.connections(), 2);
    EXPECT_EQ(s.scans(), 21);
}

TEST(ClamdSessions, WithoutSessionsEachScanHasItsOwnConnection) {
    FakeSessionServer s(FakeSessionServer::Mode::sessions);
    ClamdClient c(session_options(s, 0ms));
    expect_clean_scans(c, 5);
    EXPECT_EQ(s.connections(), 5);
}

TEST(ClamdSessions, AKeptConnectionTheServerClosedCostsOneMoreTryNotAFailure) {
    FakeSessionServer s(FakeSessionServer::Mode::close_after_each_reply);
    ClamdClient c(fake_options(s.port(), 3s));
    expect_clean_scans(c, 6);
    EXPECT_EQ(s.connections(), 6);
    EXPECT_EQ(s.scans(), 6);
}

TEST(ClamdSessions, AReplyForAnotherRequestIsAnErrorAndEndsTheConnection) {
    FakeSessionServer s(FakeSessionServer::Mode::wrong_number);
    ClamdClient c(fake_options(s.port(), 3s));
    try {
        c.scan(kCleanMail);
        ADD_FAILURE() << "a reply numbered for another request was taken";
    } catch (const TemporaryError& e) {
        EXPECT_NE(std::string(e.what()).find("not for request 1"), std::string::npos) << e.what();
    }
    EXPECT_THROW(c.scan(kCleanMail), TemporaryError);
    EXPECT_EQ(s.connections(), 2);  // the first connection was not used again
}

TEST_F(ClamdTest, SessionsCarryConcurrentScansAndOutliveARestartedClamd) {
    ClamdClient c(unix_options(peer_));
    const auto infected = mail_with_attachment(test::eicar());
    std::atomic<int> wrong{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < 10; ++i) {
                bool dirty = (i + t) % 2 == 0;
                auto r = c.scan(dirty ? infected : kCleanMail + std::to_string(i));
                if (r.verdict != (dirty ? Verdict::infected : Verdict::clean)) ++wrong;
            }
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(wrong, 0);
    // The kept connections die with clamd; the next scans reconnect to the new one.
    peer_.stop();
    peer_.start();
    ASSERT_TRUE(peer_.ok()) << peer_.log();
    EXPECT_EQ(c.scan(kCleanMail).verdict, Verdict::clean);
    EXPECT_EQ(c.scan(infected).verdict, Verdict::infected);
}

TEST(ClamdProtocol, RepliesAreParsed) {
    EXPECT_EQ(parse_reply("stream: OK").verdict, Verdict::clean);
    auto inf = parse_reply("stream: Win.Test.EICAR_HDB-1 FOUND");
    EXPECT_EQ(inf.verdict, Verdict::infected);
    EXPECT_EQ(inf.virus, "Win.Test.EICAR_HDB-1");
    EXPECT_EQ(parse_reply("INSTREAM size limit exceeded. ERROR").verdict, Verdict::size_limit_exceeded);
    EXPECT_THROW(parse_reply("stream: Can't allocate memory ERROR"), TemporaryError);
    EXPECT_THROW(parse_reply(""), TemporaryError);
    EXPECT_THROW(parse_reply("stream: "), TemporaryError);
    EXPECT_THROW(parse_reply("stream: FOUND"), TemporaryError);
    EXPECT_THROW(parse_reply("PONG"), TemporaryError);
    EXPECT_THROW(parse_reply(std::string("stream: OK\x01", 11)), TemporaryError);
}

TEST(ClamdProtocol, InstreamFraming) {
    auto f = instream_frame("abcdefghij", 4);
    std::string expected("zINSTREAM\0", 10);
    expected += std::string("\0\0\0\4abcd", 8) + std::string("\0\0\0\4efgh", 8) +
                std::string("\0\0\0\2ij", 6) + std::string(4, '\0');
    EXPECT_EQ(f, expected);
    EXPECT_EQ(instream_frame("", 4), std::string("zINSTREAM\0\0\0\0\0", 14));
    auto big = instream_frame(std::string(70000, 'z'), 70000);
    EXPECT_EQ(big.substr(10, 4), std::string("\0\1\x11\x70", 4));
}

TEST(ClamdProtocol, EndpointSyntax) {
    auto u = ClamdEndpoint::parse("/run/clamav/clamd.ctl");
    EXPECT_EQ(u.kind, ClamdEndpoint::Kind::unix_socket);
    EXPECT_EQ(u.to_string(), "unix:/run/clamav/clamd.ctl");
    EXPECT_EQ(ClamdEndpoint::parse("unix:/x.sock").path, "/x.sock");
    auto t = ClamdEndpoint::parse("127.0.0.1:3310");
    EXPECT_EQ(t.kind, ClamdEndpoint::Kind::tcp);
    EXPECT_EQ(t.host, "127.0.0.1");
    EXPECT_EQ(t.port, 3310);
    auto v6 = ClamdEndpoint::parse("tcp:[::1]:3310");
    EXPECT_EQ(v6.host, "::1");
    EXPECT_EQ(v6.to_string(), "tcp:[::1]:3310");
    for (auto bad : {"", "localhost", "host:", "host:0", "host:70000", "[::1]3310", "host:33x"})
        EXPECT_THROW(ClamdEndpoint::parse(bad), ParseError) << bad;
    EXPECT_THROW(ClamdEndpoint::parse("/" + std::string(120, 'd')), ParseError);
}

}  // namespace
}  // namespace pecd::av
