// server_tls_test.cpp - ServerTls through real TLS handshakes on loopback
//
// A small Asio server hands each connection the context from ServerTls::current(); the
// clients are Asio/OpenSSL clients with chosen protocol limits and `openssl s_client`.
// Covers the protocol floor, the suite list, SNI, client certificates, hot reload
// (valid pairs accepted, broken ones refused with the old context kept) and
// ensure_self_signed().
#include "tls/server_tls.hpp"

#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <sys/stat.h>

#include <atomic>
#include <thread>

#include "core/error.hpp"
#include "tls_test_support.hpp"

using namespace pecd::tls;
using namespace pecd::tls::test;
namespace fs = pecd::fs;
namespace ssl = boost::asio::ssl;

namespace {

struct ClientResult {
    bool ok = false;
    std::string error;
    std::string protocol;
    std::string cipher;
    std::string peer_cn;
};

struct ClientOptions {
    int max_version = 0;  // 0: library default
    int min_version = 0;
    std::string cipher_list;
    std::string sni;
    const Issued* client_cert = nullptr;
};

ClientOptions max_version(int v) {
    ClientOptions o;
    o.max_version = v;
    return o;
}
ClientOptions tls12_suite(const std::string& suite) {
    ClientOptions o = max_version(TLS1_2_VERSION);
    o.cipher_list = suite;
    return o;
}
ClientOptions sni(const std::string& name) {
    ClientOptions o;
    o.sni = name;
    return o;
}
ClientOptions client_certificate(const Issued* c) {
    ClientOptions o;
    o.client_cert = c;
    return o;
}

ClientResult connect_client(unsigned short port, const ClientOptions& o = {}) {
    ClientResult r;
    asio::io_context io;
    ssl::context ctx(ssl::context::tls_client);
    SSL_CTX_set_security_level(ctx.native_handle(), 0);
    if (o.max_version) SSL_CTX_set_max_proto_version(ctx.native_handle(), o.max_version);
    if (o.min_version) SSL_CTX_set_min_proto_version(ctx.native_handle(), o.min_version);
    if (!o.cipher_list.empty()) SSL_CTX_set_cipher_list(ctx.native_handle(), o.cipher_list.c_str());
    if (o.client_cert) {
        SSL_CTX_use_certificate(ctx.native_handle(), o.client_cert->cert.get());
        SSL_CTX_use_PrivateKey(ctx.native_handle(), o.client_cert->key.get());
    }
    ctx.set_verify_mode(ssl::verify_none);
    ssl::stream<tcp::socket> s(io, ctx);
    boost::system::error_code ec;
    s.lowest_layer().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
    if (ec) {
        r.error = ec.message();
        return r;
    }
    timeval tv{5, 0};
    setsockopt(s.lowest_layer().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (!o.sni.empty()) SSL_set_tlsext_host_name(s.native_handle(), o.sni.c_str());
    s.handshake(ssl::stream_base::client, ec);
    if (ec) {
        r.error = ec.message();
        return r;
    }
    std::string line;
    asio::read_until(s, asio::dynamic_buffer(line), '\n', ec);
    // With TLS 1.3 a refused client certificate shows up only at the first read.
    if (ec || !line.starts_with("ok")) {
        r.error = ec ? ec.message() : "no greeting";
        return r;
    }
    r.ok = true;
    r.protocol = SSL_get_version(s.native_handle());
    r.cipher = SSL_get_cipher_name(s.native_handle());
    X509* peer = SSL_get1_peer_certificate(s.native_handle());
    if (peer) {
        r.peer_cn = describe(peer).common_name;
        X509_free(peer);
    }
    return r;
}

class ServerTlsTest : public ::testing::Test {
protected:
    void SetUp() override {
        ca_ = make_ca("Test Root");
        auto leaf = make_leaf("mx.example.test", {"mx.example.test"}, ca_);
        write_pair(dir_ / "server.pem", dir_ / "server.key", leaf);
        settings_.pair = {dir_ / "server.pem", dir_ / "server.key"};
    }
    TempDir dir_;
    Issued ca_;
    ServerTlsSettings settings_;
};

TEST_F(ServerTlsTest, AcceptsTls12AndTls13WithAeadSuites) {
    ServerTls tls(settings_);
    LoopbackServer server(tls);
    auto r13 = connect_client(server.port());
    ASSERT_TRUE(r13.ok) << r13.error;
    EXPECT_EQ(r13.protocol, "TLSv1.3");
    EXPECT_EQ(r13.peer_cn, "mx.example.test");
    auto r12 = connect_client(server.port(), max_version(TLS1_2_VERSION));
    ASSERT_TRUE(r12.ok) << r12.error;
    EXPECT_EQ(r12.protocol, "TLSv1.2");
    EXPECT_TRUE(r12.cipher.starts_with("ECDHE-ECDSA-")) << r12.cipher;
    EXPECT_TRUE(r12.cipher.find("GCM") != std::string::npos ||
                r12.cipher.find("CHACHA20") != std::string::npos)
        << r12.cipher;
}

TEST_F(ServerTlsTest, RefusesTls11AndTls10) {
    ServerTls tls(settings_);
    LoopbackServer server(tls);
    EXPECT_FALSE(connect_client(server.port(), max_version(TLS1_1_VERSION)).ok);
    EXPECT_FALSE(connect_client(server.port(), max_version(TLS1_VERSION)).ok);
}

TEST_F(ServerTlsTest, RefusesCbcAndNonForwardSecretSuitesOnTls12) {
    ServerTls tls(settings_);
    LoopbackServer server(tls);
    for (const char* suite : {"ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES256-SHA", "AES128-GCM-SHA256",
                              "ECDHE-ECDSA-AES128-SHA"}) {
        auto r = connect_client(server.port(), tls12_suite(suite));
        EXPECT_FALSE(r.ok) << suite << " was accepted";
    }
    auto chacha = connect_client(server.port(), tls12_suite("ECDHE-ECDSA-CHACHA20-POLY1305"));
    EXPECT_TRUE(chacha.ok) << chacha.error;
}

TEST_F(ServerTlsTest, MinVersion13RefusesTls12) {
    settings_.min_version = "1.3";
    ServerTls tls(settings_);
    LoopbackServer server(tls);
    EXPECT_FALSE(connect_client(server.port(), max_version(TLS1_2_VERSION)).ok);
    auto r = connect_client(server.port());
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.protocol, "TLSv1.3");
}

TEST_F(ServerTlsTest, RejectsUnknownMinVersion) {
    settings_.min_version = "1.1";
    EXPECT_THROW(ServerTls{settings_}, pecd::Error);
}

TEST_F(ServerTlsTest, OpensslClientSeesNoCompressionAndNoLegacyProtocols) {
    ServerTls tls(settings_);
    LoopbackServer server(tls);
    auto port = std::to_string(server.port());
    auto ok = run_command("echo | timeout 10 openssl s_client -connect 127.0.0.1:" + port + " -tls1_2");
    EXPECT_NE(ok.output.find("Compression: NONE"), std::string::npos) << ok.output;
    EXPECT_NE(ok.output.find("Secure Renegotiation IS supported"), std::string::npos) << ok.output;
    auto old = run_command("echo | timeout 10 openssl s_client -connect 127.0.0.1:" + port +
                           " -tls1_1 -cipher DEFAULT@SECLEVEL=0");
    EXPECT_NE(old.status, 0) << old.output;
}

TEST_F(ServerTlsTest, SniSelectsThePairForTheName) {
    auto other = make_leaf("pec.example.test", {"pec.example.test"}, ca_);
    write_pair(dir_ / "pec.pem", dir_ / "pec.key", other);
    auto wild = make_leaf("*.wild.test", {"*.wild.test"}, ca_);
    write_pair(dir_ / "wild.pem", dir_ / "wild.key", wild);
    settings_.sni["PEC.example.test"] = {dir_ / "pec.pem", dir_ / "pec.key"};
    settings_.sni["*.wild.test"] = {dir_ / "wild.pem", dir_ / "wild.key"};
    ServerTls tls(settings_);
    LoopbackServer server(tls);
    EXPECT_EQ(connect_client(server.port(), sni("pec.example.test")).peer_cn, "pec.example.test");
    EXPECT_EQ(connect_client(server.port(), sni("mx.example.test")).peer_cn, "mx.example.test");
    EXPECT_EQ(connect_client(server.port()).peer_cn, "mx.example.test");
    EXPECT_EQ(connect_client(server.port(), sni("a.wild.test")).peer_cn, "*.wild.test");
    // One label only: a.b.wild.test falls back to the default pair.
    EXPECT_EQ(connect_client(server.port(), sni("a.b.wild.test")).peer_cn, "mx.example.test");
}

TEST_F(ServerTlsTest, ClientCertificateRequiredWhenClientCaSet) {
    auto client_ca = make_ca("Client CA");
    fs::write_file_durable(dir_ / "client-ca.pem", to_pem(client_ca.cert.get()));
    settings_.client_ca = dir_ / "client-ca.pem";
    ServerTls tls(settings_);
    LoopbackServer server(tls);
    EXPECT_FALSE(connect_client(server.port()).ok);
    auto good = make_leaf("api-client", {}, client_ca, Usage::client);
    auto r = connect_client(server.port(), client_certificate(&good));
    EXPECT_TRUE(r.ok) << r.error;
    auto stranger_ca = make_ca("Other CA");
    auto bad = make_leaf("intruder", {}, stranger_ca, Usage::client);
    EXPECT_FALSE(connect_client(server.port(), client_certificate(&bad)).ok);
}

TEST_F(ServerTlsTest, ReloadInstallsAValidNewPairAndKeepsOldContextsAlive) {
    ServerTls tls(settings_);
    LoopbackServer server(tls);
    auto before = tls.current();
    EXPECT_FALSE(tls.reload_if_changed());
    auto renewed = make_leaf("renewed.example.test", {"renewed.example.test"}, ca_);
    write_pair(dir_ / "server.pem", dir_ / "server.key", renewed);
    EXPECT_TRUE(tls.reload_if_changed());
    EXPECT_FALSE(tls.reload_if_changed());
    EXPECT_EQ(connect_client(server.port()).peer_cn, "renewed.example.test");
    EXPECT_NE(before.get(), tls.current().get());
    // The old context is still a working context for sessions that hold it.
    X509* old_leaf = SSL_CTX_get0_certificate(before->native_handle());
    ASSERT_NE(old_leaf, nullptr);
    EXPECT_EQ(describe(old_leaf).common_name, "mx.example.test");
}

TEST_F(ServerTlsTest, ReloadRefusesMismatchedKeyAndKeepsServing) {
    ServerTls tls(settings_);
    LoopbackServer server(tls);
    auto a = make_leaf("a.example.test", {"a.example.test"}, ca_);
    auto b = make_leaf("b.example.test", {"b.example.test"}, ca_);
    fs::write_file_durable(dir_ / "server.pem", to_pem(a.cert.get()));
    fs::write_file_durable(dir_ / "server.key", private_key_to_pem(b.key.get()), 0600);
    EXPECT_FALSE(tls.reload_if_changed());
    EXPECT_EQ(connect_client(server.port()).peer_cn, "mx.example.test");
    // Completing the pair afterwards (key written second) is picked up.
    fs::write_file_durable(dir_ / "server.key", private_key_to_pem(a.key.get()), 0600);
    EXPECT_TRUE(tls.reload_if_changed());
    EXPECT_EQ(connect_client(server.port()).peer_cn, "a.example.test");
}

TEST_F(ServerTlsTest, ReloadRefusesUnparsableAndExpiredCertificates) {
    ServerTls tls(settings_);
    LoopbackServer server(tls);
    fs::write_file_durable(dir_ / "server.pem", "-----BEGIN CERTIFICATE-----\nnot base64\n");
    EXPECT_FALSE(tls.reload_if_changed());
    EXPECT_EQ(connect_client(server.port()).peer_cn, "mx.example.test");
    auto expired =
        make_leaf("old.example.test", {"old.example.test"}, ca_, Usage::server,
                  std::chrono::system_clock::now() - std::chrono::days(100), std::chrono::days(30));
    write_pair(dir_ / "server.pem", dir_ / "server.key", expired);
    EXPECT_FALSE(tls.reload_if_changed());
    EXPECT_EQ(connect_client(server.port()).peer_cn, "mx.example.test");
    EXPECT_GT(tls.days_to_expiry(), 80);
}

TEST_F(ServerTlsTest, CertificateNotValidYetIsServedFromItsStart) {
    // A renewal installed ahead of its notBefore: peers would refuse it, so the previous
    // certificate stays until then, and the same files are taken at that moment without
    // being touched again.
    ServerTls tls(settings_);
    LoopbackServer server(tls);
    auto starts = std::chrono::system_clock::now() + std::chrono::seconds(3);
    // make_leaf backdates by an hour (clock skew); this one starts in 3 seconds.
    auto next = make_leaf("next.example.test", {"next.example.test"}, ca_, Usage::server,
                          starts + std::chrono::hours(1));
    write_pair(dir_ / "server.pem", dir_ / "server.key", next);
    EXPECT_FALSE(tls.reload_if_changed());
    EXPECT_EQ(connect_client(server.port()).peer_cn, "mx.example.test");
    EXPECT_FALSE(tls.reload_if_changed()) << "tried again before its start";
    std::this_thread::sleep_until(starts + std::chrono::seconds(1));
    EXPECT_TRUE(tls.reload_if_changed());
    EXPECT_EQ(connect_client(server.port()).peer_cn, "next.example.test");

    // At start there is no previous certificate: the error names the file and the day.
    settings_.pair = {dir_ / "later.pem", dir_ / "later.key"};
    write_pair(settings_.pair.certificate, settings_.pair.key,
               make_leaf("later.example.test", {"later.example.test"}, ca_, Usage::server,
                         std::chrono::system_clock::now() + std::chrono::days(2)));
    try {
        ServerTls later(settings_);
        FAIL() << "served a certificate that is not valid yet";
    } catch (const pecd::Error& e) {
        EXPECT_NE(std::string(e.what()).find("later.pem: certificate not valid until 20"), std::string::npos)
            << e.what();
    }
}

TEST_F(ServerTlsTest, ConstructorNamesTheBrokenFile) {
    fs::write_file_durable(dir_ / "garbage.pem", "hello");
    settings_.pair.certificate = dir_ / "garbage.pem";
    try {
        ServerTls tls(settings_);
        FAIL() << "accepted a file without a certificate";
    } catch (const pecd::Error& e) {
        EXPECT_NE(std::string(e.what()).find("garbage.pem"), std::string::npos) << e.what();
    }
}

TEST(EnsureSelfSigned, CreatesCaAndServerCertificateWithPrivateKeys) {
    TempDir dir;
    auto pair = ensure_self_signed(dir / "tls", {"mail.example.test", "192.0.2.7"});
    struct stat st {};
    ASSERT_EQ(::stat(pair.key.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    ASSERT_EQ(::stat((dir / "tls" / "ca.key").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);

    auto chain = load_chain_file(pair.certificate.string());
    auto info = describe(chain.front().get());
    EXPECT_EQ(info.common_name, "mail.example.test");
    EXPECT_EQ(info.dns_names, std::vector<std::string>{"mail.example.test"});
    EXPECT_EQ(info.ip_addresses, (std::vector<std::string>{"192.0.2.7", "127.0.0.1", "::1"}));
    EXPECT_EQ(info.key_description, "EC P-256");
    EXPECT_FALSE(info.is_ca);
    EXPECT_EQ(X509_check_purpose(chain.front().get(), X509_PURPOSE_SSL_SERVER, 0), 1);

    // openssl verifies the chain and the EKU independently.
    auto v = run_command("openssl verify -purpose sslserver -CAfile " + (dir / "tls" / "ca.pem").string() +
                         " " + pair.certificate.string());
    EXPECT_EQ(v.status, 0) << v.output;

    // A second call keeps the files.
    auto pem_before = pecd::fs::read_file(pair.certificate);
    ensure_self_signed(dir / "tls", {"other.example.test"});
    EXPECT_EQ(pecd::fs::read_file(pair.certificate), pem_before);
    ServerTlsSettings settings;
    settings.pair = pair;
    ServerTls tls(settings);
    EXPECT_GT(tls.days_to_expiry(), 800);
}

TEST(EnsureSelfSigned, RsaKeysOnRequest) {
    TempDir dir;
    auto pair = ensure_self_signed(dir / "tls", {"localhost"}, KeyType::rsa2048);
    auto chain = load_chain_file(pair.certificate.string());
    EXPECT_EQ(describe(chain.front().get()).key_description, "RSA 2048");
}

}  // namespace
