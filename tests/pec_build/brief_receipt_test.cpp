// brief_receipt_test.cpp - the brief receipt keeps the MIME structure and hashes named parts
#include "pec/brief_receipt.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include "core/strings.hpp"
#include "support.hpp"

using namespace pecd;
using namespace pecd::pec;
using namespace pectest;

namespace {

std::string sha1_hex(std::string_view s) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(s.data(), s.size(), md, &n, EVP_sha1(), nullptr);
    return to_hex(std::string_view(reinterpret_cast<char*>(md), n));
}

const std::string kPdfBody =
    "JVBERi0xLjQKJcOkw7zDtsOfCjIgMCBvYmoK\r\nPDwvTGVuZ3RoIDMgMCBSL0ZpbHRlci9GbGF0ZURl\r\n";
const std::string kForwarded =
    "From: x@y.it\r\nSubject: inoltro\r\nContent-Type: text/plain\r\n\r\nmessaggio inoltrato\r\n";

std::string mixed_original() {
    return "From: Mario <mario@pec.test.it>\r\n"
           "Subject: Allegati\r\n"
           "MIME-Version: 1.0\r\n"
           "Content-Type: multipart/mixed; boundary=\"outer\"\r\n"
           "\r\n"
           "This is the preamble.\r\n"
           "--outer\r\n"
           "Content-Type: multipart/alternative; boundary=\"alt\"\r\n"
           "\r\n"
           "--alt\r\n"
           "Content-Type: text/plain; charset=utf-8\r\n"
           "\r\n"
           "Testo in chiaro.\r\n"
           "--alt\r\n"
           "Content-Type: text/html; charset=utf-8\r\n"
           "\r\n"
           "<p>Testo</p>\r\n"
           "--alt--\r\n"
           "--outer\r\n"
           "Content-Type: application/pdf; name=\"fattura.pdf\"\r\n"
           "Content-Transfer-Encoding: base64\r\n"
           "\r\n" +
           kPdfBody +
           "--outer\r\n"
           "Content-Type: application/octet-stream\r\n"
           "Content-Disposition: attachment; filename*=UTF-8''perch%C3%A9.txt\r\n"
           "\r\n"
           "dati\r\n"
           "--outer\r\n"
           "Content-Type: message/rfc822; name=\"inoltro.eml\"\r\n"
           "\r\n" +
           kForwarded +
           "--outer--\r\n"
           "epilogue\r\n";
}

}  // namespace

TEST(BriefReceipt, KeepsStructureAndHashesEveryNamedPart) {
    auto original = mixed_original();
    auto brief = brief_original(original);
    auto before = view_message(original);
    auto after = view_message(brief);
    EXPECT_EQ(before.structure,
              (std::vector<std::string>{"0:multipart/mixed", "1:multipart/alternative", "2:text/plain",
                                        "2:text/html", "1:application/pdf:fattura.pdf",
                                        "1:application/octet-stream:perch\xc3\xa9.txt",
                                        "1:message/rfc822:inoltro.eml"}));
    EXPECT_EQ(after.structure, (std::vector<std::string>{
                                   "0:multipart/mixed", "1:multipart/alternative", "2:text/plain",
                                   "2:text/html", "1:text/plain:fattura.pdf.hash",
                                   "1:text/plain:perch\xc3\xa9.txt.hash", "1:text/plain:inoltro.eml.hash"}));
    // Hash input: the part body as transmitted (base64 text), CRLF; SHA-1 hex.
    EXPECT_EQ(after.part("fattura.pdf.hash")->decoded, sha1_hex(kPdfBody.substr(0, kPdfBody.size() - 2)));
    EXPECT_EQ(after.part("perch\xc3\xa9.txt.hash")->decoded, sha1_hex("dati"));
    // An attached message is hashed as a whole.
    EXPECT_EQ(after.part("inoltro.eml.hash")->decoded, sha1_hex(kForwarded.substr(0, kForwarded.size() - 2)));
    // Unnamed parts, headers, preamble and epilogue are byte for byte the original's.
    EXPECT_EQ(brief.substr(0, brief.find("--outer\r\n")), original.substr(0, original.find("--outer\r\n")));
    EXPECT_NE(brief.find("Testo in chiaro.\r\n--alt\r\n"), std::string::npos);
    EXPECT_NE(brief.find("<p>Testo</p>\r\n--alt--\r\n"), std::string::npos);
    EXPECT_EQ(brief.substr(brief.size() - 21), "--outer--\r\nepilogue\r\n");
    EXPECT_EQ(brief.find("JVBERi0x"), std::string::npos);
}

