// resolver_test.cpp - the c-ares resolver against a real DNS server (unbound on loopback)
//
// The test starts unbound on 127.0.0.1 with static test zones and points the Resolver at
// it. It checks MX preference order, implicit MX, null MX, NXDOMAIN (permanent) against
// REFUSED and unreachable servers (temporary), hosts without addresses, address family
// order, and the Asio coroutine entry point.
#include "dns/resolver.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>
#include <utility>  // before Asio: awaitable.hpp uses std::exchange without including it

#include "core/error.hpp"
#include "unbound_server.hpp"

using namespace pecd;
using namespace pecd::dns;

namespace {

constexpr const char* kZones = R"(
  local-zone: "example.test." static
  local-data: "example.test. IN MX 10 mx1.example.test."
  local-data: "example.test. IN MX 20 mx2.example.test."
  local-data: "example.test. IN MX 30 ghost.example.test."
  local-data: "mx1.example.test. IN A 127.0.0.2"
  local-data: "mx2.example.test. IN AAAA ::1"
  local-data: "ghost.example.test. IN TXT \"no address\""
  local-data: "equal.example.test. IN MX 5 a.example.test."
  local-data: "equal.example.test. IN MX 5 b.example.test."
  local-data: "equal.example.test. IN MX 1 first.example.test."
  local-data: "a.example.test. IN A 127.0.0.11"
  local-data: "b.example.test. IN A 127.0.0.12"
  local-data: "first.example.test. IN A 127.0.0.10"
  local-data: "nomx.example.test. IN A 127.0.0.5"
  local-data: "dual.example.test. IN A 127.0.0.6"
  local-data: "dual.example.test. IN AAAA ::1"
  local-data: "nullmx.example.test. IN MX 0 ."
  local-data: "noaddr.example.test. IN MX 10 ghost.example.test."
  local-data: "mixed.example.test. IN MX 10 nowhere.example.test."
  local-data: "mixed.example.test. IN MX 20 mx1.example.test."
  local-zone: "refused.test." refuse
)";

class ResolverTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        server_ = new pecd::test::UnboundServer(kZones);
        ASSERT_TRUE(server_->ready("mx1.example.test")) << "unbound did not start";
    }
    static void TearDownTestSuite() {
        delete server_;
        server_ = nullptr;
    }
    Resolver resolver(bool prefer_ipv6 = false) const {
        ResolverSettings s;
        s.servers = {server_->address()};
        s.timeout = std::chrono::milliseconds(1000);
        s.prefer_ipv6 = prefer_ipv6;
        return Resolver(s);
    }
    static pecd::test::UnboundServer* server_;
};
pecd::test::UnboundServer* ResolverTest::server_ = nullptr;

TEST_F(ResolverTest, MxRecordsAndAddresses) {
    auto r = resolver();
    auto mx = r.mx("Example.Test.");
    ASSERT_EQ(mx.size(), 3u);
    EXPECT_EQ(r.a("mx1.example.test"), std::vector<std::string>{"127.0.0.2"});
    EXPECT_EQ(r.aaaa("mx2.example.test"), std::vector<std::string>{"::1"});
    EXPECT_TRUE(r.a("mx2.example.test").empty());  // NODATA is empty, not an error
}

TEST_F(ResolverTest, MailRouteOrdersByPreferenceAndKeepsHostsWithoutAddresses) {
    auto route = resolver().mail_route("example.test");
    EXPECT_FALSE(route.implicit_mx);
    ASSERT_EQ(route.hosts.size(), 3u);
    EXPECT_EQ(route.hosts[0].name, "mx1.example.test");
    EXPECT_EQ(route.hosts[0].preference, 10);
    EXPECT_EQ(route.hosts[0].addresses, std::vector<std::string>{"127.0.0.2"});
    EXPECT_EQ(route.hosts[1].name, "mx2.example.test");
    EXPECT_EQ(route.hosts[1].addresses, std::vector<std::string>{"::1"});
    EXPECT_EQ(route.hosts[2].name, "ghost.example.test");
    EXPECT_TRUE(route.hosts[2].addresses.empty());
    EXPECT_FALSE(route.hosts[2].error.empty());
}

