// https_test.cpp - the HTTPS index source against a real HTTPS server (python3 ssl) on
// loopback: first download, 304 on an unchanged file keeps the index, a changed file is
// picked up (a domain moves to another provider), TLS and HTTP failures keep the last good
// index, and the local copy serves at start when the server is down.
#include <gtest/gtest.h>

#include "core/error.hpp"
#include "index/https_fetch.hpp"
#include "index/index_service.hpp"
#include "index_test_support.hpp"

namespace pecd::index {
namespace {

using namespace test;

class HttpsTest : public ::testing::Test {
protected:
    TempDir dir;
    TestCa agid{dir.path, "AgID Test"};
    TestCa rogue{dir.path, "Rogue"};
    TestCert signer = agid.issue("igpec", "Indice PEC", "igpec@agid.example");
    TestCert server_cert = agid.issue("server", "localhost", "IP:127.0.0.1,DNS:localhost");
    TestCert acme = agid.issue("acme", "Acme PEC", "posta-certificata@pec.acme.example");
    TestCert other = agid.issue("other", "Other PEC", "posta-certificata@pec.other.example");
    fs::path www = dir / "www";
    fs::path log = dir / "requests.log";
    std::unique_ptr<Process> server;
    int port = 0;

    void SetUp() override {
        fs::create_directories(www);
        auto port_file = dir / "port";
        server = std::make_unique<Process>(
            std::vector<std::string>{"python3", PECD_SOURCE_DIR "/tests/index/https_server.py", "--dir",
                                     www.string(), "--cert", server_cert.pem.string(), "--key",
                                     server_cert.key.string(), "--port-file", port_file.string(), "--log",
                                     log.string()},
            dir / "server.out");
        ASSERT_TRUE(
            wait_until([&] { return fs::exists(port_file) || !server->running(); }, std::chrono::seconds(15)))
            << read_file(dir / "server.out");
        ASSERT_TRUE(server->running())
            << "python3 HTTPS server did not start: " << read_file(dir / "server.out");
        port = std::stoi(read_file(port_file));
    }

    void publish(const std::string& moving_owner) {
        auto ldif = dir / "index.ldif";
        auto domains = [&](const std::string& name, const std::string& own) {
            std::vector<std::string> d{own};
            if (name == moving_owner) d.push_back("moving.example");
            return d;
        };
        write_file(ldif, root_ldif() +
                             provider_ldif({"Acme PEC",
                                            "",
                                            "ricevute@pec.acme.example",
                                            domains("Acme PEC", "pec.acme.example"),
                                            {&acme},
                                            ""}) +
                             provider_ldif({"Other PEC",
                                            "",
                                            "ricevute@pec.other.example",
                                            domains("Other PEC", "pec.other.example"),
                                            {&other},
                                            ""}));
        openssl_sign(ldif, signer, dir / "next.p7m");
        fs::rename(dir / "next.p7m", www / "igpec.ldif.p7m");
    }

    IndexSettings settings() {
        IndexSettings s;
        s.source = SourceKind::https;
        s.url = "https://127.0.0.1:" + std::to_string(port) + "/igpec.ldif.p7m";
        s.trust_anchor = agid.pem();
        s.ca_file = agid.pem();
        s.timeout = std::chrono::seconds(10);
        return s;
    }

