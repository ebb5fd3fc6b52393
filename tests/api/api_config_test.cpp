// api_config_test.cpp - the [api] section: what it needs, and mistakes named by key
#include <gtest/gtest.h>

#include "config/config.hpp"
#include "core/error.hpp"

namespace pecd::config {
namespace {

const std::string kPec =
    "[pec]\nprovider_name = \"P\"\ndomain = \"pec.example.it\"\nsigning_certificate = \"/c.pem\"\n"
    "signing_key = \"/k.pem\"\n"
    "trust_anchors = \"/ca.pem\"\n";

std::string with_api(const std::string& api, const std::string& pec = kPec) {
    return "data_dir = \"/var/lib/pecd\"\n[[listener]]\nname = \"mx\"\nport = 25\n" + pec + "[api]\n" + api;
}

const std::string kMinimal =
    "client_ca = \"/etc/pecd/portal-ca.pem\"\nissuer = \"https://idp\"\naudience = \"pecd\"\n"
    "jwks_file = \"/etc/pecd/jwks.json\"\n";

std::string field_of_error(const std::string& text) {
    try {
        parse_config(text);
    } catch (const ParseError& e) {
        return e.field();
    }
    ADD_FAILURE() << "accepted:\n" << text;
    return {};
}

TEST(ApiConfig, OffUnlessPresentAndSafeDefaults) {
    auto c = parse_config("data_dir = \"/d\"\n[[listener]]\nname = \"mx\"\nport = 25\n");
    EXPECT_FALSE(c.api.enabled);
    c = parse_config(with_api(kMinimal));
    EXPECT_TRUE(c.api.enabled);
    EXPECT_EQ(c.api.listen, "127.0.0.1:8443");
    EXPECT_EQ(c.api.allow, (std::vector<std::string>{"127.0.0.1/32", "::1/128"}));
    EXPECT_EQ(c.api.client_ca, "/etc/pecd/portal-ca.pem");
    c = parse_config(with_api(kMinimal + "listen = \"[::1]:9443\"\nallow = [\"10.0.0.0/8\"]\nleeway = 30\n"));
    EXPECT_EQ(c.api.listen, "[::1]:9443");
    EXPECT_EQ(c.api.leeway, std::chrono::seconds(30));
}

TEST(ApiConfig, MistakesNameTheKey) {
    EXPECT_EQ(field_of_error(with_api("issuer = \"i\"\naudience = \"a\"\njwks_file = \"/j\"\n")),
              "api.client_ca");
    EXPECT_EQ(field_of_error(with_api("client_ca = \"/c\"\naudience = \"a\"\njwks_file = \"/j\"\n")),
              "api.issuer");
    EXPECT_EQ(field_of_error(with_api("client_ca = \"/c\"\nissuer = \"i\"\njwks_file = \"/j\"\n")),
              "api.audience");
    EXPECT_EQ(field_of_error(with_api("client_ca = \"/c\"\nissuer = \"i\"\naudience = \"a\"\n")),
              "api.jwks_file");
    EXPECT_EQ(field_of_error(with_api(kMinimal + "jwks_url = \"https://idp/jwks\"\n")), "api.jwks_file");
    EXPECT_EQ(field_of_error(with_api(kMinimal + "listen = \"8443\"\n")), "api.listen");
    EXPECT_EQ(field_of_error(with_api(kMinimal + "allow = []\n")), "api.allow");
    EXPECT_EQ(field_of_error(with_api(kMinimal + "certificate = \"/s.pem\"\n")), "api.key");
    EXPECT_EQ(field_of_error(with_api(kMinimal + "clientca = \"/x\"\n")), "api.clientca");
    // The audit trail is the legal log: no API without it.
    EXPECT_EQ(field_of_error(with_api(kMinimal, "")), "api.enabled");
    EXPECT_EQ(field_of_error(with_api(kMinimal) + "[log]\nenabled = false\n"), "api.enabled");
}

}  // namespace
}  // namespace pecd::config
