// tls_check_test.cpp - `pecctl tls-check` and the outbound TLS policies against real peers
//
// Peers on 127.0.0.1: a Postfix instance with one smtpd per case (no STARTTLS,
// self-signed, wrong name, missing intermediate, valid chain, wildcard, implicit TLS) and
// `openssl s_server` (implicit TLS). The CLI binary is run with --json and its verdicts
// are asserted check by check; the policy matrix runs the SMTP STARTTLS dialogue per
// policy and asserts deliver or defer.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "postfix_peer.hpp"
#include "tls/smtp_probe.hpp"

using namespace pecd::tls;
using namespace pecd::tls::test;
using nlohmann::json;
namespace fs = pecd::fs;

namespace {

const std::string kPecctl = std::string(PECD_BINARY_DIR) + "/app/pecctl/pecctl";

struct Peers {
    TempDir dir;
    Issued root = make_ca("Peer Test Root");
    Issued intermediate = make_ca("Peer Test Intermediate", root.cert.get(), root.key.get());
    std::unique_ptr<PostfixPeer> postfix;
    std::unique_ptr<Process> s_server_valid;
    std::unique_ptr<Process> s_server_missing;
    unsigned short s_valid_port = 0, s_missing_port = 0;

    std::vector<std::string> pair_options(const std::string& name, const Issued& leaf,
                                          std::vector<X509*> chain) {
        auto cert = dir / (name + ".pem"), key = dir / (name + ".key");
        write_pair(cert, key, leaf, std::move(chain));
        return {"smtpd_tls_cert_file=" + cert.string(), "smtpd_tls_key_file=" + key.string()};
    }

    Peers() {
        fs::write_file_durable(dir / "root.pem", to_pem(root.cert.get()));
        auto self = make_leaf("mx.example.test", {"mx.example.test"}, root);
        // A self-signed leaf: issued by its own key.
        CertificateSpec ss;
        ss.common_name = "mx.example.test";
        ss.dns_names = {"mx.example.test"};
        Issued selfsigned;
        selfsigned.key = generate_key(KeyType::ec_p256);
        selfsigned.cert = issue_certificate(ss, selfsigned.key.get(), nullptr, selfsigned.key.get(),
                                            std::chrono::system_clock::now());
        auto valid = make_leaf("mx.example.test", {"mx.example.test"}, intermediate);
        auto wrong = make_leaf("mail.elsewhere.test", {"mail.elsewhere.test"}, intermediate);
        auto wildcard = make_leaf("*.example.test", {"*.example.test"}, intermediate);
        std::vector<PostfixService> services{
            {"plain", {"smtpd_tls_security_level=none"}},
            {"selfsigned", pair_options("selfsigned", selfsigned, {})},
            {"wrongname", pair_options("wrongname", wrong, {intermediate.cert.get()})},
            {"missing", pair_options("missing", valid, {})},
            {"valid", pair_options("valid", valid, {intermediate.cert.get()})},
            {"wildcard", pair_options("wildcard", wildcard, {intermediate.cert.get()})},
        };
        auto implicit = pair_options("implicit", valid, {intermediate.cert.get()});
        implicit.push_back("smtpd_tls_wrappermode=yes");
        implicit.push_back("smtpd_tls_security_level=encrypt");
        services.push_back({"implicit", implicit});
        postfix = std::make_unique<PostfixPeer>(services, "mx.example.test");

        fs::write_file_durable(dir / "intermediate.pem", to_pem(intermediate.cert.get()));
        s_valid_port = free_port();
        s_server_valid = std::make_unique<Process>(
            std::vector<std::string>{"openssl", "s_server", "-quiet", "-accept",
                                     "127.0.0.1:" + std::to_string(s_valid_port), "-cert",
                                     (dir / "valid.pem").string(), "-key", (dir / "valid.key").string(),
                                     "-cert_chain", (dir / "intermediate.pem").string()},
            dir / "s_server_valid.log");
        s_missing_port = free_port();
        s_server_missing = std::make_unique<Process>(
            std::vector<std::string>{"openssl", "s_server", "-quiet", "-accept",
                                     "127.0.0.1:" + std::to_string(s_missing_port), "-cert",
                                     (dir / "missing.pem").string(), "-key", (dir / "missing.key").string()},
            dir / "s_server_missing.log");
    }
};

class TlsCheck : public ::testing::Test {
protected:
    static void SetUpTestSuite() { peers_ = new Peers(); }
    static void TearDownTestSuite() {
        delete peers_;
        peers_ = nullptr;
    }
    void SetUp() override {
        ASSERT_TRUE(peers_->postfix->error().empty()) << peers_->postfix->error();
        ASSERT_TRUE(wait_for_port(peers_->s_valid_port)) << "openssl s_server did not start";
        ASSERT_TRUE(wait_for_port(peers_->s_missing_port)) << "openssl s_server did not start";
    }

