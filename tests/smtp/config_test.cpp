// config_test.cpp - configuration errors name the key and the reason
#include "config/config.hpp"

#include <gtest/gtest.h>

#include "core/error.hpp"

using namespace pecd;

namespace {
const char* kGood = R"(
hostname = "mx.pec.example.it"
data_dir = "/var/lib/pecd"
domains = ["pec.example.it"]
[limits]
message_size = 52428800
recipients = 200
[tls]
min_version = "1.3"
certificate = "/etc/pecd/cert.pem"
key = "/etc/pecd/key.pem"
[[listener]]
name = "mx"
port = 25
[[listener]]
name = "submission"
port = 587
tls = "starttls-required"
auth = true
require_auth = true
)";

std::string error_of(const std::string& text) {
    try {
        config::parse_config(text);
    } catch (const ParseError& e) {
        return e.what();
    }
    return "no error";
}
}  // namespace

TEST(Config, ParsesAFullFile) {
    auto c = config::parse_config(kGood);
    EXPECT_EQ(c.hostname, "mx.pec.example.it");
    EXPECT_EQ(c.limits.message_size, 52428800u);
    EXPECT_EQ(c.limits.recipients, 200u);
    EXPECT_EQ(c.tls.min_version, "1.3");
    ASSERT_EQ(c.listeners.size(), 2u);
    EXPECT_EQ(c.listeners[1].tls, "starttls-required");
    EXPECT_TRUE(c.listeners[1].require_auth);
    EXPECT_EQ(c.domains, std::vector<std::string>{"pec.example.it"});
}

TEST(Config, ErrorsNameKeyAndReason) {
    std::string base = "data_dir = \"/d\"\n[[listener]]\nname = \"mx\"\nport = 25\n";
    EXPECT_EQ(error_of(base + "tls = \"sometimes\"\n"),
              "line 5: listener[1].tls: must be one of: none, starttls, starttls-required, implicit");
    EXPECT_EQ(error_of(base + "prot = 1\n"), "line 5: listener[1].prot: unknown key");
    EXPECT_EQ(error_of(base + "auth = true\ntls = \"none\"\n"),
              "line 5: listener[1].auth: AUTH is only offered over TLS; set tls to starttls or implicit");
    EXPECT_EQ(error_of("data_dir = \"/d\"\n[tls]\nmin_version = \"1.1\"\n[[listener]]\nname=\"a\"\nport=1\n"),
              "line 3: tls.min_version: must be one of: 1.2, 1.3");
    EXPECT_EQ(error_of("[[listener]]\nname=\"a\"\nport=1\n"), "data_dir: required: where pecd keeps its data");
    EXPECT_EQ(error_of("data_dir = \"/d\"\nlistenr = 1\n[[listener]]\nname=\"a\"\nport=1\n"),
              "line 2: listenr: unknown key");
    EXPECT_NE(error_of("data_dir = \"/d\n").find("line 1"), std::string::npos);
    EXPECT_EQ(error_of(base + "[limits]\nrecipients = -4\n"), "line 6: limits.recipients: expected a non-negative integer");
}

TEST(Config, PecDomainDefaultsToTheFirstPecDomain) {
    // As documented: without [pec] domain, the provider's mail domain is the first PEC
    // domain. It was left empty, and the daemon stopped at start ("message ids need a
    // provider mail domain") after --check-config had called the file valid.
    const std::string pec =
        "[pec]\nprovider_name = \"P\"\nsigning_certificate = \"/c\"\nsigning_key = \"/k\"\n"
        "trust_anchors = \"/a\"\n";
    const std::string listener = "[[listener]]\nname = \"mx\"\nport = 25\n";
    auto top =
        config::parse_config("data_dir = \"/d\"\ndomains = [\"PEC.a.it\", \"pec.b.it\"]\n" + pec + listener);
    EXPECT_EQ(top.pec.domain, "PEC.a.it");
    auto own = config::parse_config("data_dir = \"/d\"\ndomains = [\"a.it\"]\n" + pec +
                                    "domains = [\"pec.c.it\"]\n" + listener);
    EXPECT_EQ(own.pec.domain, "pec.c.it");
    auto set = config::parse_config("data_dir = \"/d\"\ndomains = [\"a.it\"]\n" + pec +
                                    "domain = \"x.it\"\n" + listener);
    EXPECT_EQ(set.pec.domain, "x.it");
    EXPECT_EQ(error_of("data_dir = \"/d\"\n" + pec + listener),
              "pec.domain: no PEC domain: set [pec] domain, or list the domains served");
}

