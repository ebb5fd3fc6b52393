// cli_test.cpp - `pecctl verify` run as the real binary: text and --json output, exit codes
// (0 valid, 1 invalid, 2 usage / I/O), and the chain verdict with --trust and --crl on a
// real Aruba receipt re-signed by a test provider key made with the openssl binary.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/fs.hpp"
#include "crypto/cms.hpp"
#include "crypto/smime.hpp"
#include "test_pki.hpp"

namespace pecd::test {
namespace {

const std::string kPecctl = std::string(PECD_BINARY_DIR) + "/app/pecctl/pecctl";
const std::string kSamples = PECD_SAMPLES_DIR;
const std::string kAccettazione =
    kSamples +
    "/OCA_l10n-italy@16.0__l10n_it_fatturapa_pec_tests_data_ACCETTAZIONE_IT03339130126_00009.xml.eml";
const std::string kFakeAccettazione =
    kSamples + "/biagioT_java-pec-parser__src_test_resources_accettazione.eml";

CommandResult pecctl(const std::string& args) {
    return run_command(shell_quote(kPecctl) + " verify " + args);
}

class VerifyCliTest : public ::testing::Test {
protected:
    TestPki pki;
    std::string file(const std::string& name, const std::string& content) {
        auto p = pki.path(name);
        write_all(p, content);
        return shell_quote(p.string());
    }
    // The Aruba receipt with its signature replaced by one of the test provider key.
    std::string resigned() {
        auto raw = fs::read_file(kAccettazione);
        auto parts = crypto::smime_locate(raw);
        EXPECT_EQ(parts.status, crypto::SmimeStatus::ok);
        std::string storage;
        write_all(pki.path("signed-part"), crypto::canonicalize_crlf(parts.signed_part, storage));
        pki.run(
            "openssl cms -sign -binary -in signed-part -signer signer.pem -inkey signer.key -certfile ca.pem "
            "-md sha256 -outform DER -out resigned.der");
        auto b64 = pki.run("openssl base64 -in resigned.der");
        auto body = crypto::split_entity(parts.signature_part).body;
        auto begin = static_cast<std::size_t>(body.data() - raw.data());
        return raw.substr(0, begin) + b64 + raw.substr(begin + body.size());
    }
};

TEST_F(VerifyCliTest, TextOutputForARealReceipt) {
    auto r = pecctl(shell_quote(kAccettazione));
    EXPECT_EQ(r.status, 0) << r.output;
    for (auto needle : {"type:         accettazione", "structure:    ok", "signer:       ",
                        "CN=Posta Certificata ARUBA PEC", "signer-sha1:  ", "signature:    pass",
                        "chain:        not-checked", "consistency:  pass", "tipo               accettazione",
                        "identificativo     opec288.20181113163926.01838.310.1.63@pec.aruba.it",
                        "result: VALID PEC message"})
        EXPECT_NE(r.output.find(needle), std::string::npos) << needle << "\n" << r.output;
}

TEST_F(VerifyCliTest, JsonOutputForARealReceipt) {
    auto r = pecctl("--json " + shell_quote(kAccettazione));
    ASSERT_EQ(r.status, 0) << r.output;
    auto j = nlohmann::json::parse(r.output);
    EXPECT_EQ(j["type"], "accettazione");
    EXPECT_EQ(j["valid"], true);
    EXPECT_EQ(j["verdicts"]["signature"]["verdict"], "pass");
    EXPECT_EQ(j["verdicts"]["chain"]["verdict"], "not-checked");
    EXPECT_EQ(j["signer"]["sha1"].get<std::string>().size(), 40u);
    EXPECT_EQ(j["signer"]["digest"], "sha1");
    EXPECT_EQ(j["daticert"]["tipo"], "accettazione");
    EXPECT_EQ(
        j["daticert"]["msgid"],
        "<1542123565.921546936035156.464602125997431-openerp-8-fatturapa.attachment.out@elbati-Vostro-3550>");
    EXPECT_TRUE(j["inconsistencies"].empty());
}

TEST_F(VerifyCliTest, InvalidMessagesExitOne) {
    auto missing = pecctl(shell_quote(kFakeAccettazione));
    EXPECT_EQ(missing.status, 1) << missing.output;
    EXPECT_NE(missing.output.find("missing-signature-part"), std::string::npos) << missing.output;
    EXPECT_NE(missing.output.find("NOT a valid PEC message"), std::string::npos);

    auto raw = fs::read_file(kAccettazione);
    auto edited = raw;
    edited.replace(edited.find("X-Ricevuta: accettazione"), 24, "X-Ricevuta: avvenuta-consegna");
    auto r = pecctl("--json " + file("edited.eml", edited));
    EXPECT_EQ(r.status, 1) << r.output;
    auto j = nlohmann::json::parse(r.output);
    EXPECT_EQ(j["verdicts"]["signature"]["verdict"], "pass");
    EXPECT_EQ(j["verdicts"]["consistency"]["verdict"], "fail");
    ASSERT_EQ(j["inconsistencies"].size(), 1u);
    EXPECT_NE(j["inconsistencies"][0].get<std::string>().find("X-Ricevuta is \"avvenuta-consegna\""),
              std::string::npos);

    auto ordinary = pecctl(file("plain.eml", "From: a@example.org\r\nSubject: hi\r\n\r\nhello\r\n"));
    EXPECT_EQ(ordinary.status, 1) << ordinary.output;
    EXPECT_NE(ordinary.output.find("type:         posta-ordinaria"), std::string::npos) << ordinary.output;
}

TEST_F(VerifyCliTest, UsageAndIoErrorsExitTwo) {
    EXPECT_EQ(pecctl("").status, 2);
    EXPECT_EQ(pecctl(shell_quote((pki.dir / "no-such.eml").string())).status, 2);
    EXPECT_EQ(pecctl(shell_quote(kAccettazione) + " extra-argument").status, 2);
    EXPECT_EQ(pecctl(shell_quote(kAccettazione) + " --crl " + pki.q("ca.pem")).status, 2)
        << "--crl needs --trust";
    auto bad_trust = pecctl(shell_quote(kAccettazione) + " --trust " + file("empty.pem", "nothing"));
    EXPECT_EQ(bad_trust.status, 2) << bad_trust.output;
    EXPECT_NE(bad_trust.output.find("no PEM certificate"), std::string::npos) << bad_trust.output;
}

TEST_F(VerifyCliTest, ChainVerdictWithTrustAndCrl) {
    // The real Aruba receipt against an unrelated CA: intact, but the chain fails.
    auto foreign = pecctl("--json --trust " + pki.q("ca.pem") + " " + shell_quote(kAccettazione));
    EXPECT_EQ(foreign.status, 1) << foreign.output;
    auto j = nlohmann::json::parse(foreign.output);
    EXPECT_EQ(j["verdicts"]["signature"]["verdict"], "pass");
    EXPECT_EQ(j["verdicts"]["chain"]["verdict"], "fail");

    auto msg = file("resigned.eml", resigned());
    auto ok = pecctl("--trust " + pki.q("ca.pem") + " " + msg);
    EXPECT_EQ(ok.status, 0) << ok.output;
    EXPECT_NE(ok.output.find("chain:        pass"), std::string::npos) << ok.output;
    EXPECT_NE(ok.output.find("CN=Posta Certificata Test Provider"), std::string::npos) << ok.output;
    auto wrong = pecctl("--trust " + pki.q("other-ca.pem") + " " + msg);
    EXPECT_EQ(wrong.status, 1) << wrong.output;
    EXPECT_NE(wrong.output.find("chain:        fail"), std::string::npos) << wrong.output;

    pki.revoke_signer();
    auto revoked = pecctl("--trust " + pki.q("ca.pem") + " --crl " + pki.q("crl.pem") + " " + msg);
    EXPECT_EQ(revoked.status, 1) << revoked.output;
    EXPECT_NE(revoked.output.find("revoked"), std::string::npos) << revoked.output;
}

TEST_F(VerifyCliTest, ProviderVerdictsFromAnLdifIndex) {
    auto raw = fs::read_file(kAccettazione);
    auto v = crypto::smime_verify(raw);
    ASSERT_TRUE(v.cms.signer);
    write_all(pki.path("aruba.der"), crypto::certificate_der(v.cms.signer.get()));
    pki.run("openssl x509 -in signer.pem -outform DER -out test.der");
    const std::string aruba_b64 = pki.run("openssl base64 -A -in aruba.der");
    const std::string aruba_sha1 = crypto::certificate_sha1_hex(v.cms.signer.get());
    const std::string test_b64 = pki.run("openssl base64 -A -in test.der");
    std::string test_sha1 = pki.run("openssl x509 -in signer.pem -noout -fingerprint -sha1");
    test_sha1 = test_sha1.substr(test_sha1.find('=') + 1);
    test_sha1.erase(std::remove(test_sha1.begin(), test_sha1.end(), ':'), test_sha1.end());
    test_sha1.erase(std::remove(test_sha1.begin(), test_sha1.end(), '\n'), test_sha1.end());
    // A provider record (LDIF, pec.md 6.1) with one certificate.
    auto record = [](const std::string& name, const std::string& domain, const std::string& sha1,
                     const std::string& b64) {
        return "dn: providerName=" + name + ",o=postacert\nobjectClass: top\nobjectClass: provider\n" +
               "providerName: " + name + "\nmailReceipt: posta-certificata@" + domain + "\n" +
               "managedDomains: " + domain + "\nproviderCertificateHash: " + sha1 +
               "\nproviderCertificate;binary:: " + b64 + "\n\n";
    };
    const std::string root = "dn: o=postacert\nobjectClass: top\nobjectClass: organization\no: postacert\n\n";
    auto listed =
        file("listed.ldif", root + record("ARUBA PEC S.p.A.", "pec.aruba.it", aruba_sha1, aruba_b64));
    auto ok = pecctl("--index " + listed + " " + shell_quote(kAccettazione));
    EXPECT_EQ(ok.status, 0) << ok.output;
    EXPECT_NE(ok.output.find("provider:     pass  signed by provider ARUBA PEC S.p.A."), std::string::npos)
        << ok.output;
    EXPECT_NE(ok.output.find("from-domain:  pass"), std::string::npos) << ok.output;

    auto unlisted = file("unlisted.ldif", root + record("Altro", "pec.aruba.it", test_sha1, test_b64));
    auto bad = pecctl("--json --index " + unlisted + " " + shell_quote(kAccettazione));
    EXPECT_EQ(bad.status, 1) << bad.output;
    auto j = nlohmann::json::parse(bad.output);
    EXPECT_EQ(j["verdicts"]["provider"]["verdict"], "fail");
    EXPECT_EQ(pecctl("--index-anchor " + pki.q("ca.pem") + " " + shell_quote(kAccettazione)).status, 2);
}

}  // namespace
}  // namespace pecd::test