    struct Run {
        int status = -1;
        json out;
        std::map<std::string, std::string> verdicts;
        std::string raw;
    };
    Run check(const std::string& target, const std::string& extra = "") {
        Run r;
        auto c = run_command("timeout 60 " + kPecctl + " tls-check " + target + " --json --timeout 3 --ca " +
                             (peers_->dir / "root.pem").string() + " " + extra);
        r.status = c.status;
        r.raw = c.output;
        auto brace = c.output.find('{');
        if (brace == std::string::npos) return r;
        r.out = json::parse(c.output.substr(brace), nullptr, false);
        if (r.out.is_discarded()) return r;
        for (const auto& ch : r.out["checks"]) r.verdicts[ch["name"]] = ch["verdict"];
        return r;
    }
    std::string postfix(const std::string& name) {
        return "127.0.0.1:" + std::to_string(peers_->postfix->port(name));
    }
    static Peers* peers_;
};
Peers* TlsCheck::peers_ = nullptr;

TEST_F(TlsCheck, ValidChainPassesEveryCheck) {
    auto r = check(postfix("valid"), "--name mx.example.test");
    EXPECT_EQ(r.status, 0) << r.raw;
    EXPECT_EQ(r.out["verdict"], "ok") << r.raw;
    EXPECT_EQ(r.out["banner_host"], "mx.example.test");
    for (const char* c : {"connect", "banner", "starttls", "handshake", "protocol", "certificate", "name",
                          "banner_name", "chain_trusted", "chain_complete", "expiry"})
        EXPECT_EQ(r.verdicts[c], "ok") << c << "\n" << r.raw;
    EXPECT_EQ(r.out["chain"]["sent"].size(), 2u);
    EXPECT_GE(r.out["certificate"]["days_to_expiry"].get<int>(), 88);
}

TEST_F(TlsCheck, NoStartTls) {
    auto r = check(postfix("plain"), "--name mx.example.test");
    EXPECT_EQ(r.status, 1) << r.raw;
    EXPECT_EQ(r.verdicts["banner"], "ok");
    EXPECT_EQ(r.verdicts["starttls"], "fail");
    EXPECT_EQ(r.verdicts.count("handshake"), 0u);
}

TEST_F(TlsCheck, SelfSigned) {
    auto r = check(postfix("selfsigned"), "--name mx.example.test");
    EXPECT_EQ(r.status, 1) << r.raw;
    EXPECT_EQ(r.verdicts["handshake"], "ok");
    EXPECT_EQ(r.verdicts["name"], "ok");
    EXPECT_EQ(r.verdicts["chain_trusted"], "fail");
    EXPECT_EQ(r.verdicts["chain_complete"], "fail");
    EXPECT_NE(r.raw.find("self-signed"), std::string::npos) << r.raw;
}

TEST_F(TlsCheck, WrongName) {
    auto r = check(postfix("wrongname"), "--name mx.example.test");
    EXPECT_EQ(r.status, 1) << r.raw;
    EXPECT_EQ(r.verdicts["chain_trusted"], "ok");
    EXPECT_EQ(r.verdicts["chain_complete"], "ok");
    EXPECT_EQ(r.verdicts["name"], "fail");
    EXPECT_EQ(r.verdicts["banner_name"], "fail");
    EXPECT_NE(r.raw.find("mail.elsewhere.test"), std::string::npos);
}

TEST_F(TlsCheck, MissingIntermediateIsNamed) {
    auto r = check(postfix("missing"), "--name mx.example.test");
    EXPECT_EQ(r.status, 1) << r.raw;
    EXPECT_EQ(r.verdicts["name"], "ok");
    EXPECT_EQ(r.verdicts["chain_trusted"], "fail");
    EXPECT_EQ(r.verdicts["chain_complete"], "fail");
    EXPECT_NE(r.out["chain"]["missing"].get<std::string>().find("Peer Test Intermediate"), std::string::npos)
        << r.raw;
}

TEST_F(TlsCheck, WildcardCoversOneLabelOnly) {
    auto one = check(postfix("wildcard"), "--name a.example.test");
    EXPECT_EQ(one.status, 0) << one.raw;
    EXPECT_EQ(one.verdicts["name"], "ok");
    EXPECT_EQ(one.verdicts["banner_name"], "ok");  // mx.example.test under *.example.test
    auto two = check(postfix("wildcard"), "--name a.b.example.test");
    EXPECT_EQ(two.status, 1) << two.raw;
    EXPECT_EQ(two.verdicts["name"], "fail");
    EXPECT_EQ(two.verdicts["chain_trusted"], "ok");
}

TEST_F(TlsCheck, ImplicitTlsOnPostfixWrapperMode) {
    auto r = check(postfix("implicit"), "--implicit --name mx.example.test");
    EXPECT_EQ(r.status, 0) << r.raw;
    EXPECT_EQ(r.out["mode"], "implicit");
    EXPECT_EQ(r.verdicts["banner"], "ok");
    EXPECT_EQ(r.verdicts["chain_complete"], "ok");
}

TEST_F(TlsCheck, OpensslServerValidAndMissingIntermediate) {
    // s_server sends no banner; the TLS checks stand on their own. The valid one sends
    // the intermediate (-cert_chain), the other only the leaf.
    auto valid =
        check("127.0.0.1:" + std::to_string(peers_->s_valid_port), "--implicit --name mx.example.test");
    EXPECT_EQ(valid.verdicts["handshake"], "ok") << valid.raw;
    EXPECT_EQ(valid.verdicts["name"], "ok");
    EXPECT_EQ(valid.verdicts["chain_trusted"], "ok") << valid.raw;
    EXPECT_EQ(valid.verdicts["chain_complete"], "ok") << valid.raw;
    auto missing =
        check("127.0.0.1:" + std::to_string(peers_->s_missing_port), "--implicit --name mx.example.test");
    EXPECT_EQ(missing.status, 1) << missing.raw;
    EXPECT_EQ(missing.verdicts["chain_complete"], "fail");
    EXPECT_NE(missing.raw.find("Peer Test Intermediate"), std::string::npos) << missing.raw;
}

TEST_F(TlsCheck, UnreachablePeerFailsConnect) {
    auto r = check("127.0.0.1:" + std::to_string(free_port()));
    EXPECT_EQ(r.status, 1) << r.raw;
    EXPECT_EQ(r.verdicts["connect"], "fail");
}

TEST_F(TlsCheck, BadTargetIsAUsageError) {
    auto r = run_command(kPecctl + " tls-check 127.0.0.1:99999");
    EXPECT_EQ(r.status, 2) << r.output;
    EXPECT_NE(r.output.find("port"), std::string::npos) << r.output;
}

// --- outbound policies: deliver or defer, per peer ---

TEST_F(TlsCheck, PolicyMatrixAgainstPostfixPeers) {
    const std::vector<Policy> policies{Policy::none, Policy::may, Policy::encrypt, Policy::verify,
                                       Policy::secure};
    // Expected: deliver (true) or defer (false) for none, may, encrypt, verify, secure.
    const std::map<std::string, std::vector<bool>> expected{
        {"plain", {true, true, false, false, false}},    {"selfsigned", {true, true, true, false, false}},
        {"wrongname", {true, true, true, false, false}}, {"missing", {true, true, true, false, false}},
        {"valid", {true, true, true, true, true}},       {"wildcard", {true, true, true, true, true}},
    };
    for (const auto& [peer, outcomes] : expected) {
        ProbeOptions o;
        o.host = "127.0.0.1";
        o.port = peers_->postfix->port(peer);
        o.name = "mx.example.test";
        o.ca_file = peers_->dir / "root.pem";
        o.timeout = std::chrono::seconds(5);
        auto result = probe(o);
        ASSERT_TRUE(result.connected) << peer << ": " << result.connect_error;
        for (std::size_t i = 0; i < policies.size(); ++i) {
            auto verdict = policy_outcome({policies[i], {}}, "mx.example.test", "example.test", result);
            EXPECT_EQ(verdict.deliver, outcomes[i])
                << peer << " under " << to_string(policies[i]) << ": " << verdict.reason;
        }
    }
}

TEST_F(TlsCheck, SecureChecksTheDestinationNotTheMxName) {
    ProbeOptions o;
    o.host = "127.0.0.1";
    o.port = peers_->postfix->port("valid");
    o.name = "mx.example.test";
    o.ca_file = peers_->dir / "root.pem";
    auto result = probe(o);
    // A forged MX pointing mail for other.test at this host passes `verify` (the MX name
    // matches) but not `secure` (the certificate is not for other.test).
    EXPECT_TRUE(policy_outcome({Policy::verify, {}}, "mx.example.test", "other.test", result).deliver);
    EXPECT_FALSE(policy_outcome({Policy::secure, {}}, "mx.example.test", "other.test", result).deliver);
    EXPECT_TRUE(policy_outcome({Policy::secure, {"mx.example.test"}}, "mx.example.test", "other.test", result)
                    .deliver);
}

// --- pecctl cert ---

TEST(CertCommand, SelfSignedWritesCertificateAndPrivateKey) {
    TempDir dir;
    auto r = run_command(kPecctl +
                         " cert self-signed --name mx.example.test --name mail.example.test --ip 127.0.0.1" +
                         " --key-type rsa --days 60 --out " + (dir / "c.pem").string() + " --key-out " +
                         (dir / "c.key").string());
    ASSERT_EQ(r.status, 0) << r.output;
    struct stat st {};
    ASSERT_EQ(::stat((dir / "c.key").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    auto text = run_command("openssl x509 -noout -text -in " + (dir / "c.pem").string());
    EXPECT_NE(text.output.find("DNS:mx.example.test, DNS:mail.example.test, IP Address:127.0.0.1"),
              std::string::npos)
        << text.output;
    EXPECT_NE(text.output.find("TLS Web Server Authentication"), std::string::npos);
    EXPECT_NE(text.output.find("Public-Key: (2048 bit)"), std::string::npos);
    auto host =
        run_command("openssl x509 -noout -checkhost mail.example.test -in " + (dir / "c.pem").string());
    EXPECT_NE(host.output.find("does match"), std::string::npos) << host.output;
    auto chain = load_chain_file((dir / "c.pem").string());
    auto key = load_key_file((dir / "c.key").string());
    EXPECT_TRUE(key_matches(chain.front().get(), key.get()));
    EXPECT_EQ(days_until_expiry(chain.front().get(), std::chrono::system_clock::now()), 59);
}

TEST(CertCommand, CsrCarriesTheNamesAndVerifies) {
    TempDir dir;
    auto r = run_command(kPecctl + " cert csr --name pec.example.test --name mx.pec.example.test --out " +
                         (dir / "r.csr").string() + " --key-out " + (dir / "r.key").string());
    ASSERT_EQ(r.status, 0) << r.output;
    auto v = run_command("openssl req -noout -verify -text -in " + (dir / "r.csr").string());
    EXPECT_NE(v.output.find("verify OK"), std::string::npos) << v.output;
    EXPECT_NE(v.output.find("CN = pec.example.test"), std::string::npos) << v.output;
    EXPECT_NE(v.output.find("DNS:pec.example.test, DNS:mx.pec.example.test"), std::string::npos) << v.output;
    // Reusing an existing key.
    auto again = run_command(kPecctl + " cert csr --name pec.example.test --key " + (dir / "r.key").string() +
                             " --out " + (dir / "r2.csr").string());
    EXPECT_EQ(again.status, 0) << again.output;
    auto k1 = run_command("openssl req -noout -pubkey -in " + (dir / "r.csr").string());
    auto k2 = run_command("openssl req -noout -pubkey -in " + (dir / "r2.csr").string());
    EXPECT_EQ(k1.output, k2.output);
}

TEST(CertCommand, ShowWarnsNearExpiryAndFailsWhenExpired) {
    TempDir dir;
    auto ca = make_ca("Show CA");
    auto soon = make_leaf("soon.example.test", {"soon.example.test"}, ca, Usage::server,
                          std::chrono::system_clock::now(), std::chrono::days(10));
    fs::write_file_durable(dir / "soon.pem", to_pem(soon.cert.get()) + to_pem(ca.cert.get()));
    auto r = run_command(kPecctl + " cert show " + (dir / "soon.pem").string());
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("WARNING: CN=soon.example.test expires in 9 days"), std::string::npos)
        << r.output;
    EXPECT_NE(r.output.find("[1] subject:  CN=Show CA"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("DNS:soon.example.test"), std::string::npos);

    auto json_out =
        run_command(kPecctl + " cert show --json " + (dir / "soon.pem").string() + " 2>/dev/null");
    auto j = json::parse(json_out.output.substr(json_out.output.find('[')), nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << json_out.output;
    ASSERT_EQ(j.size(), 2u);
    EXPECT_EQ(j[0]["dns_names"][0], "soon.example.test");
    EXPECT_EQ(j[0]["days_to_expiry"], 9);
    EXPECT_EQ(j[1]["is_ca"], true);

    auto old = make_leaf("old.example.test", {"old.example.test"}, ca, Usage::server,
                         std::chrono::system_clock::now() - std::chrono::days(40), std::chrono::days(30));
    fs::write_file_durable(dir / "old.pem", to_pem(old.cert.get()));
    auto e = run_command(kPecctl + " cert show " + (dir / "old.pem").string());
    EXPECT_EQ(e.status, 1) << e.output;
    EXPECT_NE(e.output.find("ERROR: CN=old.example.test expired"), std::string::npos) << e.output;
}

TEST(CertCommand, PreciseErrors) {
    TempDir dir;
    auto no_name = run_command(kPecctl + " cert self-signed --out " + (dir / "a.pem").string() +
                               " --key-out " + (dir / "a.key").string());
    EXPECT_EQ(no_name.status, 2) << no_name.output;
    EXPECT_NE(no_name.output.find("--name"), std::string::npos) << no_name.output;
    auto bad_type = run_command(kPecctl + " cert self-signed --name a.test --key-type dsa --out " +
                                (dir / "a.pem").string() + " --key-out " + (dir / "a.key").string());
    EXPECT_EQ(bad_type.status, 2) << bad_type.output;
    EXPECT_NE(bad_type.output.find("unknown key type 'dsa'"), std::string::npos) << bad_type.output;
    fs::write_file_durable(dir / "junk.pem",
                           "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    auto junk = run_command(kPecctl + " cert show " + (dir / "junk.pem").string());
    EXPECT_EQ(junk.status, 2) << junk.output;
    EXPECT_NE(junk.output.find("junk.pem"), std::string::npos) << junk.output;
    EXPECT_FALSE(std::filesystem::exists(dir / "a.key"));
}

}  // namespace
