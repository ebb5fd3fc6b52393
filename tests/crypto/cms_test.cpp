// cms_test.cpp - CMS detached signatures against the real openssl binary, both directions
//
// Ours -> `openssl cms -verify`; `openssl cms -sign` (DER) and `-stream` (BER, indefinite
// length) -> ours; tampering; the chain verdict with the right CA, a wrong CA and a CRL.
#include "crypto/cms.hpp"

#include <gtest/gtest.h>
#include <openssl/cms.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "crypto/identity.hpp"
#include "test_pki.hpp"

namespace pecd::crypto {
namespace {

using test::read_all;
using test::TestPki;
using test::write_all;

const std::string kContent =
    "Content-Type: text/plain; charset=us-ascii\r\n\r\nMessaggio di posta certificata.\r\n";

class CmsTest : public ::testing::Test {
protected:
    TestPki pki;
    SigningIdentity identity() const {
        KeySource s;
        s.certificate = pki.path("signer.pem");
        s.key = pki.path("signer.key");
        return load_identity(s);
    }
    TrustStore trust(const std::string& ca) const { return TrustStore::from_pem_file(pki.path(ca)); }
};

TEST_F(CmsTest, OurDetachedSignatureVerifiesWithOpenssl) {
    for (auto digest : {Digest::sha256, Digest::sha1}) {
        write_all(pki.path("content.txt"), kContent);
        write_all(pki.path("ours.der"), cms_sign_detached(identity(), kContent, digest));
        auto out = pki.run(
            "openssl cms -verify -binary -inform DER -in ours.der -content content.txt -CAfile ca.pem "
            "-purpose smimesign -out /dev/null");
        EXPECT_NE(out.find("Verification successful"), std::string::npos) << out;
        auto printed = pki.run("openssl cms -cmsout -print -inform DER -in ours.der");
        EXPECT_NE(printed.find(digest == Digest::sha1 ? "algorithm: sha1" : "algorithm: sha256"),
                  std::string::npos);
        // And openssl refuses it for other content: the test can fail.
        write_all(pki.path("other.txt"), kContent + "x");
        auto r = test::run_command("cd " + test::shell_quote(pki.dir.string()) +
                                   " && openssl cms -verify -binary -inform DER -in ours.der -content "
                                   "other.txt -CAfile ca.pem -out /dev/null");
        EXPECT_NE(r.status, 0) << r.output;
    }
}

// The signed attributes' types and SMIMECapabilities value, as DER, by type.
std::map<int, std::string> signed_attributes(const std::string& der) {
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    std::unique_ptr<CMS_ContentInfo, decltype(&CMS_ContentInfo_free)> cms(
        d2i_CMS_ContentInfo(nullptr, &p, static_cast<long>(der.size())), CMS_ContentInfo_free);
    std::map<int, std::string> out;
    if (!cms) return out;
    auto* si = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms.get()), 0);
    for (int i = 0; i < CMS_signed_get_attr_count(si); ++i) {
        X509_ATTRIBUTE* a = CMS_signed_get_attr(si, i);
        int nid = OBJ_obj2nid(X509_ATTRIBUTE_get0_object(a));
        std::string value;
        if (nid == NID_SMIMECapabilities) {
            unsigned char* v = nullptr;
            int n = i2d_ASN1_TYPE(X509_ATTRIBUTE_get0_type(a, 0), &v);
            if (n > 0) value.assign(reinterpret_cast<const char*>(v), static_cast<std::size_t>(n));
            OPENSSL_free(v);
        }
        out[nid] = value;
    }
    return out;
}

