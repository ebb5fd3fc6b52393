// ldif_test.cpp - RFC 2849 reader edge cases: folding, base64, options, comments, change
// records, and errors that name the line.
#include "index/ldif.hpp"

#include <gtest/gtest.h>

#include <iostream>
#include <random>

#include "core/error.hpp"
#include "index/provider_index.hpp"
#include "ldif_entries.hpp"
#include "mutate.hpp"

namespace pecd::index {
namespace {

// The line number a ParseError names for this input ("" when no error).
std::size_t error_line(const std::string& text, std::string* message = nullptr) {
    try {
        apply_ldif(parse_ldif(text));
    } catch (const ParseError& e) {
        if (message) *message = e.what();
        return e.line();
    }
    return 0;
}

TEST(Ldif, FoldedLinesAreJoinedAndCommentsDropped) {
    std::string text =
        "version: 1\n"
        "# a comment that is\n"
        "  continued here\n"
        "dn: providerName=Anonymous Certified Mail S.p.A.,\n"
        " o=postacert\n"
        "providerName: Anonymous Certified\n"
        "  Mail S.p.A.\n"
        "description: one\n"
        "#inner comment\n"
        "description: two\r\n"
        "\n";
    auto records = parse_ldif(text);
    ASSERT_EQ(records.size(), 1u);
    EXPECT_EQ(records[0].dn, "providerName=Anonymous Certified Mail S.p.A.,o=postacert");
    EXPECT_EQ(records[0].line, 4u);
    ASSERT_EQ(records[0].attributes.size(), 3u);
    EXPECT_EQ(records[0].attributes[0].value, "Anonymous Certified Mail S.p.A.");
    EXPECT_EQ(records[0].attributes[2].value, "two");  // CR of CRLF removed
    EXPECT_EQ(records[0].attributes[2].line, 10u);
}

TEST(Ldif, Base64ValuesAndBinaryOption) {
    // "caf\xC3\xA9" (UTF-8) and bytes with a NUL, folded in the middle of the base64.
    std::string text =
        "dn:: cHJvdmlkZXJOYW1lPWNhZsOpLG89cG9zdGFjZXJ0\n"
        "providerName:: Y2Fmw6k=\n"
        "providerCertificate;Binary:: AAEC\n"
        " A/8=\n"
        "\n";
    auto records = parse_ldif(text);
    ASSERT_EQ(records.size(), 1u);
    EXPECT_EQ(records[0].dn, "providerName=caf\xC3\xA9,o=postacert");
    EXPECT_EQ(records[0].attributes[0].value, "caf\xC3\xA9");
    auto& cert = records[0].attributes[1];
    EXPECT_EQ(cert.type, "providerCertificate");
    ASSERT_EQ(cert.options.size(), 1u);
    EXPECT_EQ(cert.options[0], "binary");
    EXPECT_EQ(cert.value, std::string("\x00\x01\x02\x03\xff", 5));
}

TEST(Ldif, WriterRoundTripsUnsafeAndLongValues) {
    std::string binary(300, '\0');
    for (std::size_t i = 0; i < binary.size(); ++i) binary[i] = static_cast<char>(i);
    std::string text = write_ldif_line("dn", "providerName=X,o=postacert") +
                       write_ldif_line("description", " leading space") +
                       write_ldif_line("description", ":colon") +
                       write_ldif_line("description", std::string(200, 'a')) +
                       write_ldif_line("providerCertificate;binary", binary);
    for (std::size_t pos = 0, next; (next = text.find('\n', pos)) != std::string::npos; pos = next + 1)
        EXPECT_LE(next - pos, 76u);
    auto r = parse_ldif(text);
    ASSERT_EQ(r.size(), 1u);
    ASSERT_EQ(r[0].attributes.size(), 4u);
    EXPECT_EQ(r[0].attributes[0].value, " leading space");
    EXPECT_EQ(r[0].attributes[1].value, ":colon");
    EXPECT_EQ(r[0].attributes[2].value, std::string(200, 'a'));
    EXPECT_EQ(r[0].attributes[3].value, binary);
    EXPECT_EQ(base64_encode("\xff\xfe"), "//4=");
    EXPECT_EQ(base64_decode("//4="), "\xff\xfe");
}

TEST(Ldif, ChangeRecordsAreApplied) {
    std::string text =
        "dn: providerName=A,o=postacert\nproviderName: A\nmanagedDomains: a.example\n\n"
        "dn: providerName=B,o=postacert\nproviderName: B\nmanagedDomains: b.example\n\n"
        "dn: providerName=A,o=postacert\nchangetype: modify\nadd: managedDomains\nmanagedDomains: "
        "a2.example\n-\n"
        "replace: description\ndescription: moved\n-\ndelete: managedDomains\nmanagedDomains: "
        "a.example\n-\n\n"
        "dn: PROVIDERNAME=B, O=postacert\nchangetype: delete\n\n"
        "dn: providerName=C,o=postacert\nchangetype: add\nproviderName: C\n\n";
    auto entries = apply_ldif(parse_ldif(text));
    ASSERT_EQ(entries.size(), 2u);
    EXPECT_EQ(entries[0].first("providerName"), "A");
    auto domains = entries[0].values("managedDomains");
    ASSERT_EQ(domains.size(), 1u);
    EXPECT_EQ(domains[0]->value, "a2.example");
    EXPECT_EQ(entries[0].first("description"), "moved");
    EXPECT_EQ(entries[1].first("providerName"), "C");
}

TEST(Ldif, ErrorsNameTheLine) {
    std::string msg;
    EXPECT_EQ(error_line("dn: o=postacert\no: postacert\nthis line has no colon\n", &msg), 3u);
    EXPECT_NE(msg.find("line 3"), std::string::npos) << msg;
    EXPECT_NE(msg.find("no ':'"), std::string::npos) << msg;

    EXPECT_EQ(error_line("dn: o=x\no: x\n\ndn: o=y\ndescription:: not*base64\n", &msg), 5u);
    EXPECT_NE(msg.find("base64"), std::string::npos) << msg;

    EXPECT_EQ(error_line(" continued nothing\n", &msg), 1u);
    EXPECT_NE(msg.find("continuation"), std::string::npos) << msg;

    EXPECT_EQ(error_line("o: postacert\n\n", &msg), 1u);
    EXPECT_NE(msg.find("dn:"), std::string::npos) << msg;

    EXPECT_EQ(error_line("dn: o=x\no: x\n\ndn: o=y\ndescription:< file:///etc/passwd\n", &msg), 5u);
    EXPECT_NE(msg.find("URL"), std::string::npos) << msg;

    EXPECT_EQ(error_line("dn: o=x\nchangetype: modrdn\nnewrdn: o=z\n", &msg), 2u);
    EXPECT_NE(msg.find("modrdn"), std::string::npos) << msg;

    EXPECT_EQ(error_line("dn: o=x\no: x\n\n\ndn: o=X\no: x\n", &msg), 5u);
    EXPECT_NE(msg.find("twice"), std::string::npos) << msg;

    EXPECT_EQ(error_line("dn: o=x\nchangetype: delete\n", &msg), 1u);
    EXPECT_NE(msg.find("does not exist"), std::string::npos) << msg;

    EXPECT_EQ(error_line("dn: o=x\nbad attr name: v\n", &msg), 2u);
    EXPECT_EQ(error_line("version: 2\n\ndn: o=x\no: x\n", &msg), 1u);
    EXPECT_EQ(error_line(std::string("dn: o=x\no: a\0b\n", 15), &msg), 2u);
}

TEST(Ldif, HostileInputNeverCrashes) {
    std::string seeds[] = {"dn:",
                           "dn::",
                           "dn: o=x\n-\n",
                           "dn: o=x\nchangetype: modify\n-\n",
                           ":",
                           "::",
                           "\n\n\n",
                           "dn: o=x\nchangetype: modify\nadd:\n",
                           "dn: o=x\nx;:\n",
                           "dn:: ====\n"};
    for (auto& s : seeds) {
        try {
            apply_ldif(parse_ldif(s));
        } catch (const ParseError&) {
        }
    }
    SUCCEED();
}

// A directory as the central index serves it (fuzz/ldif/corpus), mutated: seeded and
// bounded (the fuzz targets' mutator). Reading and indexing either succeed or fail with a
// ParseError naming the line; a built index answers look-ups; nothing else escapes
// (fuzz/common/ldif_entries.hpp).
TEST(Ldif, MutatedDirectoriesIndexOrFailWithAParseError) {
    auto seeds = fuzz::load_dir(std::string(PECD_SOURCE_DIR) + "/fuzz/ldif/corpus", ".ldif");
    ASSERT_EQ(seeds.size(), 3u);
    for (const auto& s : seeds) {
        auto o = fuzz::ldif_entry(s);
        ASSERT_TRUE(o.indexed) << o.violation << "\n" << s;
    }
    const std::vector<std::string> tokens = {"\n",
                                             "\n ",
                                             "\n\n",
                                             ":",
                                             "::",
                                             ":<",
                                             "dn: ",
                                             "-\n",
                                             ";binary",
                                             "=",
                                             ",",
                                             "o=postacert",
                                             "changetype: delete\n",
                                             "#",
                                             "managedDomains: ",
                                             "providerName=",
                                             std::string(1, '\0'),
                                             "\xff",
                                             "\r\n",
                                             std::string(5000, 'A')};
    std::mt19937 rng(20261206u);
    int built = 0, refused = 0;
    for (int i = 0; i < 100000; ++i) {
        auto text = fuzz::mutate(seeds[static_cast<std::size_t>(i) % seeds.size()],
                                 seeds[static_cast<std::size_t>(i + 1) % seeds.size()], rng, tokens);
        auto o = fuzz::ldif_entry(text);
        ASSERT_EQ(o.violation, "") << "mutation " << i << ":\n" << text;
        (o.indexed ? built : refused)++;
    }
    std::cout << "directory mutations: " << built << " indexed, " << refused << " refused\n";
    EXPECT_GT(built, 0);
    EXPECT_GT(refused, 0);
}

TEST(Ldif, NormalizedDnsCompareEqual) {
    EXPECT_EQ(normalize_dn("providerUnit=Backup , providerName=Acme PEC,O=PostaCert"),
              "providerunit=backup,providername=acme pec,o=postacert");
}

}  // namespace
}  // namespace pecd::index
