// signed_test.cpp - signed LDIF (.p7m) through the index service's file source: a valid
// document loads (DER and PEM), tampered / wrongly signed / expired-signer / malformed /
// unsigned ones are refused with a clear reason while the previous index still answers.
// Documents are signed with the openssl tool, an independent CMS producer.
#include <gtest/gtest.h>

#include "core/error.hpp"
#include "index/document.hpp"
#include "index/index_service.hpp"
#include "index_test_support.hpp"

namespace pecd::index {
namespace {

using namespace test;

class SignedTest : public ::testing::Test {
protected:
    TempDir dir;
    TestCa agid{dir.path, "AgID Test"};
    TestCa rogue{dir.path, "Rogue"};
    TestCert signer = agid.issue("igpec", "Indice PEC", "igpec@agid.example");
    TestCert expired =
        agid.issue("expired", "Indice PEC", "igpec@agid.example", "20200101000000Z", "20210101000000Z");
    TestCert foreign = rogue.issue("foreign", "Indice PEC", "igpec@agid.example");
    TestCert acme = agid.issue("acme", "Acme PEC", "posta-certificata@pec.acme.example");
    TestCert other = agid.issue("other", "Other PEC", "posta-certificata@pec.other.example");
    fs::path live_file = dir / "igpec.ldif.p7m";

    // An index where moving.example belongs to `owner`.
    fs::path make_ldif(const std::string& id, const std::string& owner) {
        auto path = dir / (id + ".ldif");
        write_file(path,
                   root_ldif() +
                       provider_ldif({"Acme PEC",
                                      "",
                                      "ricevute@pec.acme.example",
                                      owner == "Acme PEC"
                                          ? std::vector<std::string>{"pec.acme.example", "moving.example"}
                                          : std::vector<std::string>{"pec.acme.example"},
                                      {&acme},
                                      ""}) +
                       provider_ldif({"Other PEC",
                                      "",
                                      "ricevute@pec.other.example",
                                      owner == "Other PEC"
                                          ? std::vector<std::string>{"pec.other.example", "moving.example"}
                                          : std::vector<std::string>{"pec.other.example"},
                                      {&other},
                                      ""}));
        return path;
    }

    IndexSettings settings() {
        IndexSettings s;
        s.source = SourceKind::file;
        s.file = live_file;
        s.trust_anchor = agid.pem();
        return s;
    }

    std::string owner_of_moving(IndexService& svc) {
        auto p = svc.lookup().by_domain("moving.example");
        return p ? p->name : "";
    }

