// outbound_config_test.cpp - [outbound] and [dns]: parsing, key-exact errors, and what the
// mail system gets from them (policy map, retry times, lifetimes, resolvers)
#include "delivery/outbound_config.hpp"

#include <gtest/gtest.h>

#include "config/config.hpp"
#include "core/error.hpp"

namespace pecd {
namespace {

const std::string kBase = R"(data_dir = "/tmp/x"
[[listener]]
name = "mx"
port = 25
)";

TEST(OutboundConfig, ParsesEveryKeyAndBuildsThePolicyMap) {
    auto c = config::parse_config(kBase + R"(
[outbound]
tls_policy = "encrypt"
port = 2525
connections_per_destination = 3
queue_workers = 12
delay_warning = 0
lifetime = 7200
pec_lifetime = 3600
retry_first = 1
retry_max = 5
[[outbound.tls_policies]]
domain = "bank.test"
policy = "secure"
names = ["mx.bank.test"]
[[outbound.tls_policies]]
domain = ".legacy.test"
policy = "none"
[dns]
servers = ["127.0.0.1:5353"]
timeout_ms = 250
tries = 1
ipv6 = false
)");
    EXPECT_EQ(c.outbound.port, 2525);
    EXPECT_EQ(c.outbound.delay_warning.count(), 0);
    ASSERT_EQ(c.outbound.policies.size(), 2u);
    EXPECT_EQ(c.dns.servers, std::vector<std::string>{"127.0.0.1:5353"});

    delivery::MailSystemOptions o;
    delivery::apply_outbound_config(c, o);
    ASSERT_TRUE(o.dns);
    EXPECT_EQ(o.dns->servers, c.dns.servers);
    EXPECT_EQ(o.dns->timeout, std::chrono::milliseconds(250));
    EXPECT_FALSE(o.dns->use_ipv6);
    EXPECT_EQ(o.mx_port, 2525);
    EXPECT_EQ(o.remote.connections_per_destination, 3u);
    EXPECT_EQ(o.runner.workers, 12u);
    EXPECT_EQ(o.runner.retry.first, std::chrono::seconds(1));
    EXPECT_EQ(o.runner.retry.lifetime, std::chrono::seconds(7200));
    EXPECT_EQ(o.runner.retry.pec_lifetime, std::chrono::seconds(3600));
    ASSERT_TRUE(o.remote.tls);
    auto bank = o.remote.policies.lookup("bank.test");
    EXPECT_EQ(bank.policy, tls::Policy::secure);
    EXPECT_EQ(bank.match_names, std::vector<std::string>{"mx.bank.test"});
    EXPECT_EQ(o.remote.policies.lookup("old.legacy.test").policy, tls::Policy::none);
    EXPECT_EQ(o.remote.policies.lookup("other.test").policy, tls::Policy::encrypt);
}

TEST(OutboundConfig, DefaultsAreTheIssuesFigures) {
    auto c = config::parse_config(kBase);
    EXPECT_EQ(c.outbound.tls_policy, "may");
    EXPECT_EQ(c.outbound.port, 25);
    EXPECT_EQ(c.outbound.lifetime, std::chrono::hours(24 * 5));
    EXPECT_EQ(c.outbound.pec_lifetime, std::chrono::hours(24));
    EXPECT_EQ(c.outbound.delay_warning, std::chrono::hours(4));
    EXPECT_EQ(c.outbound.queue_workers, 64u);
    EXPECT_TRUE(c.dns.servers.empty());
}

std::string error_of(const std::string& text) {
    try {
        config::parse_config(kBase + text);
    } catch (const ParseError& e) {
        return e.what();
    }
    return "no error";
}

TEST(OutboundConfig, PreciseErrors) {
    EXPECT_NE(error_of("[outbound]\ntls_policy = \"sometimes\"\n").find("outbound.tls_policy"),
              std::string::npos);
    EXPECT_NE(error_of("[outbound]\nclient_certificate = \"/a.pem\"\n").find("client_key"),
              std::string::npos);
    EXPECT_NE(error_of("[outbound]\nbogus = 1\n").find("outbound.bogus"), std::string::npos);
    EXPECT_NE(
        error_of("[[outbound.tls_policies]]\ndomain = \"a.test\"\npolicy = \"verify\"\nnames = [\"x\"]\n")
            .find("outbound.tls_policies[1].names"),
        std::string::npos);
    EXPECT_NE(
        error_of("[[outbound.tls_policies]]\npolicy = \"verify\"\n").find("outbound.tls_policies[1].domain"),
        std::string::npos);
    EXPECT_NE(error_of("[dns]\nservers = \"127.0.0.1\"\n").find("dns.servers"), std::string::npos);
    EXPECT_NE(error_of("[outbound]\ndelay_warning = -1\n").find("outbound.delay_warning"), std::string::npos);
    EXPECT_NE(
        error_of("[outbound]\nqueue_workers = 0\n").find("outbound.queue_workers: must be greater than zero"),
        std::string::npos)
        << error_of("[outbound]\nqueue_workers = 0\n");
    EXPECT_NE(
        error_of("[outbound]\nqueue_workers = 5000\n").find("outbound.queue_workers: must be at most 1024"),
        std::string::npos)
        << error_of("[outbound]\nqueue_workers = 5000\n");
}

}  // namespace
}  // namespace pecd
