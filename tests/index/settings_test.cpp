// settings_test.cpp - the [index] configuration section: keys, defaults, exact errors,
// and its translation into IndexService settings.
#include <gtest/gtest.h>

#include "config/config.hpp"
#include "core/error.hpp"
#include "index/index_service.hpp"
#include "index_test_support.hpp"

namespace pecd::index {
namespace {

const std::string kBase = "data_dir = \"/tmp/x\"\n[[listener]]\nname = \"mx\"\nport = 2525\n";

std::string error_of(const std::string& toml) {
    try {
        config::parse_config(toml);
    } catch (const ParseError& e) {
        return e.what();
    }
    return "";
}

TEST(IndexConfig, DefaultsAndKeys) {
    auto none = config::parse_config(kBase);
    EXPECT_EQ(none.index.source, "none");
    EXPECT_EQ(none.index.refresh_interval, std::chrono::seconds(86400));
    EXPECT_EQ(settings_from_config(none.index).source, SourceKind::none);

    test::TempDir dir;
    test::write_file(dir / "ldap.pw", "s3cret\n");
    auto c = config::parse_config(kBase +
                                  "[index]\nsource = \"ldap\"\nldap_uri = \"ldap://127.0.0.1:389\"\n"
                                  "ldap_bind_dn = \"cn=pecd,o=postacert\"\nldap_password_file = \"" +
                                  (dir / "ldap.pw").string() + "\"\nrefresh_interval = 3600\ntimeout = 5\n");
    auto s = settings_from_config(c.index);
    EXPECT_EQ(s.source, SourceKind::ldap);
    EXPECT_EQ(s.ldap_uri, "ldap://127.0.0.1:389");
    EXPECT_EQ(s.ldap_base, "o=postacert");
    EXPECT_EQ(s.ldap_password, "s3cret");
    EXPECT_EQ(s.refresh_interval, std::chrono::seconds(3600));
    EXPECT_EQ(s.timeout, std::chrono::seconds(5));

    auto h = config::parse_config(
        kBase +
        "[index]\nsource = \"https\"\nurl = \"https://igpec.example/igpec.ldif.p7m\"\n"
        "trust_anchor = \"/etc/pecd/agid.pem\"\ncache_file = \"/var/lib/pecd/igpec.p7m\"\n");
    EXPECT_EQ(settings_from_config(h.index).source, SourceKind::https);
    EXPECT_EQ(settings_from_config(h.index).cache_file, "/var/lib/pecd/igpec.p7m");
}

TEST(IndexConfig, ErrorsNameTheKey) {
    EXPECT_NE(error_of(kBase + "[index]\nsource = \"ftp\"\n").find("index.source: must be one of"),
              std::string::npos);
    EXPECT_NE(error_of(kBase + "[index]\nsource = \"file\"\n").find("index.file"), std::string::npos);
    EXPECT_NE(
        error_of(kBase + "[index]\nsource = \"https\"\nurl = \"https://x/y\"\n").find("index.trust_anchor"),
        std::string::npos);
    EXPECT_NE(
        error_of(kBase + "[index]\nsource = \"https\"\nurl = \"http://x/y\"\ntrust_anchor = \"a.pem\"\n")
            .find("index.url"),
        std::string::npos);
    EXPECT_NE(error_of(kBase + "[index]\nsource = \"ldap\"\n").find("index.ldap_uri"), std::string::npos);
    EXPECT_NE(error_of(kBase + "[index]\nrefresh = 5\n").find("index.refresh: unknown key"),
              std::string::npos);
    EXPECT_NE(error_of(kBase + "[index]\nrefresh_interval = 0\n").find("index.refresh_interval"),
              std::string::npos);
}

}  // namespace
}  // namespace pecd::index