    std::string owner_of_moving(const IndexService& svc) {
        auto p = svc.lookup().by_domain("moving.example");
        return p ? p->name : "";
    }
    std::vector<std::string> log_lines() {
        std::vector<std::string> lines;
        auto text = read_file(log);
        for (std::size_t pos = 0, nl; (nl = text.find('\n', pos)) != std::string::npos; pos = nl + 1)
            lines.push_back(text.substr(pos, nl - pos));
        return lines;
    }
};

TEST_F(HttpsTest, DownloadThen304KeepsTheIndexThenAChangeIsPickedUp) {
    publish("Acme PEC");
    IndexService svc(settings());
    auto first = svc.refresh();
    ASSERT_EQ(first.kind, RefreshOutcome::Kind::replaced) << first.message;
    EXPECT_EQ(owner_of_moving(svc), "Acme PEC");
    auto etag = svc.status().etag;
    EXPECT_FALSE(etag.empty());

    auto second = svc.refresh();
    EXPECT_EQ(second.kind, RefreshOutcome::Kind::not_modified) << second.message;
    EXPECT_EQ(owner_of_moving(svc), "Acme PEC");
    auto lines = log_lines();
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_EQ(lines[0].rfind("GET /igpec.ldif.p7m 200 inm= ", 0), 0u) << lines[0];
    EXPECT_EQ(lines[1].rfind("GET /igpec.ldif.p7m 304 inm=" + etag, 0), 0u) << lines[1];
    EXPECT_NE(lines[1].find("ims=" + svc.status().last_modified), std::string::npos) << lines[1];

    publish("Other PEC");
    auto third = svc.refresh();
    ASSERT_EQ(third.kind, RefreshOutcome::Kind::replaced) << third.message;
    EXPECT_EQ(owner_of_moving(svc), "Other PEC");
    EXPECT_NE(svc.status().etag, etag);
    EXPECT_EQ(svc.status().refreshes, 2u);
    EXPECT_EQ(svc.status().not_modified, 1u);
}

TEST_F(HttpsTest, UntrustedServerCertificateKeepsTheIndex) {
    publish("Acme PEC");
    IndexService svc(settings());
    ASSERT_EQ(svc.refresh().kind, RefreshOutcome::Kind::replaced);
    auto s = settings();
    s.ca_file = rogue.pem();  // the server's chain no longer verifies
    HttpsRequest r;
    r.url = s.url;
    r.ca_file = s.ca_file;
    try {
        https_get(r);
        ADD_FAILURE() << "untrusted server accepted";
    } catch (const TemporaryError& e) {
        EXPECT_NE(std::string(e.what()).find("TLS handshake"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("certificate verify failed"), std::string::npos) << e.what();
    }
    // Host name mismatch: the certificate names 127.0.0.1 and localhost only.
    r.ca_file = agid.pem();
    r.url = "https://127.0.0.2:" + std::to_string(port) + "/igpec.ldif.p7m";
    EXPECT_THROW(https_get(r), TemporaryError);
    EXPECT_EQ(owner_of_moving(svc), "Acme PEC");
}

TEST_F(HttpsTest, HttpErrorKeepsTheIndex) {
    publish("Acme PEC");
    IndexService svc(settings());
    ASSERT_EQ(svc.refresh().kind, RefreshOutcome::Kind::replaced);
    fs::remove(www / "igpec.ldif.p7m");
    auto r = svc.refresh();
    EXPECT_EQ(r.kind, RefreshOutcome::Kind::failed);
    EXPECT_NE(r.message.find("HTTP status 404"), std::string::npos) << r.message;
    EXPECT_EQ(owner_of_moving(svc), "Acme PEC");
}

TEST_F(HttpsTest, LocalCopyServesWhenTheServerIsDown) {
    publish("Acme PEC");
    auto s = settings();
    s.cache_file = dir / "igpec-copy.p7m";
    {
        IndexService svc(s);
        ASSERT_EQ(svc.refresh().kind, RefreshOutcome::Kind::replaced);
    }
    ASSERT_TRUE(fs::exists(s.cache_file));
    server->stop();
    IndexService restarted(s);
    restarted.start();  // loads the local copy at once; the download fails in the background
    EXPECT_EQ(owner_of_moving(restarted), "Acme PEC");
    EXPECT_TRUE(wait_until([&] { return restarted.status().failures >= 1; }, std::chrono::seconds(15)));
    EXPECT_NE(restarted.status().last_error.find("connect"), std::string::npos)
        << restarted.status().last_error;
    EXPECT_EQ(owner_of_moving(restarted), "Acme PEC");
    restarted.stop();
}

}  // namespace
}  // namespace pecd::index
