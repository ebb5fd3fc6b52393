// timestamp_mutation_test.cpp - time-stamp replies a TSA (or the network) got wrong, byte
// by byte
//
// The timestamp fuzz target's seeds (fuzz/timestamp/corpus: a granted reply from pecd's
// TSA, one from `openssl ts -reply`, a rejection) are checked once, then a bounded, seeded
// set of mutations of them goes through the reader and verifier the legal log's sealer
// uses (fuzz/common/timestamp_entries.hpp). Nothing but ParseError leaves the reader,
// nothing leaves the verifier, and a verified reply is one the TSA signed.
#include <gtest/gtest.h>

#include <chrono>
#include <iostream>
#include <random>

#include "mutate.hpp"
#include "timestamp_entries.hpp"

namespace pecd::fuzz {
namespace {

constexpr int kMutations = 30000;
constexpr auto kTimeBudget = std::chrono::seconds(120);

TEST(TimestampMutations, TamperedRepliesAreRefusedWithoutEscaping) {
    const auto seeds = load_dir(std::string(PECD_SOURCE_DIR) + "/fuzz/timestamp/corpus", ".tsr");
    ASSERT_EQ(seeds.size(), 3u);  // granted, openssl, rejected (sorted by name)
    for (std::size_t i = 0; i < seeds.size(); ++i) {
        auto o = timestamp_entry(seeds[i]);
        EXPECT_EQ(o.violation, "") << i;
        EXPECT_TRUE(o.parsed) << i;
        EXPECT_EQ(o.verified, i < 2) << i;
    }

    // DER pieces: tags and lengths, the GeneralizedTime of year 9999 and a huge INTEGER.
    const std::vector<std::string> tokens = {std::string("\x18\x0f"
                                                         "99991231235959Z",
                                                         17),
                                             std::string("\x18\x0f"
                                                         "00010101000000Z",
                                                         17),
                                             std::string("\x02\x01\x00", 3),
                                             std::string("\x02\x09\x01\x00\x00\x00\x00\x00\x00\x00\x00", 11),
                                             std::string("\x30\x80", 2),
                                             std::string("\x00\x00", 2),
                                             std::string("\x30\x00", 2),
                                             std::string("\x04\x20", 2),
                                             std::string("\x84\xff\xff\xff\xff", 5),
                                             std::string("\x06\x03\x55\x1d\x25", 5),
                                             std::string("\x0c\x01\xff", 3),
                                             std::string("\x31\x00", 2)};
    std::mt19937 rng(20261206u);
    const auto deadline = std::chrono::steady_clock::now() + kTimeBudget;
    int executed = 0, parsed = 0, verified = 0;
    for (int i = 0; i < kMutations && std::chrono::steady_clock::now() < deadline; ++i) {
        const auto& base = seeds[static_cast<std::size_t>(i) % seeds.size()];
        auto reply = mutate(base, seeds[static_cast<std::size_t>(i + 1) % seeds.size()], rng, tokens);
        ++executed;
        auto o = timestamp_entry(reply);
        ASSERT_EQ(o.violation, "") << "mutation " << i;
        parsed += o.parsed;
        verified += o.verified;
    }
    std::cout << "time-stamp reply mutations: " << executed << " run, " << parsed << " parsed, " << verified
              << " verified\n";
    EXPECT_GE(executed, 1000);
    EXPECT_GT(parsed, 0);
    EXPECT_LT(verified, executed / 10);
}

}  // namespace
}  // namespace pecd::fuzz
