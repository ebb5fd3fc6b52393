// timestamp_test.cpp - RFC 3161: our requests, our TSA's tokens, verification, and
//                      stock `openssl ts` agreeing with us both ways
#include "crypto/timestamp.hpp"

#include <gtest/gtest.h>
#include <openssl/pem.h>

#include <chrono>

#include "core/error.hpp"
#include "log_test_support.hpp"

namespace pecd::crypto {
namespace {

using log::test::quote;
using log::test::run_command;
using log::test::TempDir;
using log::test::write_file;

TimePoint fixed_time() {
    return std::chrono::system_clock::now() - std::chrono::hours(2);
}

X509Ptr load_certificate(const std::filesystem::path& p) {
    FILE* f = fopen(p.c_str(), "r");
    if (!f) return {};
    X509* c = PEM_read_X509(f, nullptr, nullptr, nullptr);
    fclose(f);
    return X509Ptr(c, X509Free{});
}

class TimestampTest : public ::testing::Test {
protected:
    ManualClock clock{fixed_time()};
    SigningIdentity identity = create_tsa_identity("pecd test TSA");
    TimestampAuthority tsa{identity, clock};
};

TEST_F(TimestampTest, TokenCarriesTheClockTimeAndImprintAndVerifies) {
    std::string digest = sha256("segment manifest");
    TimestampRequest req = make_timestamp_request(digest);
    std::string reply = tsa.respond(req.der);
    TimestampResponse parsed = parse_timestamp_response(reply);
    ASSERT_TRUE(parsed.granted()) << parsed.status_text;
    EXPECT_EQ(parsed.imprint, digest);
    ASSERT_TRUE(parsed.gen_time.has_value());
    auto skew = *parsed.gen_time - clock.now();
    EXPECT_LT(std::chrono::abs(skew), std::chrono::seconds(1));
    EXPECT_EQ(parsed.policy_oid, "1.3.6.1.4.1.99999.3161.1");
    EXPECT_NE(parsed.tsa_subject.find("pecd test TSA"), std::string::npos);
    EXPECT_FALSE(parsed.serial_hex.empty());

    auto ok = verify_timestamp_response(reply, digest, {identity.certificate}, req.nonce);
    EXPECT_TRUE(ok.ok) << ok.error;
}

TEST_F(TimestampTest, VerificationRejectsOtherDataOtherTsaAndOtherNonce) {
    std::string digest = sha256("segment manifest");
    TimestampRequest req = make_timestamp_request(digest);
    std::string reply = tsa.respond(req.der);

    EXPECT_FALSE(verify_timestamp_response(reply, sha256("another manifest"), {identity.certificate}).ok);
    SigningIdentity stranger = create_tsa_identity("someone else");
    auto foreign = verify_timestamp_response(reply, digest, {stranger.certificate});
    EXPECT_FALSE(foreign.ok);
    EXPECT_FALSE(foreign.error.empty());
    TimestampRequest other = make_timestamp_request(digest);
    EXPECT_FALSE(verify_timestamp_response(reply, digest, {identity.certificate}, other.nonce).ok);
}

TEST_F(TimestampTest, TwoTokensHaveDistinctSerials) {
    std::string digest = sha256("x");
    auto a = parse_timestamp_response(tsa.respond(make_timestamp_request(digest).der));
    auto b = parse_timestamp_response(tsa.respond(make_timestamp_request(digest).der));
    EXPECT_NE(a.serial_hex, b.serial_hex);
}

TEST_F(TimestampTest, GarbageRequestGetsARejectionAndGarbageReplyAParseError) {
    TimestampResponse rejected = parse_timestamp_response(tsa.respond("not DER at all"));
    EXPECT_FALSE(rejected.granted());
    EXPECT_EQ(rejected.status, 2);  // rejection
    EXPECT_TRUE(rejected.token_der.empty());
    EXPECT_THROW(parse_timestamp_response("\x30\x03garbage"), ParseError);
    EXPECT_FALSE(verify_timestamp_response("junk", sha256("x"), {identity.certificate}).ok);
    EXPECT_THROW(make_timestamp_request("short"), Error);
}

TEST_F(TimestampTest, GenTimeBeyondTheClockIsNeitherWrappedNorAccepted) {
    // A TSA's genTime may be any GeneralizedTime up to year 9999, which no TimePoint holds;
    // converting it once overflowed into 1816. The year is rewritten in the DER (the
    // token's signature breaks too; the time is what is checked first).
    std::string digest = sha256("segment manifest");
    TimestampRequest req = make_timestamp_request(digest);
    std::string reply = tsa.respond(req.der);
    std::string year = std::to_string(static_cast<int>(
        std::chrono::year_month_day(std::chrono::floor<std::chrono::days>(clock.now())).year()));
    std::size_t at = std::string::npos;
    for (std::size_t i = 0; i + 2 + 4 <= reply.size(); ++i)
        if (reply[i] == 0x18 && static_cast<unsigned char>(reply[i + 1]) >= 15 &&
            reply.compare(i + 2, 4, year) == 0)
            at = i + 2;
    ASSERT_NE(at, std::string::npos) << "no genTime in the reply";
    for (const char* hostile : {"9999", "2263", "0001"}) {
        std::string changed = reply;
        changed.replace(at, 4, hostile);
        TimestampResponse parsed = parse_timestamp_response(changed);
        EXPECT_TRUE(parsed.granted());
        EXPECT_FALSE(parsed.gen_time.has_value()) << hostile;
        auto v = verify_timestamp_response(changed, digest, {identity.certificate}, req.nonce);
        EXPECT_FALSE(v.ok) << hostile;
        EXPECT_NE(v.error.find("genTime"), std::string::npos) << v.error;
    }
}

TEST_F(TimestampTest, CertificateWithoutTimeStampingUsageIsRefused) {
    TempDir dir;
    auto r = run_command(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=plain -days 2 "
        "-keyout " +
        quote(dir / "k.pem") + " -out " + quote(dir / "c.pem"));
    ASSERT_EQ(r.status, 0) << r.output;
    SigningIdentity plain = identity;
    plain.certificate = load_certificate(dir / "c.pem");
    ASSERT_TRUE(plain.certificate);
    EXPECT_THROW(TimestampAuthority(plain, clock), Error);
}

TEST_F(TimestampTest, StockOpensslVerifiesOurTokens) {
    TempDir dir;
    const std::string data = "pecd legal log segment\r\nversion: 1\r\n";
    write_file(dir / "data.txt", data);
    write_file(dir / "tsa.pem", certificate_pem(identity.certificate.get()));
    write_file(dir / "reply.tsr", tsa.respond(make_timestamp_request(sha256(data)).der));
    auto ok = run_command("openssl ts -verify -data " + quote(dir / "data.txt") + " -in " +
                          quote(dir / "reply.tsr") + " -CAfile " + quote(dir / "tsa.pem"));
    EXPECT_EQ(ok.status, 0) << ok.output;
    EXPECT_NE(ok.output.find("Verification: OK"), std::string::npos) << ok.output;

    write_file(dir / "data.txt", data + "x");
    auto bad = run_command("openssl ts -verify -data " + quote(dir / "data.txt") + " -in " +
                           quote(dir / "reply.tsr") + " -CAfile " + quote(dir / "tsa.pem"));
    EXPECT_NE(bad.status, 0) << bad.output;
}

TEST_F(TimestampTest, OurTsaAnswersOpensslQueriesAndWeVerifyOpensslStyleFlow) {
    TempDir dir;
    write_file(dir / "data.txt", "hello");
    auto q = run_command("openssl ts -query -data " + quote(dir / "data.txt") + " -sha256 -cert -out " +
                         quote(dir / "q.tsq"));
    ASSERT_EQ(q.status, 0) << q.output;
    std::string reply = tsa.respond(log::test::read_file(dir / "q.tsq"));
    write_file(dir / "r.tsr", reply);
    write_file(dir / "tsa.pem", certificate_pem(identity.certificate.get()));
    auto v = run_command("openssl ts -verify -queryfile " + quote(dir / "q.tsq") + " -in " +
                         quote(dir / "r.tsr") + " -CAfile " + quote(dir / "tsa.pem"));
    EXPECT_EQ(v.status, 0) << v.output;
    EXPECT_TRUE(verify_timestamp_response(reply, sha256("hello"), {identity.certificate}).ok);
}

}  // namespace
}  // namespace pecd::crypto
