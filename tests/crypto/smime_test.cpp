// smime_test.cpp - multipart/signed reading: messages signed by the openssl binary, raw
// boundary rules, CRLF canonicalisation and one precise finding per structural defect
#include "crypto/smime.hpp"

#include <gtest/gtest.h>

#include "core/strings.hpp"
#include "test_pki.hpp"

namespace pecd::crypto {
namespace {

using test::read_all;
using test::TestPki;
using test::write_all;

const std::string kEntity =
    "Content-Type: multipart/mixed; boundary=\"inner\"\r\n\r\n"
    "--inner\r\nContent-Type: text/plain\r\n\r\nprima riga\r\n--outerX is not a delimiter\r\n"
    "--inner\r\nContent-Type: application/xml; name=\"daticert.xml\"\r\n\r\n<postacert/>\r\n--inner--\r\n";

std::string to_lf(std::string s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i)
        if (!(s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n')) out += s[i];
    return out;
}

class SmimeTest : public ::testing::Test {
protected:
    TestPki pki;
    // Signs kEntity with `openssl <tool> -sign` and returns the whole S/MIME message.
    std::string openssl_signed(const std::string& tool, const std::string& extra) {
        write_all(pki.path("entity.txt"), kEntity);
        pki.run("openssl " + tool + " -sign -in entity.txt -signer signer.pem -inkey signer.key " + extra +
                " -out signed.eml");
        return "From: posta-certificata@pec.test.example\nSubject: test\n" + read_all(pki.path("signed.eml"));
    }
};

TEST_F(SmimeTest, OpensslSmimeSha1Verifies) {
    auto msg = openssl_signed("smime", "-stream -md sha1");
    auto v = smime_verify(msg);
    ASSERT_EQ(v.parts.status, SmimeStatus::ok) << v.parts.finding;
    EXPECT_EQ(v.parts.protocol, "application/x-pkcs7-signature");
    EXPECT_EQ(v.parts.micalg, "sha1");
    EXPECT_TRUE(v.intact()) << v.cms.error;
    EXPECT_EQ(v.cms.digest_name, "sha1");
    EXPECT_TRUE(v.parts.warnings.empty());
}

TEST_F(SmimeTest, OpensslCmsSha256VerifiesAndChains) {
    auto msg = openssl_signed("cms", "-md sha256");
    auto trust = TrustStore::from_pem_file(pki.path("ca.pem"));
    auto v = smime_verify(msg, &trust);
    ASSERT_EQ(v.parts.status, SmimeStatus::ok) << v.parts.finding;
    EXPECT_EQ(v.parts.protocol, "application/pkcs7-signature");
    EXPECT_EQ(v.parts.micalg, "sha-256");
    EXPECT_TRUE(v.intact()) << v.cms.error;
    EXPECT_TRUE(v.cms.chain_ok) << v.cms.error;
}

TEST_F(SmimeTest, SignedPartIsTakenVerbatim) {
    auto msg = openssl_signed("cms", "-binary");
    auto p = smime_locate(msg);
    ASSERT_EQ(p.status, SmimeStatus::ok);
    // openssl writes "\n------boundary" after the content: that line break is the delimiter's.
    EXPECT_EQ(p.signed_part, kEntity);
}

TEST_F(SmimeTest, LfOnlyMessageVerifiesAfterCanonicalisation) {
    auto msg = to_lf(openssl_signed("smime", "-stream"));
    ASSERT_EQ(msg.find('\r'), std::string::npos);
    auto v = smime_verify(msg);
    ASSERT_EQ(v.parts.status, SmimeStatus::ok) << v.parts.finding;
    EXPECT_TRUE(v.intact()) << v.cms.error;
}

TEST_F(SmimeTest, OneChangedByteInTheSignedPartBreaksTheSignature) {
    auto msg = openssl_signed("cms", "");
    auto p = smime_locate(msg);
    ASSERT_EQ(p.status, SmimeStatus::ok);
    auto start = static_cast<std::size_t>(p.signed_part.data() - msg.data());
    for (std::size_t rel :
         {std::size_t{0}, std::size_t{20}, p.signed_part.size() / 2, p.signed_part.size() - 1}) {
        auto changed = msg;
        char& c = changed[start + rel];
        c = c == 'x' ? 'y' : 'x';
        auto v = smime_verify(changed);
        EXPECT_FALSE(v.intact()) << "offset " << rel;
    }
}

TEST_F(SmimeTest, BerSignatureBoundaryInsideContentAndTransportPadding) {
    // "--outerX ..." inside the content would cut the part short if taken as a delimiter.
    // The CRLF before a delimiter belongs to the delimiter: the signed bytes end before it.
    write_all(pki.path("entity.txt"), kEntity.substr(0, kEntity.size() - 2));
    pki.run(
        "openssl cms -sign -binary -stream -in entity.txt -signer signer.pem -inkey signer.key "
        "-outform DER -out sig.der");
    std::string b64 = pki.run("openssl base64 -in sig.der");
    std::string msg =
        "Content-Type: multipart/signed; boundary=outer;\r\n protocol=\"application/pkcs7-signature\"; "
        "micalg=sha1\r\n\r\npreamble\r\n--outer  \r\n" +
        kEntity +
        "--outer\t\r\nContent-Type: application/pkcs7-signature\r\nContent-Transfer-Encoding: "
        "base64\r\n\r\n" +
        b64 + "\r\n--outer-- \r\nepilogue\r\n";
    auto v = smime_verify(msg);
    ASSERT_EQ(v.parts.status, SmimeStatus::ok) << v.parts.finding;
    EXPECT_EQ(static_cast<unsigned char>(v.parts.signature_der[1]), 0x80) << "BER indefinite length";
    EXPECT_TRUE(v.intact()) << v.cms.error;
    EXPECT_NE(v.parts.signed_part.find("--outerX is not a delimiter"), std::string::npos);
    ASSERT_EQ(v.parts.warnings.size(), 1u);
    EXPECT_NE(v.parts.warnings[0].find("micalg=sha1"), std::string::npos) << v.parts.warnings[0];
}

TEST(SmimeFindings, EachDefectHasItsOwnStatus) {
    auto not_signed = smime_verify("From: a@b\r\nContent-Type: text/plain\r\n\r\nhello\r\n");
    EXPECT_EQ(not_signed.parts.status, SmimeStatus::not_multipart_signed);
    EXPECT_NE(not_signed.parts.finding.find("text/plain"), std::string::npos);
    EXPECT_EQ(smime_verify("Subject: x\r\n\r\nno content type\r\n").parts.status,
              SmimeStatus::not_multipart_signed);

    auto no_boundary =
        smime_verify("Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"\r\n\r\nx");
    EXPECT_EQ(no_boundary.parts.status, SmimeStatus::malformed_multipart);
    EXPECT_NE(no_boundary.parts.finding.find("boundary"), std::string::npos);

    auto no_delims = smime_verify("Content-Type: multipart/signed; boundary=b\r\n\r\nnothing here\r\n");
    EXPECT_EQ(no_delims.parts.status, SmimeStatus::malformed_multipart);

    auto only_first = smime_verify(
        "Content-Type: multipart/signed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nx\r\n");
    EXPECT_EQ(only_first.parts.status, SmimeStatus::missing_signature_part);
    EXPECT_NE(only_first.parts.finding.find("smime.p7s"), std::string::npos);
    auto closed_early = smime_verify(
        "Content-Type: multipart/signed; boundary=b\r\n\r\n--b\r\nContent-Type: "
        "text/plain\r\n\r\nx\r\n--b--\r\n");
    EXPECT_EQ(closed_early.parts.status, SmimeStatus::missing_signature_part);

    auto pgp = smime_verify(
        "Content-Type: multipart/signed; boundary=b; "
        "protocol=\"application/pgp-signature\"\r\n\r\n--b\r\n\r\nx\r\n"
        "--b\r\nContent-Type: application/pgp-signature\r\n\r\nsig\r\n--b--\r\n");
    EXPECT_EQ(pgp.parts.status, SmimeStatus::unsupported_protocol);

    const std::string head =
        "Content-Type: multipart/signed; boundary=b; "
        "protocol=\"application/pkcs7-signature\"\r\n\r\n--b\r\n\r\n"
        "x\r\n--b\r\nContent-Type: application/pkcs7-signature; name=smime.p7s\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n";
    auto bad_b64 = smime_verify(head + "MII..PKw==\r\n--b--\r\n");
    EXPECT_EQ(bad_b64.parts.status, SmimeStatus::unparsable_signature);
    EXPECT_NE(bad_b64.parts.finding.find("invalid base64 character '.'"), std::string::npos)
        << bad_b64.parts.finding;
    auto not_cms = smime_verify(head + "aGVsbG8gd29ybGQ=\r\n--b--\r\n");
    EXPECT_EQ(not_cms.parts.status, SmimeStatus::unparsable_signature);
    EXPECT_NE(not_cms.parts.finding.find("CMS"), std::string::npos) << not_cms.parts.finding;
    auto empty = smime_verify(head + "\r\n--b--\r\n");
    EXPECT_EQ(empty.parts.status, SmimeStatus::unparsable_signature);
    EXPECT_NE(empty.parts.finding.find("empty"), std::string::npos);
}

TEST(SmimeHelpers, CanonicaliseCrlf) {
    std::string storage;
    EXPECT_EQ(canonicalize_crlf("a\r\nb\r\n", storage), "a\r\nb\r\n");
    EXPECT_TRUE(storage.empty()) << "no copy when already canonical";
    EXPECT_EQ(canonicalize_crlf("a\nb\r\nc\n", storage), "a\r\nb\r\nc\r\n");
    EXPECT_EQ(canonicalize_crlf("\n", storage), "\r\n");
    EXPECT_EQ(canonicalize_crlf("a\rb", storage), "a\rb");
}

TEST(SmimeHelpers, RawHeadersUnfoldAndMatchCaseInsensitively) {
    std::string block =
        "X-Ricevuta: accettazione\r\nContent-Type: multipart/signed;\r\n\tboundary=x\r\nbroken\r\n";
    EXPECT_EQ(raw_header(block, "x-ricevuta"), "accettazione");
    EXPECT_EQ(raw_header(block, "Content-Type"), "multipart/signed;\tboundary=x");
    EXPECT_EQ(raw_header(block, "X-Trasporto"), "");
    auto e = split_entity("A: b\nC: d\n\nbody\n");
    EXPECT_EQ(e.headers, "A: b\nC: d\n");
    EXPECT_EQ(e.body, "body\n");
    EXPECT_EQ(split_entity("\r\nbody").body, "body");
    EXPECT_EQ(split_entity("A: b").headers, "A: b");
}

}  // namespace
}  // namespace pecd::crypto