TEST_F(CmsTest, SignedAttributesAreTheOnesOpensslAddsByDefault) {
    auto id = identity();
    auto ours = signed_attributes(cms_sign_detached(id, kContent, Digest::sha256));
    // OpenSSL's CMS_sign with its defaults, the same identity and content.
    std::unique_ptr<BIO, decltype(&BIO_free)> in(
        BIO_new_mem_buf(kContent.data(), static_cast<int>(kContent.size())), BIO_free);
    std::unique_ptr<CMS_ContentInfo, decltype(&CMS_ContentInfo_free)> ref(
        CMS_sign(id.certificate.get(), id.key.get(), nullptr, in.get(), CMS_BINARY | CMS_DETACHED),
        CMS_ContentInfo_free);
    ASSERT_TRUE(ref);
    unsigned char* der = nullptr;
    int n = i2d_CMS_ContentInfo(ref.get(), &der);
    ASSERT_GT(n, 0);
    auto theirs =
        signed_attributes(std::string(reinterpret_cast<const char*>(der), static_cast<std::size_t>(n)));
    OPENSSL_free(der);
    ASSERT_EQ(theirs.count(NID_SMIMECapabilities), 1u);
    EXPECT_GT(theirs[NID_SMIMECapabilities].size(), 20u);
    EXPECT_EQ(ours, theirs);  // content type, signing time, message digest, capabilities
    EXPECT_EQ(ours.size(), 4u);
}

TEST_F(CmsTest, OpensslDerSignatureVerifies) {
    write_all(pki.path("content.txt"), kContent);
    pki.run(
        "openssl cms -sign -binary -in content.txt -signer signer.pem -inkey signer.key -md sha1 "
        "-outform DER -out sig.der");
    auto der = read_all(pki.path("sig.der"));
    ASSERT_GE(der.size(), 2u);
    EXPECT_EQ(static_cast<unsigned char>(der[1]) & 0x80, 0x80) << "definite long-form length expected";
    auto trust_store = trust("ca.pem");
    auto v = cms_verify_detached(der, kContent, &trust_store);
    EXPECT_TRUE(v.parsed);
    EXPECT_TRUE(v.signature_ok) << v.error;
    EXPECT_TRUE(v.chain_checked);
    EXPECT_TRUE(v.chain_ok) << v.error;
    EXPECT_EQ(v.digest_name, "sha1");
    ASSERT_TRUE(v.signer);
    EXPECT_NE(certificate_subject(v.signer.get()).find("CN=Posta Certificata Test Provider"),
              std::string::npos);
    EXPECT_TRUE(v.signing_time.has_value());
}

// A detached signature over kContent whose signingTime attribute says `when` (an ASN.1
// time string); OpenSSL adds none of its own when one is there.
std::string signed_at(const SigningIdentity& id, const char* when) {
    BIO* in = BIO_new_mem_buf(kContent.data(), static_cast<int>(kContent.size()));
    CMS_ContentInfo* cms =
        CMS_sign(nullptr, nullptr, nullptr, nullptr, CMS_PARTIAL | CMS_DETACHED | CMS_BINARY);
    CMS_SignerInfo* si = CMS_add1_signer(cms, id.certificate.get(), id.key.get(), EVP_sha256(), CMS_PARTIAL);
    ASN1_TIME* t = ASN1_TIME_new();
    EXPECT_EQ(ASN1_TIME_set_string_X509(t, when), 1) << when;
    EXPECT_EQ(CMS_signed_add1_attr_by_NID(si, NID_pkcs9_signingTime, t->type, t, -1), 1);
    EXPECT_EQ(CMS_final(cms, in, nullptr, CMS_DETACHED | CMS_BINARY), 1);
    unsigned char* der = nullptr;
    int len = i2d_CMS_ContentInfo(cms, &der);
    std::string out(reinterpret_cast<char*>(der), static_cast<std::size_t>(len));
    OPENSSL_free(der);
    ASN1_TIME_free(t);
    CMS_ContentInfo_free(cms);
    BIO_free(in);
    return out;
}

TEST_F(CmsTest, SigningTimeBeyondTheClockIsReportedAbsent) {
    using namespace std::chrono;
    auto today = cms_verify_detached(signed_at(identity(), "20261206201850Z"), kContent);
    EXPECT_TRUE(today.signature_ok) << today.error;
    ASSERT_TRUE(today.signing_time);
    EXPECT_EQ(*today.signing_time, sys_days(2026y / December / 6) + 20h + 18min + 50s);
    // The signer chooses this time. Year 9999 once wrapped into 1816 (an overflow).
    for (const char* when : {"99991231235959Z", "22620411234717Z", "16770921001243Z"}) {
        auto v = cms_verify_detached(signed_at(identity(), when), kContent);
        EXPECT_TRUE(v.signature_ok) << when << ": " << v.error;
        EXPECT_FALSE(v.signing_time) << when;
    }
}

