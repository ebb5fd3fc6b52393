// index_test.cpp - the in-memory index: case-insensitive domains and hashes, full
// certificate comparison, renewal overlap (two certificates), units, problems, and the
// atomic swap readers see.
#include <gtest/gtest.h>
#include <openssl/pem.h>

#include <atomic>
#include <thread>

#include "core/error.hpp"
#include "index/document.hpp"
#include "index/provider_index.hpp"
#include "index_test_support.hpp"

namespace pecd::index {
namespace {

using namespace test;

std::unique_ptr<X509, void (*)(X509*)> load_x509(const TestCert& c) {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(c.der.data());
    return {d2i_X509(nullptr, &p, static_cast<long>(c.der.size())), X509_free};
}

std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

class IndexTest : public ::testing::Test {
protected:
    TempDir dir;
    TestCa ca{dir.path, "AgID Test"};
    TestCert anon_old =
        ca.issue("anon-old", "Anonymous Certified Mail", "posta-certificata@postalser.example.com");
    TestCert anon_new =
        ca.issue("anon-new", "Anonymous Certified Mail", "posta-certificata@postalser.example.com");
    TestCert acme = ca.issue("acme", "Acme PEC", "posta-certificata@pec.acme.example");
    TestCert stranger = ca.issue("stranger", "Not Published", "x@stranger.example");

