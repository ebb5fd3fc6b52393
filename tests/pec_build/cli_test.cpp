// cli_test.cpp - `pecctl build` through the binary: every message type, verified by openssl
#include <gtest/gtest.h>

#include "pec/daticert.hpp"
#include "pec/types.hpp"
#include "support.hpp"

using namespace pecd::pec;
using namespace pectest;

namespace {

const std::string kOriginal =
    "From: Mario Rossi <mario@pec.test.it>\r\nTo: anna@pec.altro.it, info@example.com\r\n"
    "Subject: Prova CLI\r\nMessage-ID: <cli-1@mua.test.it>\r\nX-TipoRicevuta: breve\r\nMIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nciao\r\n"
    "--b\r\nContent-Type: application/octet-stream; name=\"dati.bin\"\r\nContent-Transfer-Encoding: "
    "base64\r\n\r\n"
    "AAECAwQF\r\n--b--\r\n";

class PecctlBuild : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir_ = new TempDir;
        pki_ = new TestPki;
        pki_->make_ca(dir_->path);
        pki_->make_leaf();
        write_file(dir_->path / "original.eml", kOriginal);
    }
    static void TearDownTestSuite() {
        delete pki_;
        delete dir_;
    }
    static std::string pecctl() { return std::string(PECD_BINARY_DIR) + "/app/pecctl/pecctl"; }

    RunResult build(const std::string& type, const fs::path& out, const std::string& extra = "") {
        return run(pecctl() + " build " + type + " --original " + (dir_->path / "original.eml").string() +
                   " --from mario@pec.test.it --to anna@pec.altro.it --to info@example.com" +
                   " --external info@example.com --domain pec.test.it --provider \"Test PEC\"" +
                   " --notify ricevute@pec.altro.it --error-text \"motivo di prova\" --cert " +
                   pki_->cert.string() + " --key " + pki_->key.string() + " -o " + out.string() + extra);
    }

    static TempDir* dir_;
    static TestPki* pki_;
};
TempDir* PecctlBuild::dir_ = nullptr;
TestPki* PecctlBuild::pki_ = nullptr;

}  // namespace

TEST_F(PecctlBuild, EveryTypeBuildsAndVerifies) {
    ASSERT_TRUE(fs::exists(pecctl())) << pecctl();
    for (auto kind : all_message_kinds) {
        auto out = dir_->path / (std::string(kind_name(kind)) + ".eml");
        auto r = build(std::string(kind_name(kind)), out);
        ASSERT_EQ(r.status, 0) << kind_name(kind) << ": " << r.output;
        EXPECT_NE(r.output.find("message-id: <"), std::string::npos) << r.output;
        auto msg = read_file(out);
        auto v = view_message(msg);
        EXPECT_EQ(v.header(lower(std::string(pec_header_name(kind)))), pec_header_value(kind))
            << kind_name(kind);
        EXPECT_EQ(v.header("subject"), std::string(subject_prefix(kind)) + "Prova CLI");
        TempDir work;
        auto ver = openssl_verify(msg, pki_->ca_cert, work.path);
        EXPECT_EQ(ver.status, 0) << kind_name(kind) << ": " << ver.output;
        if (auto tipo = daticert_tipo(kind)) {
            ASSERT_TRUE(v.part("daticert.xml")) << kind_name(kind);
            auto d = parse_daticert(v.part("daticert.xml")->decoded);
            EXPECT_EQ(d.tipo, *tipo);
            EXPECT_EQ(d.destinatari.at(1).type, RecipientType::esterno);
            EXPECT_EQ(d.gestore_emittente, "Test PEC");
        }
        EXPECT_EQ(v.part("postacert.eml") != nullptr, carries_original(kind)) << kind_name(kind);
    }
    // The brief receipt replaced the attachment by its hash.
    auto breve = view_message(read_file(dir_->path / "consegna-breve.eml"));
    auto inner = view_message(breve.part("postacert.eml")->decoded);
    EXPECT_TRUE(inner.part("dati.bin.hash"));
    EXPECT_FALSE(inner.part("dati.bin"));
}

TEST_F(PecctlBuild, UsageErrorsExitWithStatus2) {
    auto r = build("ricevuta-inventata", dir_->path / "x.eml");
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.output.find("unknown message type"), std::string::npos) << r.output;
    auto r2 = run(pecctl() + " build accettazione --original /nonexistent.eml --from a@b.it --to c@d.it -o " +
                  (dir_->path / "y.eml").string());
    EXPECT_EQ(r2.status, 2) << r2.output;
    EXPECT_FALSE(fs::exists(dir_->path / "y.eml"));
}

TEST_F(PecctlBuild, WithoutACertificateAThrowawayKeySigns) {
    auto out = dir_->path / "throwaway.eml";
    auto r = run(pecctl() + " build accettazione --original " + (dir_->path / "original.eml").string() +
                 " --from mario@pec.test.it --to anna@pec.altro.it -o " + out.string());
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("throwaway"), std::string::npos);
    // Intact signature, untrusted signer: verifies only without chain checks.
    TempDir work;
    EXPECT_NE(openssl_verify(read_file(out), pki_->ca_cert, work.path).status, 0);
    auto noverify =
        run("openssl cms -verify -binary -noverify -inform DER -in " + (work.path / "sig.der").string() +
            " -content " + (work.path / "content.bin").string() + " -out /dev/null");
    EXPECT_EQ(noverify.status, 0) << noverify.output;
}
