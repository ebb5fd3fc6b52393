// tsa_http_test.cpp - the built-in TSA over HTTP: our client, curl + openssl, errors
#include "log/tsa_http.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <thread>

#include "core/error.hpp"
#include "log_test_support.hpp"

namespace pecd::log {
namespace {

namespace asio = boost::asio;
using test::quote;
using test::run_command;
using test::TempDir;
using test::write_file;

class TsaHttpTest : public ::testing::Test {
protected:
    void SetUp() override {
        identity = crypto::create_tsa_identity("pecd built-in TSA");
        tsa = std::make_shared<crypto::TimestampAuthority>(identity, SystemClock::instance());
        server = std::make_unique<TsaHttpServer>(
            io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0), tsa);
        work.emplace(io.get_executor());
        thread = std::thread([this] { io.run(); });
    }
    void TearDown() override {
        server->stop();
        work.reset();
        io.stop();
        thread.join();
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(server->port()) + "/tsa"; }

    asio::io_context io;
    crypto::SigningIdentity identity;
    std::shared_ptr<crypto::TimestampAuthority> tsa;
    std::unique_ptr<TsaHttpServer> server;
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
    std::thread thread;
};

TEST_F(TsaHttpTest, ClientGetsAVerifiableToken) {
    HttpTimestampSource source(url(), std::chrono::seconds(5));
    std::string digest = crypto::sha256("manifest");
    auto req = crypto::make_timestamp_request(digest);
    std::string reply = source.exchange(req.der);
    auto v = crypto::verify_timestamp_response(reply, digest, {identity.certificate}, req.nonce);
    EXPECT_TRUE(v.ok) << v.error;
    // Two in a row (a fresh connection each).
    EXPECT_TRUE(crypto::parse_timestamp_response(source.exchange(req.der)).granted());
}

TEST_F(TsaHttpTest, CurlAndOpensslUseItAsAnyRfc3161Tsa) {
    TempDir dir;
    write_file(dir / "data", "some data");
    write_file(dir / "tsa.pem", crypto::certificate_pem(identity.certificate.get()));
    ASSERT_EQ(run_command("openssl ts -query -data " + quote(dir / "data") + " -sha256 -cert -out " +
                          quote(dir / "q.tsq"))
                  .status,
              0);
    auto post =
        run_command("curl -sS --max-time 10 -o " + quote(dir / "r.tsr") +
                    " -w '%{http_code} %{content_type}' -H 'Content-Type: application/timestamp-query' "
                    "--data-binary @" +
                    quote(dir / "q.tsq") + " " + url());
    EXPECT_EQ(post.output, "200 application/timestamp-reply") << post.output;
    auto v = run_command("openssl ts -verify -queryfile " + quote(dir / "q.tsq") + " -in " +
                         quote(dir / "r.tsr") + " -CAfile " + quote(dir / "tsa.pem"));
    EXPECT_EQ(v.status, 0) << v.output;

    auto get = run_command("curl -s --max-time 10 -o /dev/null -w '%{http_code}' " + url());
    EXPECT_EQ(get.output, "405");
    auto wrong_type = run_command(
        "curl -s --max-time 10 -o /dev/null -w '%{http_code}' -H 'Content-Type: text/plain' "
        "--data-binary @" +
        quote(dir / "q.tsq") + " " + url());
    EXPECT_EQ(wrong_type.output, "415");
    auto huge = run_command(
        "head -c 100000 /dev/zero | curl -s --max-time 10 -o /dev/null -w '%{http_code}' -H "
        "'Content-Type: application/timestamp-query' --data-binary @- " +
        url());
    EXPECT_EQ(huge.output, "413");
}

TEST(TsaHttpClient, UnreachableTsaIsATemporaryError) {
    // Bind then close a listener to get a port nobody answers on.
    asio::io_context io;
    asio::ip::tcp::acceptor a(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    auto port = a.local_endpoint().port();
    a.close();
    HttpTimestampSource source("http://127.0.0.1:" + std::to_string(port) + "/", std::chrono::seconds(2));
    EXPECT_THROW(source.exchange(crypto::make_timestamp_request(crypto::sha256("x")).der), TemporaryError);
}

TEST(TsaHttpClient, BadUrlsAreRefused) {
    EXPECT_THROW(HttpTimestampSource("https://tsa.example/"), Error);
    EXPECT_THROW(HttpTimestampSource("ftp://tsa.example/"), Error);
    EXPECT_THROW(HttpTimestampSource("http:///path"), Error);
    EXPECT_NO_THROW(HttpTimestampSource("http://[::1]:8080/tsa"));
}

}  // namespace
}  // namespace pecd::log
