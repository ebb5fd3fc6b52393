// jwt_mutation_test.cpp - bearer tokens a client tampered with, byte by byte
//
// Valid RS256 and ES256 tokens (keys made in-process) are checked once, then a bounded,
// seeded set of mutations of them (the fuzz targets' mutator) goes through
// verify_token. Each must be refused with a TokenError unless the mutations gave the seed
// back unchanged: a tampered token never reaches the API, not even as another spelling of
// a valid one, and nothing but TokenError ever escapes the verifier.
#include <gtest/gtest.h>

#include <chrono>
#include <iostream>
#include <random>

#include "jwt_helpers.hpp"
#include "mutate.hpp"

namespace pecd::api {
namespace {

using json = nlohmann::json;

constexpr int kMutations = 20000;
constexpr auto kTimeBudget = std::chrono::seconds(120);
const TimePoint kNow = TimePoint(std::chrono::seconds(1790000000));

struct Key {
    explicit Key(EVP_PKEY* k) : pkey(k) {}
    ~Key() { EVP_PKEY_free(pkey); }
    EVP_PKEY* pkey;
};

TEST(JwtMutations, TamperedTokensAreRefused) {
    Key rsa(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048)));
    Key ec(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    ASSERT_TRUE(rsa.pkey && ec.pkey);
    json jwks = test::jwks_of(rsa.pkey, ec.pkey);
    auto keys = parse_jwks(jwks.dump());
    ASSERT_EQ(keys.keys.size(), 2u);
    const TokenPolicy policy{"https://idp.test", "pecd-api", std::chrono::seconds(30)};
    const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(kNow.time_since_epoch()).count();
    json claims = {{"iss", "https://idp.test"},
                   {"aud", {"pecd-api", "other"}},
                   {"sub", "portal-a"},
                   {"exp", now_s + 600},
                   {"nbf", now_s - 10},
                   {"scope", "mailboxes:read"},
                   {"pecd_domains", {"a.example"}}};
    const std::vector<std::string> seeds = {test::sign(rsa.pkey, {{"alg", "RS256"}, {"kid", "rsa1"}}, claims),
                                            test::sign(ec.pkey, {{"alg", "ES256"}, {"kid", "ec1"}}, claims)};
    for (const auto& t : seeds) {
        auto c = verify_token(t, keys, policy, kNow);
        EXPECT_EQ(c.subject, "portal-a");
        EXPECT_TRUE(c.may_reach("x@a.example"));
        EXPECT_FALSE(c.may_reach("x@b.example"));
    }

    const std::vector<std::string> tokens = {".",   "..", "=",  "-",   "_",  "+",   "/",    "eyJ",
                                             "e30", "A",  "AA", "AAA", "\0", " ",   "\xff", "%2E",
                                             "\"",  "{}", "ey", "J9",  "fQ", "ewo", "In0",  "Ig"};
    std::mt19937 rng(20261206u);
    const auto deadline = std::chrono::steady_clock::now() + kTimeBudget;
    int executed = 0, refused = 0, accepted = 0;
    for (int i = 0; i < kMutations && std::chrono::steady_clock::now() < deadline; ++i) {
        const auto& base = seeds[static_cast<std::size_t>(i) % seeds.size()];
        auto token = fuzz::mutate(base, seeds[static_cast<std::size_t>(i + 1) % seeds.size()], rng, tokens);
        ++executed;
        try {
            auto c = verify_token(token, keys, policy, kNow);
            ++accepted;
            // Base64url is read in its canonical spelling only, so an accepted token is a
            // seed, to the byte: no content nobody signed, no second spelling of one token.
            ASSERT_TRUE(token == seeds[0] || token == seeds[1]) << "mutation " << i << " accepted: " << token;
            EXPECT_EQ(c.subject, "portal-a");
        } catch (const TokenError&) {
            ++refused;
        } catch (const std::exception& e) {
            FAIL() << "mutation " << i << ": " << e.what() << " escaped the verifier for " << token;
        }
    }
    std::cout << "token mutations: " << executed << " run, " << refused << " refused, " << accepted
              << " accepted\n";
    EXPECT_GE(executed, 1000);
    EXPECT_GT(refused, executed * 9 / 10);
}

}  // namespace
}  // namespace pecd::api