// A few zeros too many must be an error at start, not a timer that fires at once or a
// retention whose cut-off wraps into the future and purges the legal log.
TEST(Config, PeriodsAndRetentionsHaveUpperBounds) {
    std::string base = "data_dir = \"/d\"\n[[listener]]\nname = \"mx\"\nport = 25\n";
    EXPECT_EQ(error_of(base + "[limits]\nidle_timeout = 315360001\n"),
              "line 6: limits.idle_timeout: at most 315360000 seconds (ten years)");
    EXPECT_EQ(error_of(base + "[limits]\nin_flow_delay = 9223372036854775807\n"),
              "line 6: limits.in_flow_delay: at most 315360000000 milliseconds (ten years)");
    EXPECT_EQ(config::parse_config(base + "[outbound]\nlifetime = 315360000\n").outbound.lifetime,
              std::chrono::seconds(315360000));
    EXPECT_EQ(error_of(base + "[log]\nretention_months = 2000000000\n"),
              "line 6: log.retention_months: at most 1200 months (100 years)");
    EXPECT_EQ(error_of(base + "[antivirus]\nretention_months = 4294967295\n"),
              "line 6: antivirus.retention_months: at most 1200 months (100 years)");
    EXPECT_EQ(config::parse_config(base + "[log]\nretention_months = 1200\n").log.retention_months, 1200u);
    EXPECT_EQ(error_of(base + "[dns]\ntries = 4294967295\n"), "line 6: dns.tries: must be between 1 and 10");
    EXPECT_EQ(error_of(base + "[dns]\ntimeout_ms = 3000000000\n"),
              "line 6: dns.timeout_ms: at most 60000 milliseconds per try");
}

TEST(Config, ListenerSniCertificates) {
    auto c = config::parse_config(R"(
data_dir = "/d"
[[listener]]
name = "mx"
port = 25
[[listener.sni]]
name = "Mail.Example.TEST"
certificate = "/c/mail.pem"
key = "/c/mail.key"
[[listener.sni]]
name = "*.other.test"
certificate = "/c/other.pem"
key = "/c/other.key"
)");
    ASSERT_EQ(c.listeners.size(), 1u);
    ASSERT_EQ(c.listeners[0].sni.size(), 2u);
    EXPECT_EQ(c.listeners[0].sni[0].name, "mail.example.test");
    EXPECT_EQ(c.listeners[0].sni[0].certificate, "/c/mail.pem");
    EXPECT_EQ(c.listeners[0].sni[1].name, "*.other.test");
    EXPECT_EQ(c.listeners[0].sni[1].key, "/c/other.key");
}

TEST(Config, SniErrorsNameKeyAndReason) {
    std::string base = "data_dir = \"/d\"\n[[listener]]\nname = \"mx\"\nport = 25\n";
    std::string entry = "[[listener.sni]]\nname = \"a.test\"\ncertificate = \"/c\"\nkey = \"/k\"\n";
    EXPECT_EQ(error_of(base + "[[listener.sni]]\nname = \"a.test\"\nkey = \"/k\"\n"),
              "line 5: listener[1].sni[1].certificate: every SNI entry needs a certificate");
    EXPECT_EQ(error_of(base + "[[listener.sni]]\nname = \"bad name\"\ncertificate = \"/c\"\nkey = \"/k\"\n"),
              "line 6: listener[1].sni[1].name: not a host name (or *.domain)");
    EXPECT_EQ(error_of(base + entry + entry), "line 10: listener[1].sni[2].name: duplicate SNI name 'a.test'");
    EXPECT_EQ(error_of(base + "[[listener.sni]]\nname = \"a.test\"\ncert = \"/c\"\n"),
              "line 7: listener[1].sni[1].cert: unknown key");
    EXPECT_EQ(error_of(base + "tls = \"none\"\n" + entry), "line 6: listener[1].sni: SNI certificates need TLS on the listener");
    EXPECT_EQ(error_of(base + "sni = 3\n"), "line 5: listener[1].sni: expected [[listener.sni]] tables");
}

TEST(Config, InFlowControlIsOnByDefaultAndCanBeTurnedOff) {
    auto defaults = config::parse_config(kGood);
    EXPECT_EQ(defaults.limits.in_flow_backlog, 8u);
    EXPECT_EQ(defaults.limits.in_flow_delay, std::chrono::milliseconds(1000));
    std::string base = "data_dir = \"/d\"\n[[listener]]\nname = \"mx\"\nport = 25\n[limits]\n";
    auto off = config::parse_config(base + "in_flow_backlog = 0\nin_flow_delay = 250\n");
    EXPECT_EQ(off.limits.in_flow_backlog, 0u);
    EXPECT_EQ(off.limits.in_flow_delay, std::chrono::milliseconds(250));
    EXPECT_EQ(error_of(base + "in_flow_delay = 0\n"),
              "line 6: limits.in_flow_delay: expected a positive number of milliseconds");
}

TEST(Config, ACertificateNeedsItsKeyWhereverItIsSet) {
    std::string listener = "data_dir = \"/d\"\n[[listener]]\nname = \"mx\"\nport = 25\n";
    EXPECT_EQ(error_of(listener + "certificate = \"/c.pem\"\n"),
              "line 2: listener[1].key: certificate and key go together");
    EXPECT_EQ(
        error_of("data_dir = \"/d\"\n[tls]\nkey = \"/k.pem\"\n[[listener]]\nname = \"mx\"\nport = 25\n"),
        "line 2: tls.certificate: certificate and key go together");
    auto both = config::parse_config(listener + "certificate = \"/c.pem\"\nkey = \"/k.pem\"\n");
    EXPECT_EQ(both.listeners[0].key, "/k.pem");
}