TEST_F(CmsTest, OpensslStreamedBerSignatureVerifies) {
    write_all(pki.path("content.txt"), kContent);
    pki.run(
        "openssl cms -sign -binary -stream -in content.txt -signer signer.pem -inkey signer.key "
        "-md sha256 -outform DER -out sig.ber");
    auto ber = read_all(pki.path("sig.ber"));
    ASSERT_GE(ber.size(), 2u);
    EXPECT_EQ(static_cast<unsigned char>(ber[0]), 0x30);
    EXPECT_EQ(static_cast<unsigned char>(ber[1]), 0x80) << "indefinite length (BER) expected";
    auto v = cms_verify_detached(ber, kContent);
    EXPECT_TRUE(v.parsed);
    EXPECT_TRUE(v.signature_ok) << v.error;
    EXPECT_FALSE(v.chain_checked);
    EXPECT_EQ(v.digest_name, "sha256");
}

TEST_F(CmsTest, TamperedContentFails) {
    auto sig = cms_sign_detached(identity(), kContent);
    ASSERT_TRUE(cms_verify_detached(sig, kContent).signature_ok);
    for (std::size_t off : {std::size_t{0}, kContent.size() / 2, kContent.size() - 1}) {
        auto changed = kContent;
        changed[off] ^= 0x01;
        auto v = cms_verify_detached(sig, changed);
        EXPECT_TRUE(v.parsed);
        EXPECT_FALSE(v.signature_ok) << "offset " << off;
        EXPECT_FALSE(v.error.empty());
    }
    EXPECT_FALSE(cms_verify_detached(sig, kContent + "\r\n").signature_ok);
}

// One thread signs contents of every size in turn (small ones go through a reader the
// thread keeps): each signature covers exactly its own content, not what came before.
TEST_F(CmsTest, SuccessiveSignaturesInOneThreadEachCoverTheirOwnContent) {
    const auto id = identity();
    const std::vector<std::string> contents = {
        kContent + std::string(3000, 'a'), std::string(200 * 1024, 'b'),    kContent,      "x", "",
        std::string(64 * 1024, 'c'),       std::string(64 * 1024 + 1, 'd'), kContent + "y"};
    for (const auto& content : contents) {
        auto sig = cms_sign_detached(id, content);
        EXPECT_TRUE(cms_verify_detached(sig, content).signature_ok) << content.size() << " bytes";
        EXPECT_FALSE(cms_verify_detached(sig, content + "z").signature_ok) << content.size() << " bytes";
        auto attached = cms_verify_attached(cms_sign_attached(id, content));
        EXPECT_TRUE(attached.signature_ok) << content.size() << " bytes";
        EXPECT_EQ(attached.content, content);
    }
}

TEST_F(CmsTest, TamperedSignatureBytesFail) {
    auto sig = cms_sign_detached(identity(), kContent);
    auto broken = sig;
    broken[broken.size() - 10] ^= 0x40;  // inside the RSA signature value
    auto v = cms_verify_detached(broken, kContent);
    EXPECT_FALSE(v.signature_ok);
    auto garbage = cms_verify_detached("not a CMS structure", kContent);
    EXPECT_FALSE(garbage.parsed);
    EXPECT_FALSE(garbage.error.empty());
    auto truncated = cms_verify_detached(std::string_view(sig).substr(0, sig.size() / 2), kContent);
    EXPECT_FALSE(truncated.parsed);
}

