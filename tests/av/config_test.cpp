// config_test.cpp - the [antivirus] section of the configuration
//
// Covers: defaults (enabled, Debian's clamd socket, 30 months, quarantine under
// data_dir), every key read, socket and address mutually exclusive, malformed addresses
// and relative socket paths refused with the key named, the 30-month legal minimum, and
// unknown keys in the section.
#include "config/config.hpp"

#include <gtest/gtest.h>

#include "core/error.hpp"

namespace pecd::config {
namespace {

const std::string kBase = R"(
data_dir = "/var/lib/pecd"
[[listener]]
name = "mx"
port = 25
)";

std::string error_of(const std::string& section) {
    try {
        parse_config(kBase + section);
    } catch (const ParseError& e) {
        return e.what();
    }
    return "no error";
}

TEST(AntivirusConfig, Defaults) {
    auto c = parse_config(kBase);
    EXPECT_TRUE(c.antivirus.enabled);
    EXPECT_EQ(c.antivirus.socket, "/run/clamav/clamd.ctl");
    EXPECT_TRUE(c.antivirus.address.empty());
    EXPECT_EQ(c.antivirus.connect_timeout, std::chrono::seconds(5));
    EXPECT_EQ(c.antivirus.timeout, std::chrono::seconds(60));
    EXPECT_TRUE(c.antivirus.sessions);
    EXPECT_EQ(c.antivirus.retention_months, 30u);
    EXPECT_EQ(quarantine_dir(c), std::filesystem::path("/var/lib/pecd/quarantine"));
}

TEST(AntivirusConfig, EveryKeyIsRead) {
    auto c = parse_config(kBase + R"(
[antivirus]
enabled = false
address = "127.0.0.1:3310"
connect_timeout = 2
timeout = 30
sessions = false
quarantine_dir = "/srv/pec/quarantine"
retention_months = 36
)");
    EXPECT_FALSE(c.antivirus.enabled);
    EXPECT_EQ(c.antivirus.address, "127.0.0.1:3310");
    EXPECT_EQ(c.antivirus.connect_timeout, std::chrono::seconds(2));
    EXPECT_EQ(c.antivirus.timeout, std::chrono::seconds(30));
    EXPECT_FALSE(c.antivirus.sessions);
    EXPECT_EQ(c.antivirus.retention_months, 36u);
    EXPECT_EQ(quarantine_dir(c), std::filesystem::path("/srv/pec/quarantine"));
    EXPECT_EQ(parse_config(kBase + "[antivirus]\nsocket = \"/tmp/clamd.sock\"\n").antivirus.socket,
              "/tmp/clamd.sock");
}

TEST(AntivirusConfig, ErrorsNameTheKey) {
    EXPECT_NE(
        error_of("[antivirus]\nsocket = \"/s\"\naddress = \"127.0.0.1:3310\"\n").find("antivirus.address"),
        std::string::npos);
    EXPECT_NE(error_of("[antivirus]\naddress = \"localhost\"\n").find("antivirus.address"),
              std::string::npos);
    EXPECT_NE(error_of("[antivirus]\naddress = \"h:99999\"\n").find("antivirus.address"), std::string::npos);
    EXPECT_NE(error_of("[antivirus]\nsocket = \"clamd.sock\"\n").find("antivirus.socket"), std::string::npos);
    EXPECT_NE(error_of("[antivirus]\nretention_months = 12\n").find("antivirus.retention_months"),
              std::string::npos);
    EXPECT_NE(error_of("[antivirus]\ntimeout = 0\n").find("antivirus.timeout"), std::string::npos);
    EXPECT_NE(error_of("[antivirus]\nsockte = \"/s\"\n").find("antivirus.sockte"), std::string::npos);
    EXPECT_NE(error_of("antivirus = 3\n").find("antivirus"), std::string::npos);
}

}  // namespace
}  // namespace pecd::config