    std::string directory() {
        return root_ldif() +
               provider_ldif({"Anonymous Certified Mail S.p.A.",
                              "",
                              "ssacceptance@postalser.example.com",
                              {"postalser.example.com", "Pec.Anonymous.Example"},
                              {&anon_old, &anon_new},
                              "https://postalser.example.com/igpec.ldif.p7m"}) +
               provider_ldif({"Anonymous Certified Mail S.p.A.",
                              "Backup",
                              "backup-receipts@postalser.example.com",
                              {"backup.postalser.example.com"},
                              {&anon_new},
                              ""}) +
               provider_ldif({"Acme PEC",
                              "",
                              "ricevute@pec.acme.example",
                              {"pec.acme.example"},
                              {&acme},
                              "https://pec.acme.example/acme.ldif.p7m"});
    }
};

TEST_F(IndexTest, DomainLookupIsCaseInsensitive) {
    std::vector<Problem> problems;
    auto index = index_from_ldif(directory(), &problems);
    for (auto& p : problems) ADD_FAILURE() << p.describe();
    EXPECT_EQ(index->counts().providers, 2u);
    EXPECT_EQ(index->counts().units, 1u);
    EXPECT_EQ(index->counts().domains, 4u);
    EXPECT_EQ(index->directory_url(), "https://igpec.rupa.example.com/igpec.ldif.p7m");
    for (auto d : {"postalser.example.com", "POSTALSER.Example.COM", "pec.anonymous.example",
                   "PEC.ANONYMOUS.EXAMPLE.", "postalser.example.com."}) {
        auto p = index->by_domain(d);
        ASSERT_TRUE(p) << d;
        EXPECT_EQ(p->name, "Anonymous Certified Mail S.p.A.");
        EXPECT_EQ(p->mail_receipt, "ssacceptance@postalser.example.com");
        EXPECT_TRUE(p->unit.empty());
    }
    auto unit = index->by_domain("Backup.Postalser.Example.Com");
    ASSERT_TRUE(unit);
    EXPECT_EQ(unit->unit, "Backup");
    EXPECT_EQ(unit->mail_receipt, "backup-receipts@postalser.example.com");
    EXPECT_EQ(index->main_record(*unit)->dn, "providerName=Anonymous Certified Mail S.p.A.,o=postacert");
    EXPECT_FALSE(index->by_domain("example.com"));
    EXPECT_FALSE(index->by_domain("x.postalser.example.com"));  // managedDomains are exact
    EXPECT_FALSE(index->by_domain(""));
    EXPECT_FALSE(index->by_domain(std::string(400, 'a')));
}

TEST_F(IndexTest, HashLookupIsCaseInsensitiveAndComparesTheCertificate) {
    auto index = index_from_ldif(directory());
    // The LDIF carries upper-case hashes (RFC 6109's example does); look up in both cases.
    auto p = index->by_hash(lower(acme.sha1));
    ASSERT_TRUE(p);
    EXPECT_EQ(p->name, "Acme PEC");
    EXPECT_EQ(index->by_hash(acme.sha1), p);
    auto x = load_x509(acme);
    auto by_cert = index->by_certificate(x.get());
    ASSERT_TRUE(by_cert);
    EXPECT_EQ(by_cert->mail_receipt, "ricevute@pec.acme.example");
    auto s = load_x509(stranger);
    EXPECT_FALSE(index->by_certificate(s.get()));
    EXPECT_FALSE(index->by_certificate(nullptr));
}

TEST_F(IndexTest, HashWithoutTheMatchingCertificateDoesNotAuthenticate) {
    // A record that lists the stranger's hash but carries Acme's certificate bytes: the hash
    // alone must not be enough (pec.md 5.2 step 2 compares the full certificate).
    std::string ldif =
        provider_ldif({"Acme PEC", "", "ricevute@pec.acme.example", {"pec.acme.example"}, {&acme}, ""});
    auto pos = ldif.find(acme.sha1);
    ldif.replace(pos, acme.sha1.size(), stranger.sha1);
    std::vector<Problem> problems;
    auto index = index_from_ldif(ldif, &problems);
    auto s = load_x509(stranger);
    EXPECT_TRUE(index->by_hash(stranger.sha1));
    EXPECT_FALSE(index->by_certificate(s.get()));
    auto a = load_x509(acme);
    EXPECT_FALSE(index->by_certificate(a.get()));  // its own hash is not published
    ASSERT_GE(problems.size(), 1u);
    EXPECT_NE(problems[0].describe().find("matches none of the record's certificates"), std::string::npos);
    EXPECT_NE(problems[0].describe().find("line 1: providerName=Acme PEC,o=postacert"), std::string::npos);
}

TEST_F(IndexTest, ProviderWithTwoCertificatesIsFoundByEach) {
    auto index = index_from_ldif(directory());
    auto old_cert = load_x509(anon_old);
    auto new_cert = load_x509(anon_new);
    auto a = index->by_certificate(old_cert.get());
    auto b = index->by_certificate(new_cert.get());
    ASSERT_TRUE(a);
    ASSERT_TRUE(b);
    EXPECT_EQ(a->dn, "providerName=Anonymous Certified Mail S.p.A.,o=postacert");
    EXPECT_EQ(a, b);  // the main record comes first for the shared new certificate
    EXPECT_EQ(a->certificates_der.size(), 2u);
    EXPECT_EQ(a->certificate_hashes.size(), 2u);
}

TEST_F(IndexTest, ProblemsAreReportedWithLineAndDn) {
    std::string text =
        root_ldif() +
        // line 8: no mailReceipt
        "dn: providerName=Broken,o=postacert\nobjectClass: provider\nproviderName: Broken\n"
        "managedDomains: broken.example\nproviderCertificateHash: " +
        acme.sha1 + "\n" + write_ldif_line("providerCertificate;binary", acme.der) + "\n" +
        provider_ldif({"Acme PEC", "", "ricevute@pec.acme.example", {"pec.acme.example"}, {&acme}, ""}) +
        provider_ldif(
            {"Other", "", "r@other.example", {"PEC.ACME.EXAMPLE", "other.example"}, {&anon_old}, ""}) +
        provider_ldif({"Orphan", "Unit", "r@orphan.example", {"orphan.example"}, {&anon_new}, ""});
    std::vector<Problem> problems;
    auto index = index_from_ldif(text, &problems);
    std::string all;
    for (auto& p : problems) all += p.describe() + "\n";
    EXPECT_NE(all.find("line 8: providerName=Broken,o=postacert: missing required attribute mailReceipt"),
              std::string::npos)
        << all;
    EXPECT_NE(all.find("domain pec.acme.example is already managed by providerName=Acme PEC,o=postacert"),
              std::string::npos)
        << all;
    EXPECT_NE(all.find("without a main record"), std::string::npos) << all;
    EXPECT_FALSE(index->by_domain("broken.example"));
    EXPECT_EQ(index->by_domain("pec.acme.example")->name, "Acme PEC");  // first claim wins
    EXPECT_EQ(index->by_domain("other.example")->name, "Other");
}

TEST_F(IndexTest, LiveIndexSwapsWhileReadersRead) {
    auto first = index_from_ldif(
        provider_ldif({"Acme PEC", "", "ricevute@pec.acme.example", {"moving.example"}, {&acme}, ""}));
    auto second =
        index_from_ldif(provider_ldif({"Other", "", "r@other.example", {"moving.example"}, {&anon_old}, ""}));
    LiveIndex live;
    EXPECT_FALSE(live.by_domain("moving.example"));  // empty before the first load
    EXPECT_FALSE(live.ready());
    EXPECT_FALSE(live.wait_ready(std::chrono::milliseconds(20)));
    std::thread loader([&] { live.store(first); });
    EXPECT_TRUE(live.wait_ready(std::chrono::seconds(5)));
    loader.join();
    EXPECT_TRUE(live.ready());
    std::atomic<bool> stop{false};
    std::atomic<long> lookups{0}, misses{0};
    auto read = [&] {
        while (!stop) {
            auto p = live.by_domain("MOVING.example");
            if (!p || (p->name != "Acme PEC" && p->name != "Other")) ++misses;
            ++lookups;
        }
    };
    std::thread reader(read), other_reader(read);
    // Each stored copy is owned by the live index alone, so a swap frees the one it
    // replaces while readers may still hold it (the sanitizer build checks the lifetimes).
    for (int i = 0; i < 2000; ++i)
        live.store(std::make_shared<const ProviderIndex>(i % 2 ? *first : *second));
    live.store(second);
    wait_until([&] { return lookups.load() > 1000; }, std::chrono::seconds(5));
    stop = true;
    reader.join();
    other_reader.join();
    EXPECT_EQ(misses.load(), 0);
    EXPECT_GT(lookups.load(), 0);
    EXPECT_EQ(live.by_domain("moving.example")->name, "Other");
}

TEST_F(IndexTest, EmptyOrUselessDocumentIsRefused) {
    DocumentPolicy policy;
    EXPECT_THROW(load_document(root_ldif(), policy), Error);
    try {
        load_document("dn: o=postacert\no: postacert\nbroken line\n", policy);
        ADD_FAILURE() << "malformed LDIF accepted";
    } catch (const ParseError& e) {
        EXPECT_EQ(e.line(), 3u);
    }
}

}  // namespace
}  // namespace pecd::index
