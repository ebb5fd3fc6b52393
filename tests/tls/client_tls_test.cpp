// client_tls_test.cpp - outbound TLS policies, RFC 6125 name checks, chain reports, and
// ClientTls against a loopback TLS server (trust, names, session reuse, client certificate)
#include "tls/client_tls.hpp"

#include <gtest/gtest.h>

#include <thread>

#include "core/error.hpp"
#include "tls_test_support.hpp"

using namespace pecd::tls;
using namespace pecd::tls::test;
namespace fs = pecd::fs;
namespace ssl = boost::asio::ssl;

namespace {

TEST(Policy, ParsesAndPrints) {
    for (auto p : {Policy::none, Policy::may, Policy::encrypt, Policy::verify, Policy::secure})
        EXPECT_EQ(parse_policy(to_string(p)), p);
    EXPECT_EQ(parse_policy(" Verify "), Policy::verify);
    try {
        parse_policy("dane");
        FAIL();
    } catch (const pecd::Error& e) {
        EXPECT_NE(std::string(e.what()).find("'dane'"), std::string::npos);
    }
}

TEST(PolicyMap, ExactThenParentThenDefault) {
    PolicyMap map(DestinationPolicy{Policy::may, {}});
    map.set("Bank.Example", {Policy::secure, {"mx.bank.example"}});
    map.set(".gov.example", {Policy::verify, {}});
    map.set("plain.example", {Policy::none, {}});
    EXPECT_EQ(map.lookup("bank.example.").policy, Policy::secure);
    EXPECT_EQ(map.lookup("bank.example").match_names, std::vector<std::string>{"mx.bank.example"});
    EXPECT_EQ(map.lookup("mail.gov.example").policy, Policy::verify);
    EXPECT_EQ(map.lookup("a.b.gov.example").policy, Policy::verify);
    EXPECT_EQ(map.lookup("gov.example").policy, Policy::may);  // ".x" is below x only
    EXPECT_EQ(map.lookup("other.example").policy, Policy::may);
    EXPECT_EQ(map.lookup("sub.bank.example").policy, Policy::may);
}

TEST(PolicyMap, PecProvidersAreAtLeastVerify) {
    PolicyMap map(DestinationPolicy{Policy::may, {}});
    map.set("plain.example", {Policy::none, {}});
    map.set("strict.example", {Policy::secure, {}});
    EXPECT_EQ(map.lookup("pec.example", true).policy, Policy::verify);
    EXPECT_EQ(map.lookup("plain.example", true).policy, Policy::verify);
    EXPECT_EQ(map.lookup("strict.example", true).policy, Policy::secure);
    EXPECT_EQ(map.lookup("plain.example", false).policy, Policy::none);
}

TEST(NameMatch, ExactAndCaseInsensitive) {
    EXPECT_TRUE(dns_name_matches("MX.Example.Test", "mx.example.test"));
    EXPECT_TRUE(dns_name_matches("mx.example.test.", "mx.example.test"));
    EXPECT_FALSE(dns_name_matches("mx.example.test", "mx2.example.test"));
    EXPECT_FALSE(dns_name_matches("example.test", "mx.example.test"));
    EXPECT_FALSE(dns_name_matches("", "mx.example.test"));
}

TEST(NameMatch, WildcardCoversExactlyOneLeftMostLabel) {
    EXPECT_TRUE(dns_name_matches("*.example.test", "a.example.test"));
    EXPECT_FALSE(dns_name_matches("*.example.test", "a.b.example.test"));
    EXPECT_FALSE(dns_name_matches("*.example.test", "example.test"));
    EXPECT_FALSE(dns_name_matches("*.example.test", ".example.test.evil"));
}

TEST(NameMatch, NoPartialNestedOrTopLevelWildcards) {
    EXPECT_FALSE(dns_name_matches("f*.example.test", "foo.example.test"));
    EXPECT_FALSE(dns_name_matches("*oo.example.test", "foo.example.test"));
    EXPECT_FALSE(dns_name_matches("a.*.example.test", "a.b.example.test"));
    EXPECT_FALSE(dns_name_matches("*.*.example.test", "a.b.example.test"));
    EXPECT_FALSE(dns_name_matches("*.test", "example.test"));
    EXPECT_FALSE(dns_name_matches("*", "localhost"));
}

TEST(NameMatch, DotReferenceMeansAnyNameBelow) {
    EXPECT_TRUE(dns_name_matches("mx.example.test", ".example.test"));
    EXPECT_TRUE(dns_name_matches("a.b.example.test", ".example.test"));
    EXPECT_TRUE(dns_name_matches("*.example.test", ".example.test"));
    EXPECT_TRUE(dns_name_matches("*.mx.example.test", ".example.test"));
    EXPECT_FALSE(dns_name_matches("example.test", ".example.test"));
    EXPECT_FALSE(dns_name_matches("badexample.test", ".example.test"));
}

TEST(NameMatch, SanBeforeCnAndCnOnlyWithoutDnsSan) {
    auto m = match_names({"mx.example.test"}, "other.example.test", {"other.example.test"});
    EXPECT_FALSE(m.matched);
    m = match_names({}, "other.example.test", {"other.example.test"});
    EXPECT_TRUE(m.matched);
    EXPECT_TRUE(m.from_common_name);
    m = match_names({"a.example.test", "*.example.test"}, "", {"z.example.test"});
    ASSERT_TRUE(m.matched);
    EXPECT_EQ(m.presented, "*.example.test");
    EXPECT_EQ(m.reference, "z.example.test");
}

TEST(NameMatch, ReferenceNamesPerPolicy) {
    EXPECT_EQ(reference_names({Policy::verify, {}}, "MX1.Provider.Test", "dest.test"),
              std::vector<std::string>{"mx1.provider.test"});
    EXPECT_EQ(reference_names({Policy::secure, {}}, "mx1.provider.test", "Dest.Test"),
              (std::vector<std::string>{"dest.test", ".dest.test"}));
    EXPECT_EQ(reference_names({Policy::secure, {"mail.dest.test"}}, "mx1.provider.test", "dest.test"),
              std::vector<std::string>{"mail.dest.test"});
}

TEST(Decisions, StartTlsPerPolicy) {
    EXPECT_EQ(decide_starttls(Policy::none, true).step, TlsStep::plain);
    EXPECT_EQ(decide_starttls(Policy::may, true).step, TlsStep::starttls);
    EXPECT_EQ(decide_starttls(Policy::may, false).step, TlsStep::plain);
    for (auto p : {Policy::encrypt, Policy::verify, Policy::secure}) {
        EXPECT_EQ(decide_starttls(p, true).step, TlsStep::starttls);
        auto d = decide_starttls(p, false);
        EXPECT_EQ(d.step, TlsStep::defer);
        EXPECT_NE(d.reason.find("STARTTLS"), std::string::npos);
    }
    EXPECT_EQ(decide_after_handshake_failure(Policy::may, "x").step, TlsStep::plain);
    EXPECT_EQ(decide_after_handshake_failure(Policy::encrypt, "x").step, TlsStep::defer);
    EXPECT_EQ(decide_after_handshake_failure(Policy::secure, "x").step, TlsStep::defer);
}

PeerVerification peer(bool chain_ok, bool name_ok) {
    PeerVerification v;
    v.tls = true;
    v.protocol = "TLSv1.3";
    v.cipher = "TLS_AES_256_GCM_SHA384";
    v.chain_ok = chain_ok;
    v.chain_error = chain_ok ? "" : "self-signed certificate";
    v.name = name_ok ? NameMatch{true, "mx.example.test", "mx.example.test", false} : NameMatch{};
    v.certificate_names = {"wrong.example.test"};
    v.reference_names = {"mx.example.test"};
    return v;
}

TEST(Decisions, JudgePeerPerPolicy) {
    PeerVerification plain;
    EXPECT_TRUE(judge_peer(Policy::may, plain).deliver);
    EXPECT_FALSE(judge_peer(Policy::encrypt, plain).deliver);
    EXPECT_FALSE(judge_peer(Policy::verify, plain).deliver);
    for (auto p : {Policy::may, Policy::encrypt}) {
        EXPECT_TRUE(judge_peer(p, peer(false, false)).deliver);
        EXPECT_TRUE(judge_peer(p, peer(true, true)).deliver);
    }
    for (auto p : {Policy::verify, Policy::secure}) {
        auto untrusted = judge_peer(p, peer(false, true));
        EXPECT_FALSE(untrusted.deliver);
        EXPECT_NE(untrusted.reason.find("self-signed"), std::string::npos);
        auto wrong_name = judge_peer(p, peer(true, false));
        EXPECT_FALSE(wrong_name.deliver);
        EXPECT_NE(wrong_name.reason.find("wrong.example.test"), std::string::npos);
        EXPECT_TRUE(judge_peer(p, peer(true, true)).deliver);
    }
    auto line = describe_tls(Policy::verify, peer(true, true));
    EXPECT_NE(line.find("tls_policy=verify"), std::string::npos);
    EXPECT_NE(line.find("TLSv1.3"), std::string::npos);
    EXPECT_NE(line.find("chain=trusted"), std::string::npos);
}

struct Pki {
    Issued root = make_ca("Test Root");
    Issued intermediate = make_ca("Test Intermediate", root.cert.get(), root.key.get());
    Issued leaf = make_leaf("mx.example.test", {"mx.example.test"}, intermediate);
};

TEST(ChainReport, CompleteWhenEveryIntermediateIsSent) {
    Pki pki;
    auto r = chain_report({pki.leaf.cert.get(), pki.intermediate.cert.get()},
                          {pki.leaf.cert.get(), pki.intermediate.cert.get(), pki.root.cert.get()});
    EXPECT_TRUE(r.complete) << r.missing;
    EXPECT_EQ(r.sent_subjects.size(), 2u);
}

TEST(ChainReport, NamesTheIntermediateThatWasNotSent) {
    Pki pki;
    auto r = chain_report({pki.leaf.cert.get()},
                          {pki.leaf.cert.get(), pki.intermediate.cert.get(), pki.root.cert.get()});
    EXPECT_FALSE(r.complete);
    EXPECT_NE(r.missing.find("Test Intermediate"), std::string::npos) << r.missing;
    auto unverified = chain_report({pki.leaf.cert.get()}, {});
    EXPECT_FALSE(unverified.complete);
    EXPECT_NE(unverified.missing.find("issuer not sent"), std::string::npos) << unverified.missing;
    EXPECT_NE(unverified.missing.find("Test Intermediate"), std::string::npos) << unverified.missing;
}

TEST(ChainReport, SelfSignedIsAnUntrustedRoot) {
    auto self = make_ca("lonely.example.test");
    auto r = chain_report({self.cert.get()}, {});
    EXPECT_FALSE(r.complete);
    EXPECT_NE(r.missing.find("root not trusted"), std::string::npos) << r.missing;
}

// --- against a live TLS server ---

struct Connection {
    PeerVerification verification;
    ChainReport chain;
    std::string error;
    std::string client_cn;  // the client certificate the server saw, if any
};

Connection connect_with(ClientTls& client, unsigned short port, const std::string& host,
                        const std::vector<std::string>& references) {
    Connection c;
    asio::io_context io;
    ssl::stream<tcp::socket> s(io, client.context());
    boost::system::error_code ec;
    s.lowest_layer().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
    timeval tv{5, 0};
    setsockopt(s.lowest_layer().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    client.prepare(s.native_handle(), host, host + ":" + std::to_string(port));
    if (!ec) s.handshake(ssl::stream_base::client, ec);
    std::string line;
    if (!ec) asio::read_until(s, asio::dynamic_buffer(line), '\n', ec);
    if (ec) {
        c.error = ec.message();
        return c;
    }
    if (line.starts_with("ok ")) c.client_cn = line.substr(3, line.size() - 4);
    c.verification = client.inspect(s.native_handle(), references);
    c.chain = client.inspect_chain(s.native_handle());
    return c;
}

class LiveClientTls : public ::testing::Test {
protected:
    void serve(const Issued& leaf, std::vector<X509*> chain) {
        write_pair(dir_ / "server.pem", dir_ / "server.key", leaf, std::move(chain));
        ServerTlsSettings settings;
        settings.pair = {dir_ / "server.pem", dir_ / "server.key"};
        settings.client_ca = client_ca_;
        server_tls_ = std::make_unique<ServerTls>(settings);
        server_ = std::make_unique<LoopbackServer>(*server_tls_);
    }
    ClientTlsSettings trusting(std::vector<X509*> roots) {
        std::string pem;
        for (X509* r : roots) pem += to_pem(r);
        fs::write_file_durable(dir_ / "trust.pem", pem);
        ClientTlsSettings s;
        s.ca_file = dir_ / "trust.pem";
        return s;
    }
    TempDir dir_;
    Pki pki_;
    std::filesystem::path client_ca_;
    std::unique_ptr<ServerTls> server_tls_;
    std::unique_ptr<LoopbackServer> server_;
};

TEST_F(LiveClientTls, ValidChainVerifiesAndSessionsAreReused) {
    serve(pki_.leaf, {pki_.intermediate.cert.get()});
    ClientTls client(trusting({pki_.root.cert.get()}));
    auto first = connect_with(client, server_->port(), "mx.example.test", {"mx.example.test"});
    ASSERT_TRUE(first.error.empty()) << first.error;
    EXPECT_TRUE(first.verification.chain_ok) << first.verification.chain_error;
    EXPECT_TRUE(first.verification.name.matched);
    EXPECT_FALSE(first.verification.session_reused);
    EXPECT_TRUE(first.chain.complete) << first.chain.missing;
    EXPECT_TRUE(judge_peer(Policy::secure, first.verification).deliver);
    EXPECT_GE(client.cached_sessions(), 1u);
    auto second = connect_with(client, server_->port(), "mx.example.test", {"mx.example.test"});
    ASSERT_TRUE(second.error.empty()) << second.error;
    EXPECT_TRUE(second.verification.session_reused);
    // A resumed session keeps the original verification result and certificate.
    EXPECT_TRUE(second.verification.chain_ok);
    EXPECT_TRUE(second.verification.name.matched);
    // Every later connection resumes too (TLS 1.3 tickets are replenished, each used once).
    for (int i = 0; i < 5; ++i) {
        auto more = connect_with(client, server_->port(), "mx.example.test", {"mx.example.test"});
        ASSERT_TRUE(more.error.empty()) << more.error;
        EXPECT_TRUE(more.verification.session_reused) << "connection " << i + 3;
    }
    // Another destination does not get this one's sessions.
    auto other = connect_with(client, server_->port(), "other.example.test", {"mx.example.test"});
    EXPECT_FALSE(other.verification.session_reused);
}

TEST_F(LiveClientTls, NoReuseWhenDisabled) {
    serve(pki_.leaf, {pki_.intermediate.cert.get()});
    auto settings = trusting({pki_.root.cert.get()});
    settings.reuse_sessions = false;
    ClientTls client(settings);
    connect_with(client, server_->port(), "mx.example.test", {"mx.example.test"});
    auto second = connect_with(client, server_->port(), "mx.example.test", {"mx.example.test"});
    ASSERT_TRUE(second.error.empty()) << second.error;
    EXPECT_FALSE(second.verification.session_reused);
}

TEST_F(LiveClientTls, MissingIntermediateFailsVerificationAndIsNamed) {
    serve(pki_.leaf, {});
    ClientTls client(trusting({pki_.root.cert.get()}));
    auto c = connect_with(client, server_->port(), "mx.example.test", {"mx.example.test"});
    ASSERT_TRUE(c.error.empty()) << c.error;
    EXPECT_FALSE(c.verification.chain_ok);
    EXPECT_FALSE(judge_peer(Policy::verify, c.verification).deliver);
    EXPECT_TRUE(judge_peer(Policy::encrypt, c.verification).deliver);
    EXPECT_FALSE(c.chain.complete);
    EXPECT_NE(c.chain.missing.find("Test Intermediate"), std::string::npos) << c.chain.missing;
}

TEST_F(LiveClientTls, IntermediateKnownLocallyStillReportedAsNotSent) {
    serve(pki_.leaf, {});
    ClientTls client(trusting({pki_.root.cert.get(), pki_.intermediate.cert.get()}));
    auto c = connect_with(client, server_->port(), "mx.example.test", {"mx.example.test"});
    ASSERT_TRUE(c.error.empty()) << c.error;
    EXPECT_TRUE(c.verification.chain_ok);
    EXPECT_FALSE(c.chain.complete);
    EXPECT_NE(c.chain.missing.find("intermediate not sent"), std::string::npos) << c.chain.missing;
}

TEST_F(LiveClientTls, WrongNameAndUntrustedRoot) {
    auto stranger = make_ca("Stranger Root");
    auto wrong = make_leaf("other.example.test", {"other.example.test"}, pki_.intermediate);
    serve(wrong, {pki_.intermediate.cert.get()});
    ClientTls client(trusting({pki_.root.cert.get()}));
    auto c = connect_with(client, server_->port(), "mx.example.test", {"mx.example.test"});
    ASSERT_TRUE(c.error.empty()) << c.error;
    EXPECT_TRUE(c.verification.chain_ok);
    EXPECT_FALSE(c.verification.name.matched);
    EXPECT_FALSE(judge_peer(Policy::verify, c.verification).deliver);

    ClientTls other(trusting({stranger.cert.get()}));
    auto u = connect_with(other, server_->port(), "other.example.test", {"other.example.test"});
    ASSERT_TRUE(u.error.empty()) << u.error;
    EXPECT_FALSE(u.verification.chain_ok);
    EXPECT_TRUE(u.verification.name.matched);
    EXPECT_FALSE(u.chain.complete);
}

TEST_F(LiveClientTls, PresentsClientCertificateWhenConfigured) {
    auto client_ca = make_ca("Client CA");
    fs::write_file_durable(dir_ / "client-ca.pem", to_pem(client_ca.cert.get()));
    client_ca_ = dir_ / "client-ca.pem";
    serve(pki_.leaf, {pki_.intermediate.cert.get()});
    ClientTls anonymous(trusting({pki_.root.cert.get()}));
    EXPECT_FALSE(connect_with(anonymous, server_->port(), "mx.example.test", {}).error.empty());
    auto mine = make_leaf("relay.example.test", {"relay.example.test"}, client_ca, Usage::client);
    write_pair(dir_ / "client.pem", dir_ / "client.key", mine);
    auto settings = trusting({pki_.root.cert.get()});
    settings.client_certificate = CertificatePair{dir_ / "client.pem", dir_ / "client.key"};
    ClientTls client(settings);
    auto c = connect_with(client, server_->port(), "mx.example.test", {"mx.example.test"});
    EXPECT_TRUE(c.error.empty()) << c.error;
    EXPECT_EQ(c.client_cn, "relay.example.test");
}

TEST_F(LiveClientTls, ClientCertificateRenewedWithoutRestart) {
    auto client_ca = make_ca("Client CA");
    fs::write_file_durable(dir_ / "client-ca.pem", to_pem(client_ca.cert.get()));
    client_ca_ = dir_ / "client-ca.pem";
    serve(pki_.leaf, {pki_.intermediate.cert.get()});
    const auto cert = dir_ / "client.pem", key = dir_ / "client.key";
    auto leaf = [&](const std::string& cn, pecd::TimePoint now = std::chrono::system_clock::now(),
                    std::chrono::days validity = std::chrono::days(90)) {
        return make_leaf(cn, {cn}, client_ca, Usage::client, now, validity);
    };
    write_pair(cert, key, leaf("first.example.test"));
    auto settings = trusting({pki_.root.cert.get()});
    settings.client_certificate = CertificatePair{cert, key};
    ClientTls client(settings);
    auto connect = [&] {
        return connect_with(client, server_->port(), "mx.example.test", {"mx.example.test"});
    };
    EXPECT_EQ(connect().client_cn, "first.example.test");
    EXPECT_TRUE(connect().verification.session_reused);
    EXPECT_FALSE(client.reload_if_changed()) << "nothing changed";

    // A renewal written in place is presented by the next handshake, not by a session
    // resumed from the old one (the server would take it for the old certificate).
    write_pair(cert, key, leaf("second.example.test"));
    EXPECT_TRUE(client.reload_if_changed());
    EXPECT_EQ(client.cached_sessions(), 0u);
    auto renewed = connect();
    EXPECT_EQ(renewed.client_cn, "second.example.test");
    EXPECT_FALSE(renewed.verification.session_reused);
    EXPECT_TRUE(connect().verification.session_reused) << "sessions of the new certificate are reused";
    EXPECT_FALSE(client.reload_if_changed());

    // Broken replacements are refused once each; the pair in use stays.
    auto other = leaf("third.example.test");
    fs::write_file_durable(cert, to_pem(other.cert.get()));  // its key is not in the key file
    EXPECT_FALSE(client.reload_if_changed());
    EXPECT_FALSE(client.reload_if_changed()) << "the same broken files are not read again";
    EXPECT_EQ(connect().client_cn, "second.example.test");
    write_pair(cert, key,
               leaf("expired.example.test", std::chrono::system_clock::now() - std::chrono::days(30),
                    std::chrono::days(2)));
    EXPECT_FALSE(client.reload_if_changed());
    EXPECT_EQ(connect().client_cn, "second.example.test");

    // One deployed ahead of its start is taken at its start, the files untouched since.
    auto starts = std::chrono::system_clock::now() + std::chrono::seconds(2);
    write_pair(cert, key,
               leaf("next.example.test", starts + std::chrono::hours(1)));  // make_leaf backdates 1 h
    EXPECT_FALSE(client.reload_if_changed());
    EXPECT_FALSE(client.reload_if_changed()) << "tried again before its start";
    EXPECT_EQ(connect().client_cn, "second.example.test");
    std::this_thread::sleep_until(starts + std::chrono::seconds(1));
    EXPECT_TRUE(client.reload_if_changed());
    EXPECT_EQ(connect().client_cn, "next.example.test");
}

TEST_F(LiveClientTls, CaFileRenewedWithoutRestart) {
    serve(pki_.leaf, {pki_.intermediate.cert.get()});
    auto stranger = make_ca("Stranger Root");
    ClientTls client(trusting({stranger.cert.get()}));
    auto connect = [&] {
        return connect_with(client, server_->port(), "mx.example.test", {"mx.example.test"});
    };
    EXPECT_FALSE(connect().verification.chain_ok);
    EXPECT_FALSE(client.reload_if_changed()) << "nothing changed";

    trusting({pki_.root.cert.get()});  // the CA file rewritten in place
    EXPECT_TRUE(client.reload_if_changed());
    auto trusted = connect();
    ASSERT_TRUE(trusted.error.empty()) << trusted.error;
    EXPECT_TRUE(trusted.verification.chain_ok) << trusted.verification.chain_error;
    EXPECT_TRUE(trusted.chain.complete) << trusted.chain.missing;  // tls-check's view uses the new roots too
    EXPECT_TRUE(connect().verification.session_reused);

    fs::write_file_durable(dir_ / "trust.pem", "not a certificate\n");
    EXPECT_FALSE(client.reload_if_changed());
    EXPECT_FALSE(client.reload_if_changed()) << "the same broken file is not read again";
    EXPECT_TRUE(connect().verification.chain_ok) << "the roots in use were dropped";

    // A root taken out of the file: a session verified against it is not resumed.
    trusting({stranger.cert.get()});
    EXPECT_TRUE(client.reload_if_changed());
    auto distrusted = connect();
    EXPECT_FALSE(distrusted.verification.session_reused);
    EXPECT_FALSE(distrusted.verification.chain_ok);
}

TEST(ClientTlsSettingsCheck, RefusesClientCertificateOutsideItsValidity) {
    TempDir dir;
    auto ca = make_ca("CA");
    ClientTlsSettings s;
    s.client_certificate = CertificatePair{dir / "c.pem", dir / "c.key"};
    write_pair(dir / "c.pem", dir / "c.key",
               make_leaf("old", {"old.test"}, ca, Usage::client,
                         std::chrono::system_clock::now() - std::chrono::days(10), std::chrono::days(1)));
    try {
        ClientTls client(s);
        FAIL() << "took an expired client certificate";
    } catch (const pecd::Error& e) {
        EXPECT_NE(std::string(e.what()).find("c.pem: certificate expired"), std::string::npos) << e.what();
    }
    write_pair(dir / "c.pem", dir / "c.key",
               make_leaf("later", {"later.test"}, ca, Usage::client,
                         std::chrono::system_clock::now() + std::chrono::days(2)));
    EXPECT_THROW(ClientTls{s}, NotYetValid);
}

TEST(ClientTlsSettingsCheck, RejectsMismatchedClientKey) {
    TempDir dir;
    auto ca = make_ca("CA");
    auto a = make_leaf("a", {"a.test"}, ca, Usage::client);
    auto b = make_leaf("b", {"b.test"}, ca, Usage::client);
    fs::write_file_durable(dir / "a.pem", to_pem(a.cert.get()));
    fs::write_file_durable(dir / "b.key", private_key_to_pem(b.key.get()), 0600);
    ClientTlsSettings s;
    s.client_certificate = CertificatePair{dir / "a.pem", dir / "b.key"};
    EXPECT_THROW(ClientTls{s}, pecd::Error);
}

}  // namespace