TEST_F(CmsTest, ChainVerdictWithRightAndWrongCa) {
    auto sig = cms_sign_detached(identity(), kContent);
    auto right = trust("ca.pem");
    auto ok = cms_verify_detached(sig, kContent, &right);
    EXPECT_TRUE(ok.signature_ok);
    EXPECT_TRUE(ok.chain_checked);
    EXPECT_TRUE(ok.chain_ok) << ok.error;

    auto wrong = trust("other-ca.pem");
    auto bad = cms_verify_detached(sig, kContent, &wrong);
    EXPECT_TRUE(bad.signature_ok) << "the signature itself is intact";
    EXPECT_TRUE(bad.chain_checked);
    EXPECT_FALSE(bad.chain_ok);
    EXPECT_NE(bad.error.find("signer certificate chain"), std::string::npos) << bad.error;

    // Far in the future the signer has expired: the chain fails on dates.
    auto later = trust("ca.pem");
    later.at = std::chrono::system_clock::now() + std::chrono::hours(24 * 800);
    auto expired = cms_verify_detached(sig, kContent, &later);
    EXPECT_TRUE(expired.signature_ok);
    EXPECT_FALSE(expired.chain_ok);
    EXPECT_NE(expired.error.find("expired"), std::string::npos) << expired.error;
}

TEST_F(CmsTest, RevokedSignerFailsTheChainWithACrl) {
    auto sig = cms_sign_detached(identity(), kContent);
    pki.empty_crl();
    auto clean = trust("ca.pem");
    clean.add_crl_file(pki.path("crl.pem"));
    auto ok = cms_verify_detached(sig, kContent, &clean);
    EXPECT_TRUE(ok.chain_ok) << ok.error;

    pki.revoke_signer();
    for (auto file : {"crl.pem", "crl.der"}) {
        auto revoked = trust("ca.pem");
        revoked.add_crl_file(pki.path(file));
        EXPECT_TRUE(revoked.check_crl);
        auto v = cms_verify_detached(sig, kContent, &revoked);
        EXPECT_TRUE(v.signature_ok);
        EXPECT_FALSE(v.chain_ok) << file;
        EXPECT_NE(v.error.find("revoked"), std::string::npos) << v.error;
    }
}

// A TrustStore keeps its OpenSSL store and the chains it found good (TrustCache): a kept
// verdict must never outlive what decided it.
TEST_F(CmsTest, AReusedTrustStoreFollowsItsTimeCrlsAndAnchors) {
    const auto now = std::chrono::system_clock::now();
    auto sig = cms_sign_detached(identity(), kContent);
    pki.empty_crl();
    auto t = trust("ca.pem");
    t.add_crl_file(pki.path("crl.pem"));
    ASSERT_TRUE(cms_verify_detached(sig, kContent, &t).chain_ok);
    ASSERT_TRUE(cms_verify_detached(sig, kContent, &t).chain_ok);

    // Past the CRL's next update (30 days), inside the signer's validity (365 days).
    t.at = now + std::chrono::hours(24 * 40);
    auto stale = cms_verify_detached(sig, kContent, &t);
    EXPECT_FALSE(stale.chain_ok);
    EXPECT_NE(stale.error.find("CRL has expired"), std::string::npos) << stale.error;
    // Before the signer's validity.
    t.at = now - std::chrono::hours(48);
    EXPECT_FALSE(cms_verify_detached(sig, kContent, &t).chain_ok);
    t.at.reset();
    ASSERT_TRUE(cms_verify_detached(sig, kContent, &t).chain_ok);

    // The CRL replaced by one that revokes the signer.
    pki.revoke_signer();
    t.crls_der.clear();
    t.add_crl_file(pki.path("crl.der"));
    auto revoked = cms_verify_detached(sig, kContent, &t);
    EXPECT_TRUE(revoked.signature_ok);
    EXPECT_FALSE(revoked.chain_ok);
    EXPECT_NE(revoked.error.find("revoked"), std::string::npos) << revoked.error;

    // The anchors replaced by a CA that did not issue the signer.
    auto u = trust("ca.pem");
    ASSERT_TRUE(cms_verify_detached(sig, kContent, &u).chain_ok);
    u.anchors = trust("other-ca.pem").anchors;
    EXPECT_FALSE(cms_verify_detached(sig, kContent, &u).chain_ok);
    // A copy starts from its own members.
    auto copy = u;
    copy.anchors = trust("ca.pem").anchors;
    EXPECT_TRUE(cms_verify_detached(sig, kContent, &copy).chain_ok);
    EXPECT_FALSE(cms_verify_detached(sig, kContent, &u).chain_ok);
}