TEST_F(ResolverTest, EqualPreferencesAreShuffledButStayAfterLowerOnes) {
    auto r = resolver();
    std::set<std::string> seconds;
    for (int i = 0; i < 30 && seconds.size() < 2; ++i) {
        auto route = r.mail_route("equal.example.test");
        ASSERT_EQ(route.hosts.size(), 3u);
        EXPECT_EQ(route.hosts[0].name, "first.example.test");
        seconds.insert(route.hosts[1].name);
    }
    EXPECT_EQ(seconds, (std::set<std::string>{"a.example.test", "b.example.test"}));
}

TEST_F(ResolverTest, NoMxMeansTheDomainItself) {
    auto route = resolver().mail_route("nomx.example.test");
    EXPECT_TRUE(route.implicit_mx);
    ASSERT_EQ(route.hosts.size(), 1u);
    EXPECT_EQ(route.hosts[0].name, "nomx.example.test");
    EXPECT_EQ(route.hosts[0].addresses, std::vector<std::string>{"127.0.0.5"});
}

TEST_F(ResolverTest, AddressFamilyOrder) {
    EXPECT_EQ(resolver(false).addresses("dual.example.test"), (std::vector<std::string>{"127.0.0.6", "::1"}));
    EXPECT_EQ(resolver(true).addresses("dual.example.test"), (std::vector<std::string>{"::1", "127.0.0.6"}));
}

template <class F>
void expect_permanent(F&& f, const std::string& needle) {
    try {
        f();
        ADD_FAILURE() << "no error";
    } catch (const TemporaryError& e) {
        ADD_FAILURE() << "temporary error where a permanent one was expected: " << e.what();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
}

TEST_F(ResolverTest, PermanentFailures) {
    auto r = resolver();
    expect_permanent([&] { r.mail_route("nullmx.example.test"); }, "null MX");
    expect_permanent([&] { r.mail_route("missing.example.test"); }, "does not exist");
    expect_permanent([&] { r.mail_route("noaddr.example.test"); }, "no mail host");
    expect_permanent([&] { r.mx("bad name.example.test"); }, "invalid domain name");
}

TEST_F(ResolverTest, FirstHostUnresolvableSecondUsable) {
    auto route = resolver().mail_route("mixed.example.test");
    ASSERT_EQ(route.hosts.size(), 2u);
    EXPECT_TRUE(route.hosts[0].addresses.empty());
    EXPECT_EQ(route.hosts[1].addresses, std::vector<std::string>{"127.0.0.2"});
}

TEST_F(ResolverTest, RefusedIsTemporary) {
    EXPECT_THROW(resolver().mail_route("x.refused.test"), TemporaryError);
}

TEST_F(ResolverTest, UnreachableServerIsTemporaryAndBounded) {
    ResolverSettings s;
    s.servers = {"127.0.0.1:" + std::to_string(pecd::test::free_udp_tcp_port())};
    s.timeout = std::chrono::milliseconds(200);
    s.tries = 1;
    auto start = std::chrono::steady_clock::now();
    EXPECT_THROW(Resolver(s).mail_route("example.test"), TemporaryError);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST_F(ResolverTest, CoroutineLookupOnAThreadPool) {
    auto r = resolver();
    boost::asio::io_context io;
    boost::asio::thread_pool pool(1);
    MailRoute route;
    std::string error;
    boost::asio::co_spawn(
        io,
        [&]() -> boost::asio::awaitable<void> {
            route = co_await async_mail_route(r, pool, "example.test", boost::asio::use_awaitable);
            try {
                co_await async_mail_route(r, pool, "missing.example.test", boost::asio::use_awaitable);
            } catch (const Error& e) {
                error = e.what();
            }
        },
        boost::asio::detached);
    io.run_for(std::chrono::seconds(10));
    pool.join();
    ASSERT_EQ(route.hosts.size(), 3u);
    EXPECT_EQ(route.hosts[0].name, "mx1.example.test");
    EXPECT_NE(error.find("does not exist"), std::string::npos);
}

TEST(OrderMx, SortsByPreferenceAndDetectsNullMx) {
    std::mt19937 rng(7);
    auto ordered = order_mx({{"c", 30}, {"a", 10}, {"b", 20}}, rng);
    EXPECT_EQ(ordered, (std::vector<MxRecord>{{"a", 10}, {"b", 20}, {"c", 30}}));
    EXPECT_TRUE(is_null_mx({{"", 0}}));
    EXPECT_FALSE(is_null_mx({{"", 0}, {"mx", 10}}));
    EXPECT_FALSE(is_null_mx({}));
}

}  // namespace
