// jwt_mutation_test.cpp - bearer tokens a client tampered with, byte by byte
//
// The jwt fuzz target's seeds (an RS256 and an ES256 token, fuzz/jwt/corpus) are checked
// once, then a bounded, seeded set of mutations of them (the fuzz targets' mutator) goes
// through the verifier (fuzz/common/jwt_entries.hpp). Each must be refused with a
// TokenError unless the mutations gave a seed back unchanged: a tampered token never
// reaches the API, not even as another spelling of a valid one, and nothing but
// TokenError ever escapes the verifier.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <random>

#include "api/jwt.hpp"
#include "core/error.hpp"
#include "jwt_entries.hpp"
#include "mutate.hpp"

namespace pecd::api {
namespace {

constexpr int kMutations = 20000;
constexpr auto kTimeBudget = std::chrono::seconds(120);

TEST(JwtMutations, TamperedTokensAreRefused) {
    const auto seeds = fuzz::load_dir(std::string(PECD_SOURCE_DIR) + "/fuzz/jwt/corpus", ".jwt");
    ASSERT_EQ(seeds.size(), 2u);
    for (const auto& t : seeds) {
        auto o = fuzz::jwt_entry(t);
        EXPECT_TRUE(o.accepted) << t;
        EXPECT_EQ(o.violation, "");
    }

    // Every other spelling of a part's last character, one that sets the bits the decoder
    // drops (RFC 4648 3.5: 4 of them after 2 leftover characters, 2 after 3), is
    // refused: the mutations below find these only by chance.
    const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    int respelt = 0;
    for (const auto& t : seeds)
        for (std::size_t start = 0, end = 0; end < t.size(); start = end + 1) {
            end = std::min(t.find('.', start), t.size());
            const auto leftover = (end - start) % 4;
            const unsigned dropped = leftover == 2 ? 4 : leftover == 3 ? 2 : 0;
            const auto value = alphabet.find(t[end - 1]);
            for (unsigned bits = 1; bits < (1u << dropped); ++bits) {
                auto other = t;
                other[end - 1] = alphabet[value | bits];
                ++respelt;
                auto o = fuzz::jwt_entry(other);
                EXPECT_FALSE(o.accepted) << "a second spelling was accepted: " << other;
                EXPECT_EQ(o.violation, "");
            }
        }
    EXPECT_GT(respelt, 0);

    const std::vector<std::string> tokens = {".",   "..", "=",  "-",   "_",  "+",   "/",    "eyJ",
                                             "e30", "A",  "AA", "AAA", "\0", " ",   "\xff", "%2E",
                                             "\"",  "{}", "ey", "J9",  "fQ", "ewo", "In0",  "Ig"};
    std::mt19937 rng(20261206u);
    const auto deadline = std::chrono::steady_clock::now() + kTimeBudget;
    int executed = 0, accepted = 0;
    for (int i = 0; i < kMutations && std::chrono::steady_clock::now() < deadline; ++i) {
        const auto& base = seeds[static_cast<std::size_t>(i) % seeds.size()];
        auto token = fuzz::mutate(base, seeds[static_cast<std::size_t>(i + 1) % seeds.size()], rng, tokens);
        ++executed;
        auto o = fuzz::jwt_entry(token);
        ASSERT_EQ(o.violation, "") << "mutation " << i << ": " << token;
        if (!o.accepted) continue;
        ++accepted;
        // Base64url is read in its canonical spelling only, so an accepted token is a
        // seed, to the byte: no content nobody signed, no second spelling of one token.
        ASSERT_NE(std::find(seeds.begin(), seeds.end(), token), seeds.end())
            << "mutation " << i << " accepted: " << token;
    }
    std::cout << "token mutations: " << executed << " run, " << executed - accepted << " refused, "
              << accepted << " accepted\n";
    EXPECT_GE(executed, 1000);
    EXPECT_GT(executed - accepted, executed * 9 / 10);
}

// A JWK Set is read from the identity provider: a number no double holds is a malformed
// document (ParseError), as any other.
TEST(Jwks, NumbersOutOfRangeAreAParseError) {
    EXPECT_THROW(parse_jwks(R"({"keys":[{"kty":"EC","kid":"x","crv":"P-256","x":1e999}]})"), ParseError);
    EXPECT_THROW(parse_jwks("1e999"), ParseError);
}

}  // namespace
}  // namespace pecd::api