    // Loads a good document, then offers `bad` and expects a refusal mentioning `reason`.
    void expect_refused(const std::string& bad, const std::string& reason) {
        IndexService svc(settings());
        openssl_sign(make_ldif("good", "Acme PEC"), signer, live_file);
        auto ok = svc.refresh();
        ASSERT_EQ(ok.kind, RefreshOutcome::Kind::replaced) << ok.message;
        write_file(live_file, bad);
        auto r = svc.refresh();
        EXPECT_EQ(r.kind, RefreshOutcome::Kind::failed);
        EXPECT_NE(r.message.find(reason), std::string::npos) << r.message;
        EXPECT_EQ(owner_of_moving(svc), "Acme PEC");  // the last good index still answers
        EXPECT_EQ(svc.status().last_error, r.message);
        EXPECT_EQ(svc.status().failures, 1u);
    }
};

TEST_F(SignedTest, ValidDerDocumentLoads) {
    openssl_sign(make_ldif("a", "Acme PEC"), signer, live_file);
    IndexService svc(settings());
    EXPECT_FALSE(svc.lookup().by_domain("pec.acme.example"));
    auto r = svc.refresh();
    ASSERT_EQ(r.kind, RefreshOutcome::Kind::replaced) << r.message;
    EXPECT_TRUE(r.problems.empty());
    EXPECT_EQ(owner_of_moving(svc), "Acme PEC");
    EXPECT_NE(svc.status().signer.find("Indice PEC"), std::string::npos) << svc.status().signer;
    // The same bytes again: nothing to swap.
    EXPECT_EQ(svc.refresh().kind, RefreshOutcome::Kind::not_modified);
    // A new signed document moves the domain.
    openssl_sign(make_ldif("b", "Other PEC"), signer, live_file);
    ASSERT_EQ(svc.refresh().kind, RefreshOutcome::Kind::replaced);
    EXPECT_EQ(owner_of_moving(svc), "Other PEC");
}

TEST_F(SignedTest, ValidPemDocumentLoads) {
    openssl_sign(make_ldif("a", "Other PEC"), signer, live_file, /*pem=*/true);
    auto lookup = load_index_file(live_file, agid.pem());
    ASSERT_TRUE(lookup->by_domain("moving.example"));
    EXPECT_EQ(lookup->by_domain("moving.example")->name, "Other PEC");
}

TEST_F(SignedTest, TamperedDocumentIsRefused) {
    openssl_sign(make_ldif("evil", "Other PEC"), signer, dir / "evil.p7m");
    auto bytes = read_file(dir / "evil.p7m");
    auto pos = bytes.find("ricevute@pec.other.example");
    ASSERT_NE(pos, std::string::npos);
    bytes[pos] = 'X';  // same length, different content
    expect_refused(bytes, "signature does not match");
}

TEST_F(SignedTest, WronglySignedDocumentIsRefused) {
    openssl_sign(make_ldif("evil", "Other PEC"), foreign, dir / "evil.p7m");
    expect_refused(read_file(dir / "evil.p7m"),
                   "not trusted (signer certificate chain: unable to get local issuer");
}

TEST_F(SignedTest, ExpiredSignerIsRefused) {
    openssl_sign(make_ldif("old", "Other PEC"), expired, dir / "old.p7m");
    expect_refused(read_file(dir / "old.p7m"), "certificate has expired");
}

TEST_F(SignedTest, MalformedDocumentIsRefused) {
    openssl_sign(make_ldif("cut", "Other PEC"), signer, dir / "cut.p7m");
    auto bytes = read_file(dir / "cut.p7m");
    expect_refused(bytes.substr(0, bytes.size() / 2), "malformed signed LDIF");
}

TEST_F(SignedTest, UnsignedDocumentIsRefusedWhenATrustAnchorIsSet) {
    expect_refused(read_file(make_ldif("plain", "Other PEC")), "not signed");
}

TEST_F(SignedTest, SignedGarbageLdifIsRefusedWithItsLine) {
    auto path = dir / "garbage.ldif";
    write_file(path, root_ldif() + "dn: providerName=X,o=postacert\nthis is not ldif\n");
    openssl_sign(path, signer, dir / "garbage.p7m");
    expect_refused(read_file(dir / "garbage.p7m"), "line 9");
}

TEST_F(SignedTest, MissingFileKeepsTheIndex) {
    openssl_sign(make_ldif("a", "Acme PEC"), signer, live_file);
    IndexService svc(settings());
    ASSERT_EQ(svc.refresh().kind, RefreshOutcome::Kind::replaced);
    fs::remove(live_file);
    auto r = svc.refresh();
    EXPECT_EQ(r.kind, RefreshOutcome::Kind::failed);
    EXPECT_NE(r.message.find(live_file.string()), std::string::npos) << r.message;
    EXPECT_EQ(owner_of_moving(svc), "Acme PEC");
}

TEST_F(SignedTest, BackgroundRefreshPicksUpChanges) {
    openssl_sign(make_ldif("a", "Acme PEC"), signer, live_file);
    auto s = settings();
    s.refresh_interval = std::chrono::seconds(1);
    IndexService svc(s);
    svc.start();
    ASSERT_TRUE(wait_until([&] { return owner_of_moving(svc) == "Acme PEC"; }, std::chrono::seconds(10)));
    openssl_sign(make_ldif("b", "Other PEC"), signer, dir / "next.p7m");
    fs::rename(dir / "next.p7m", live_file);
    EXPECT_TRUE(wait_until([&] { return owner_of_moving(svc) == "Other PEC"; }, std::chrono::seconds(10)));
    svc.stop();
}

TEST_F(SignedTest, TrustAnchorReplacedOnDiskVerifiesTheNextRefresh) {
    // The index signer moves to a new CA: the operator replaces the anchor file, with no
    // restart, and the next refresh verifies against it.
    auto anchor = dir / "anchor.pem";
    fs::copy_file(agid.pem(), anchor);
    auto s = settings();
    s.trust_anchor = anchor;
    IndexService svc(s);
    openssl_sign(make_ldif("a", "Acme PEC"), signer, live_file);
    ASSERT_EQ(svc.refresh().kind, RefreshOutcome::Kind::replaced);

    openssl_sign(make_ldif("b", "Other PEC"), foreign, live_file);  // signed under the new CA
    auto before = svc.refresh();
    EXPECT_EQ(before.kind, RefreshOutcome::Kind::failed);
    EXPECT_NE(before.message.find("not trusted"), std::string::npos) << before.message;
    EXPECT_EQ(owner_of_moving(svc), "Acme PEC");

    fs::copy_file(rogue.pem(), dir / "anchor.new");
    fs::rename(dir / "anchor.new", anchor);
    auto after = svc.refresh();
    ASSERT_EQ(after.kind, RefreshOutcome::Kind::replaced) << after.message;
    EXPECT_EQ(owner_of_moving(svc), "Other PEC");

    // A broken anchor file is refused; the anchor in use stays.
    write_file(anchor, "not a certificate\n");
    openssl_sign(make_ldif("c", "Acme PEC"), foreign, live_file);
    ASSERT_EQ(svc.refresh().kind, RefreshOutcome::Kind::replaced);
    EXPECT_EQ(owner_of_moving(svc), "Acme PEC");
}

}  // namespace
}  // namespace pecd::index
