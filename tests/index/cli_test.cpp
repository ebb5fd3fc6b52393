// cli_test.cpp - `pecctl index publish|show|check` through the real pecctl binary: our
// signed record is published, verified by openssl as an independent CMS reader, checked,
// and queried by domain and by certificate hash; bad files give problems and exit 1.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "index_test_support.hpp"

namespace pecd::index {
namespace {

using namespace test;
using nlohmann::json;

const std::string kPecctl = PECD_BINARY_DIR "/app/pecctl/pecctl";

class IndexCliTest : public ::testing::Test {
protected:
    TempDir dir;
    TestCa agid{dir.path, "AgID Test"};
    TestCert current = agid.issue("current", "pecd Test PEC", "posta-certificata@pec.pecd.example");
    TestCert next = agid.issue("next", "pecd Test PEC", "posta-certificata@pec.pecd.example");
    fs::path p7m = dir / "pecd.ldif.p7m";

    CommandResult pecctl(const std::string& args) { return run_command(quote(kPecctl) + " " + args); }

    CommandResult publish() {
        return pecctl(
            "index publish --name 'pecd Test PEC' --mail-receipt ricevute@pec.pecd.example"
            " --domain pec.pecd.example --domain Legal.Pecd.Example --certificate " +
            quote(current.pem) + " --key " + quote(current.key) + " --extra-certificate " + quote(next.pem) +
            " --url https://pec.pecd.example/pecd.ldif.p7m --out " + quote(p7m) + " --ldif-out " +
            quote(dir / "pecd.ldif"));
    }
};

TEST_F(IndexCliTest, PublishWritesASignedRecordOthersCanVerify) {
    ASSERT_TRUE(fs::exists(kPecctl)) << kPecctl;
    auto r = publish();
    ASSERT_EQ(r.status, 0) << r.output;
    // openssl, independently: the CMS verifies against the CA and holds our LDIF.
    auto v = run_command("openssl cms -verify -binary -inform DER -in " + quote(p7m) + " -CAfile " +
                         quote(agid.pem()) + " -purpose any -out " + quote(dir / "verified.ldif"));
    ASSERT_EQ(v.status, 0) << v.output;
    auto ldif = read_file(dir / "verified.ldif");
    EXPECT_EQ(ldif, read_file(dir / "pecd.ldif"));
    EXPECT_NE(ldif.find("dn: providerName=pecd Test PEC,o=postacert\n"), std::string::npos) << ldif;
    EXPECT_NE(ldif.find("providerName: pecd Test PEC\n"), std::string::npos);
    EXPECT_NE(ldif.find("mailReceipt: ricevute@pec.pecd.example\n"), std::string::npos);
    EXPECT_NE(ldif.find("managedDomains: legal.pecd.example\n"), std::string::npos);
    EXPECT_NE(ldif.find("LDIFLocationURL: https://pec.pecd.example/pecd.ldif.p7m\n"), std::string::npos);
    auto lower = [](std::string s) {
        for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        return s;
    };
    EXPECT_NE(ldif.find("providerCertificateHash: " + lower(current.sha1)), std::string::npos);
    EXPECT_NE(ldif.find("providerCertificateHash: " + lower(next.sha1)), std::string::npos);
    EXPECT_NE(ldif.find("providerCertificate;binary:: "), std::string::npos);
    // openssl sees DER: the first bytes are a SEQUENCE with a long length.
    auto bytes = read_file(p7m);
    ASSERT_GE(bytes.size(), 2u);
    EXPECT_EQ(static_cast<unsigned char>(bytes[0]), 0x30);
}

TEST_F(IndexCliTest, CheckReportsCountsAndExitStatus) {
    ASSERT_EQ(publish().status, 0);
    auto ok = pecctl("index check --json --trust-anchor " + quote(agid.pem()) + " " + quote(p7m));
    ASSERT_EQ(ok.status, 0) << ok.output;
    auto j = json::parse(ok.output);
    EXPECT_EQ(j["verdict"], "ok");
    EXPECT_EQ(j["signed"], true);
    EXPECT_EQ(j["providers"], 1);
    EXPECT_EQ(j["domains"], 2);
    EXPECT_EQ(j["certificates"], 2);
    EXPECT_TRUE(j["problems"].empty());

    auto text = pecctl("index check " + quote(p7m));
    EXPECT_EQ(text.status, 0) << text.output;
    EXPECT_NE(text.output.find("providers: 1"), std::string::npos) << text.output;

    // A record with a problem: a hash that matches no certificate.
    auto plain = read_file(dir / "pecd.ldif");
    auto lower_hash = plain.substr(plain.find("providerCertificateHash: ") + 25, 40);
    plain.replace(plain.find(lower_hash), 40, std::string(40, 'a'));
    write_file(dir / "bad.ldif", plain);
    auto bad = pecctl("index check " + quote(dir / "bad.ldif"));
    EXPECT_EQ(bad.status, 1) << bad.output;
    EXPECT_NE(
        bad.output.find("problem: line 1: providerName=pecd Test PEC,o=postacert: providerCertificateHash "
                        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa matches none"),
        std::string::npos)
        << bad.output;

    // Broken LDIF: refused, with the line.
    write_file(dir / "broken.ldif", "dn: o=postacert\no: postacert\nno colon here\n");
    auto broken = pecctl("index check " + quote(dir / "broken.ldif"));
    EXPECT_EQ(broken.status, 1) << broken.output;
    EXPECT_NE(broken.output.find("refused: line 3:"), std::string::npos) << broken.output;

    // Signed by someone the anchor does not know.
    TestCa rogue(dir.path, "Rogue");
    auto stranger = rogue.issue("stranger", "pecd Test PEC", "x@pec.pecd.example");
    openssl_sign(dir / "pecd.ldif", stranger, dir / "rogue.p7m");
    auto untrusted =
        pecctl("index check --trust-anchor " + quote(agid.pem()) + " " + quote(dir / "rogue.p7m"));
    EXPECT_EQ(untrusted.status, 1) << untrusted.output;
    EXPECT_NE(untrusted.output.find("not trusted"), std::string::npos) << untrusted.output;
}

TEST_F(IndexCliTest, ShowFindsByDomainAndByHash) {
    ASSERT_EQ(publish().status, 0);
    auto by_domain = pecctl("index show LEGAL.pecd.example --json --index " + quote(p7m) +
                            " --trust-anchor " + quote(agid.pem()));
    ASSERT_EQ(by_domain.status, 0) << by_domain.output;
    auto j = json::parse(by_domain.output);
    EXPECT_EQ(j["providerName"], "pecd Test PEC");
    EXPECT_EQ(j["mailReceipt"], "ricevute@pec.pecd.example");
    EXPECT_EQ(j["certificates"].size(), 2u);

    auto by_hash = pecctl("index show " + next.sha1 + " --index " + quote(p7m));  // upper-case hex
    ASSERT_EQ(by_hash.status, 0) << by_hash.output;
    EXPECT_NE(by_hash.output.find("providerName: pecd Test PEC"), std::string::npos) << by_hash.output;
    EXPECT_NE(by_hash.output.find("managedDomains: pec.pecd.example"), std::string::npos) << by_hash.output;

    auto missing = pecctl("index show other.example --index " + quote(p7m));
    EXPECT_EQ(missing.status, 1) << missing.output;
    EXPECT_NE(missing.output.find("not a PEC domain"), std::string::npos) << missing.output;
}

TEST_F(IndexCliTest, PublishRefusesAnIncompleteRecord) {
    auto r =
        pecctl("index publish --name X --mail-receipt 'not an address' --domain x.example --certificate " +
               quote(current.pem) + " --key " + quote(current.key) + " --out " + quote(dir / "x.p7m"));
    EXPECT_NE(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("mailReceipt"), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(dir / "x.p7m"));
}

}  // namespace
}  // namespace pecd::index