TEST(BriefReceipt, SignedOriginalKeepsItsSignaturePart) {
    std::string sig_part =
        "Content-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        "Content-Disposition: attachment; filename=\"smime.p7s\"\r\n"
        "\r\n"
        "MIAGCSqGSIb3DQEHAqCAMIACAQExDzANBglghkgBZQMEAgEFADCABgkqhkiG9w0BBwEAAKCAMIID\r\n";
    std::string original =
        "From: mario@pec.test.it\r\n"
        "Subject: firmato\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256; "
        "boundary=\"sig\"\r\n"
        "\r\n"
        "--sig\r\n"
        "Content-Type: multipart/mixed; boundary=\"in\"\r\n"
        "\r\n"
        "--in\r\n"
        "Content-Type: text/plain\r\n"
        "\r\n"
        "corpo\r\n"
        "--in\r\n"
        "Content-Type: application/pdf; name=\"a.pdf\"\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        "\r\n" +
        kPdfBody +
        "--in--\r\n"
        "\r\n"
        "--sig\r\n" +
        sig_part + "\r\n--sig--\r\n";
    auto brief = brief_original(original);
    auto after = view_message(brief);
    EXPECT_EQ(after.structure, (std::vector<std::string>{"0:multipart/signed", "1:multipart/mixed",
                                                         "2:text/plain", "2:text/plain:a.pdf.hash",
                                                         "1:application/pkcs7-signature:smime.p7s"}));
    // The signature part is carried verbatim.
    EXPECT_NE(brief.find("--sig\r\n" + sig_part + "\r\n--sig--\r\n"), std::string::npos);
}

TEST(BriefReceipt, OpaqueSmimeOriginalIsCarriedWhole) {
    std::string original =
        "From: mario@pec.test.it\r\n"
        "Content-Type: application/pkcs7-mime; smime-type=signed-data; name=\"smime.p7m\"\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        "\r\n"
        "MIAGCSqGSIb3DQEHAqCAMIACAQExDzANBglghkgBZQMEAgEFADCABgkqhkiG9w0BBwEAAKCAMIID\r\n";
    EXPECT_TRUE(is_pkcs7_mime(original));
    EXPECT_EQ(brief_original(original), original);
}

TEST(BriefReceipt, SinglePartNamedMessageKeepsItsHeaders) {
    std::string original =
        "From: mario@pec.test.it\r\nSubject: solo allegato\r\nContent-Type: application/pdf; "
        "name=\"x.pdf\"\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n" +
        kPdfBody;
    auto brief = brief_original(original);
    auto v = view_message(brief);
    EXPECT_EQ(v.header("subject"), "solo allegato");
    EXPECT_EQ(v.structure, (std::vector<std::string>{"0:text/plain:x.pdf.hash"}));
    EXPECT_EQ(v.parts.at(0).decoded.substr(0, 40), sha1_hex(kPdfBody));
}

TEST(BriefReceipt, HostileStructuresDoNotCrash) {
    // Deep nesting, missing close delimiters, boundaries that never appear, empty input.
    std::string deep = "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n";
    for (int i = 0; i < 200; ++i) deep += "--b\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n";
    deep += "--b\r\nContent-Type: text/plain; name=\"x\"\r\n\r\nz\r\n";
    EXPECT_FALSE(brief_original(deep).empty());
    EXPECT_FALSE(brief_original("Content-Type: multipart/mixed; boundary=\"zz\"\r\n\r\nno parts").empty());
    EXPECT_EQ(brief_original(""), "");
    EXPECT_FALSE(brief_original("\r\n\r\n--\r\n").empty());
    std::string base = mixed_original();
    for (std::size_t n = 0; n < base.size(); n += 7) (void)brief_original(base.substr(0, n));
}
