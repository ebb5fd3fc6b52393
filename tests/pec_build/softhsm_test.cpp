// softhsm_test.cpp - PEC messages signed with a key that never leaves a PKCS#11 token
//
// A SoftHSM2 token is created in a temporary directory (SOFTHSM2_CONF points there), the
// RSA-2048 key pair is generated INSIDE the token by pkcs11-tool, a test CA certifies the
// token's public key, crypto::load_identity() opens the token through libp11, and the
// messages built with it must satisfy `openssl cms -verify` exactly as file keys do.
#include <gtest/gtest.h>

#include <cstdlib>

#include "core/error.hpp"
#include "crypto/identity.hpp"
#include "pec/builder.hpp"
#include "support.hpp"

using namespace pecd;
using namespace pecd::pec;
using namespace pectest;

namespace {

constexpr const char* kModule = "/usr/lib/softhsm/libsofthsm2.so";
constexpr const char* kPin = "87654321";

class SoftHsm : public ::testing::Test {
protected:
    TempDir dir;
    TestPki pki;
    fs::path cert;

    void SetUp() override {
        ASSERT_TRUE(fs::exists(kModule)) << "softhsm2 is not installed (" << kModule << ")";
        fs::create_directories(dir.path / "tokens");
        write_file(dir.path / "softhsm2.conf", "directories.tokendir = " + (dir.path / "tokens").string() +
                                                   "\nobjectstore.backend = file\nlog.level = ERROR\n");
        // Both the tools run below and libp11 inside this process read it.
        setenv("SOFTHSM2_CONF", (dir.path / "softhsm2.conf").c_str(), 1);
        auto init =
            run(std::string("softhsm2-util --init-token --free --label pecd-test --so-pin 12345678 --pin ") +
                kPin);
        ASSERT_EQ(init.status, 0) << init.output;
        std::string tool = std::string("pkcs11-tool --module ") + kModule + " --token-label pecd-test";
        auto gen = run(tool + " --login --pin " + kPin +
                       " --keypairgen --key-type rsa:2048 --label pec-signing --id 01");
        ASSERT_EQ(gen.status, 0) << gen.output;
        ASSERT_NE(gen.output.find("never extractable"), std::string::npos) << gen.output;
        auto pub = run(tool + " --read-object --type pubkey --label pec-signing -o " +
                       (dir.path / "pub.der").string() + " && openssl pkey -pubin -inform DER -in " +
                       (dir.path / "pub.der").string() + " -out " + (dir.path / "pub.pem").string());
        ASSERT_EQ(pub.status, 0) << pub.output;
        pki.make_ca(dir.path);
        cert = dir.path / "token-signer.pem";
        pki.issue_for_pubkey(dir.path / "pub.pem", cert);
    }

    crypto::KeySource source(const std::string& pin = kPin) {
        crypto::KeySource s;
        s.certificate = cert;
        s.pkcs11_module = kModule;
        s.pkcs11_token = "pecd-test";
        s.pkcs11_key_label = "pec-signing";
        s.pkcs11_pin = pin;
        return s;
    }
};

TransactionContext context() {
    TransactionContext tx;
    tx.time = std::chrono::system_clock::now();
    tx.provider_domain = "pec.test.it";
    tx.provider_name = "Test PEC S.p.A.";
    tx.pec_msgid = "pecd.hsm.1@pec.test.it";
    tx.recipient = "anna@pec.altro.it";
    return tx;
}

const std::string kOriginal =
    "From: mario@pec.test.it\r\nTo: anna@pec.altro.it\r\nSubject: firmato da HSM\r\n"
    "Message-ID: <hsm-1@mua.test.it>\r\nContent-Type: text/plain\r\n\r\nciao\r\n";

}  // namespace

TEST_F(SoftHsm, TokenKeySignsMessagesThatOpensslAccepts) {
    auto id = crypto::load_identity(source());
    Envelope env;
    env.mail_from = "mario@pec.test.it";
    env.recipients = {{"anna@pec.altro.it", {}, {}}};
    for (auto kind :
         {MessageKind::transport_envelope, MessageKind::accettazione, MessageKind::consegna_completa}) {
        auto built = build_message(kind, kOriginal, env, context(), id);
        TempDir work;
        auto r = openssl_verify(built.data, pki.ca_cert, work.path);
        EXPECT_EQ(r.status, 0) << kind_name(kind) << ": " << r.output;
        // Signed by the token's key: the certificate in the p7s is the one issued for it.
        auto signer = run("openssl pkcs7 -print_certs -inform DER -in " + (work.path / "sig.der").string() +
                          " | openssl x509 -noout -fingerprint -sha256 && openssl x509 -in " + cert.string() +
                          " -noout -fingerprint -sha256");
        ASSERT_EQ(signer.status, 0) << signer.output;
        auto nl = signer.output.find('\n');
        EXPECT_EQ(signer.output.substr(0, nl),
                  signer.output.substr(nl + 1, signer.output.find('\n', nl + 1) - nl - 1));
    }
}

TEST_F(SoftHsm, WrongPinIsRefusedWithoutShowingIt) {
    try {
        crypto::load_identity(source("11112222"));
        FAIL() << "login with a wrong PIN succeeded";
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()).find("11112222"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("pecd-test"), std::string::npos) << e.what();
    }
}

TEST_F(SoftHsm, CheckConfigLogsInToTheTokenAndNamesWhatIsWrong) {
    // pecd --check-config opens the token as the daemon does at start, so a wrong PIN or
    // label is found before a start depends on it; the PIN never appears.
    const std::string pecd = std::string(PECD_BINARY_DIR) + "/app/pecd/pecd";
    write_file(dir.path / "pin", std::string(kPin) + "\n");
    write_file(dir.path / "wrong-pin", "11112222\n");
    auto check = [&](const std::string& pin_file, const std::string& label) {
        write_file(dir.path / "pecd.toml",
                   "data_dir = \"" + (dir.path / "data").string() +
                       "\"\ndomains = [\"pec.test.it\"]\n[pec]\n"
                       "provider_name = \"Test PEC\"\nsigning_certificate = \"" +
                       cert.string() +
                       "\"\n"
                       "pkcs11_module = \"" +
                       kModule +
                       "\"\npkcs11_token = \"pecd-test\"\n"
                       "pkcs11_key_label = \"" +
                       label + "\"\npkcs11_pin_file = \"" + (dir.path / pin_file).string() +
                       "\"\ntrust_anchors = \"" + pki.ca_cert.string() +
                       "\"\n[log]\nenabled = false\n[[listener]]\nname = \"mx\"\nport = 2525\n");
        return run(pecd + " --config " + (dir.path / "pecd.toml").string() + " --check-config 2>&1");
    };
    auto good = check("pin", "pec-signing");
    EXPECT_EQ(good.status, 0) << good.output;
    auto wrong_pin = check("wrong-pin", "pec-signing");
    EXPECT_NE(wrong_pin.status, 0);
    EXPECT_NE(wrong_pin.output.find("pec.pkcs11_token: PKCS#11: login to token 'pecd-test' failed"),
              std::string::npos)
        << wrong_pin.output;
    EXPECT_EQ(wrong_pin.output.find("11112222"), std::string::npos) << wrong_pin.output;
    auto wrong_label = check("pin", "other-key");
    EXPECT_NE(wrong_label.status, 0);
    EXPECT_NE(wrong_label.output.find("no private key labelled 'other-key'"), std::string::npos)
        << wrong_label.output;
}