// A kept chain is found by its signer: a copy of the message with one more certificate
// (the certificate set is not signed) uses it, and one without the intermediate the chain
// was built with is checked in full and refused, as on a fresh store.
TEST_F(CmsTest, AKeptChainIgnoresExtraCertificatesButNeedsItsIntermediate) {
    pki.run(
        "printf 'basicConstraints=critical,CA:TRUE\\nkeyUsage=critical,keyCertSign,cRLSign\\n' > inter.ext");
    pki.run(
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout inter.key -out "
        "inter.csr "
        "-subj '/O=Test Root/CN=Test PEC Intermediate CA'");
    pki.run(
        "openssl x509 -req -in inter.csr -CA ca.pem -CAkey ca.key -set_serial 8192 -days 365 -sha256 "
        "-extfile inter.ext -out inter.pem");
    pki.run(
        "openssl x509 -req -in signer.csr -CA inter.pem -CAkey inter.key -set_serial 8193 -days 365 -sha256 "
        "-extfile signer.ext -out leaf.pem");
    pki.run(
        "cat leaf.pem inter.pem > with-chain.pem && cat leaf.pem inter.pem other-ca.pem ca.pem > "
        "with-extra.pem");
    auto sign_with = [&](const std::string& certificate) {
        KeySource s;
        s.certificate = pki.path(certificate);
        s.key = pki.path("signer.key");
        return cms_sign_detached(load_identity(s), kContent);
    };
    const auto with_chain = sign_with("with-chain.pem");
    const auto with_extra = sign_with("with-extra.pem");
    const auto leaf_only = sign_with("leaf.pem");

    auto t = trust("ca.pem");
    ASSERT_TRUE(cms_verify_detached(with_chain, kContent, &t).chain_ok);
    EXPECT_EQ(t.cache.kept_chain_uses(), 0u);
    ASSERT_TRUE(cms_verify_detached(with_chain, kContent, &t).chain_ok);
    EXPECT_EQ(t.cache.kept_chain_uses(), 1u);
    auto extra = cms_verify_detached(with_extra, kContent, &t);
    EXPECT_TRUE(extra.chain_ok) << extra.error;
    EXPECT_EQ(extra.certificates.size(), 4u);
    EXPECT_EQ(t.cache.kept_chain_uses(), 2u);
    auto missing = cms_verify_detached(leaf_only, kContent, &t);
    EXPECT_TRUE(missing.signature_ok);
    EXPECT_FALSE(missing.chain_ok);
    EXPECT_NE(missing.error.find("local issuer"), std::string::npos) << missing.error;
    EXPECT_EQ(t.cache.kept_chain_uses(), 2u);
    auto fresh = trust("ca.pem");
    EXPECT_FALSE(cms_verify_detached(leaf_only, kContent, &fresh).chain_ok);
}

// The daemon's reception point verifies on several threads with one trust snapshot.
TEST_F(CmsTest, OneTrustStoreServesConcurrentVerifications) {
    auto sig = cms_sign_detached(identity(), kContent);
    pki.empty_crl();
    auto t = trust("ca.pem");
    t.add_crl_file(pki.path("crl.pem"));
    std::atomic<int> good{0}, refused{0};
    std::vector<std::thread> threads;
    for (int k = 0; k < 4; ++k)
        threads.emplace_back([&] {
            for (int i = 0; i < 25; ++i) {
                if (cms_verify_detached(sig, kContent, &t).chain_ok) ++good;
                auto other = cms_verify_detached(sig, kContent + "x", &t);
                if (!other.signature_ok && other.chain_ok) ++refused;
            }
        });
    for (auto& th : threads) th.join();
    EXPECT_EQ(good.load(), 100);
    EXPECT_EQ(refused.load(), 100);
}

}  // namespace
}  // namespace pecd::crypto
