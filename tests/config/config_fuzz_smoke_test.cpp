// config_fuzz_smoke_test.cpp - the config fuzz entry in the normal suite
//
// The seeds of fuzz/config/corpus (a relay, a PEC provider, a PostgreSQL node with an HSM
// and the API, an HTTPS index, the minimal file) must be accepted, and a fixed set of
// deterministic mutations of them (seeded PRNG: byte edits, and values swapped behind
// valid keys) must keep every promise config_entries.hpp lists: refused with a line or a
// key, or accepted and usable.
// Bounded in count (kMutations) and time (kTimeBudget).
#include <gtest/gtest.h>

#include <chrono>
#include <iostream>

#include "config_entries.hpp"
#include "mutate.hpp"

namespace pecd::fuzz {
namespace {

constexpr int kMutations = 100000;
constexpr auto kTimeBudget = std::chrono::seconds(120);

const std::vector<std::string> kTokens = {"\n",
                                          " = ",
                                          "= 9223372036854775807",
                                          "= -9223372036854775808",
                                          "= 18446744073709551616",
                                          "= 0",
                                          "= -1",
                                          "= 1e400",
                                          "= inf",
                                          "= nan",
                                          "= 3.5",
                                          "= true",
                                          "= 1979-05-27T07:32:00Z",
                                          "= []",
                                          "= [\"\"]",
                                          "= {}",
                                          "\"",
                                          "'",
                                          "\"\"\"",
                                          "'''",
                                          "\\u0000",
                                          "\\",
                                          "[",
                                          "]",
                                          "[[",
                                          "]]",
                                          "{",
                                          "}",
                                          ",",
                                          ".",
                                          "#",
                                          "[[listener]]\nname = \"x\"\nport = 1\n",
                                          "[[listener.sni]]\n",
                                          "[api]\n",
                                          "[pec]\n",
                                          "[log]\n",
                                          "[store]\n",
                                          "[index]\n",
                                          "[antivirus]\n",
                                          "[outbound]\n",
                                          "[dns]\n",
                                          "[limits]\n",
                                          "[tls]\n",
                                          "enabled = false\n",
                                          "enabled = true\n",
                                          "backend = \"postgresql\"\n",
                                          "source = \"ldap\"\n",
                                          "retention_months",
                                          "idle_timeout",
                                          "delay_warning",
                                          "tls = \"none\"\n",
                                          "auth = true\n",
                                          "port",
                                          "listen = \"[::1]:0\"\n",
                                          std::string(1, '\0'),
                                          "\xff",
                                          "\xc3\xa8",
                                          std::string(300, 'a')};

// Values a typo or a misunderstanding puts after a key: bounds and one past them, the
// integer limits, other types.
const std::vector<std::string> kValues = {
    "0",         "-1",     "1",       "29",    "30",       "1200",       "1201",        "315360000",
    "315360001", "60000",  "60001",   "65535", "65536",    "4294967295", "4294967296",  "9223372036854775807",
    "3.5",       "true",   "\"\"",    "\"x\"", "\"none\"", "\"/\"",      "\"[::1]:0\"", "\"postgresql\"",
    "[]",        "[\"\"]", "[\"a\"]", "{}"};

// Replaces the value of one to three `key = value` lines: byte mutations rarely leave
// valid TOML, and out-of-range values behind valid keys are what operators write.
std::string swap_values(std::string text, std::mt19937& rng) {
    auto pick = [&](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng); };
    const int swaps = 1 + static_cast<int>(pick(3));
    for (int i = 0; i < swaps; ++i) {
        std::vector<std::size_t> values;  // offsets just after " = "
        for (auto at = text.find(" = "); at != std::string::npos; at = text.find(" = ", at + 3))
            values.push_back(at + 3);
        if (values.empty()) break;
        auto from = values[pick(values.size())];
        auto to = text.find('\n', from);
        text.replace(from, (to == std::string::npos ? text.size() : to) - from,
                     kValues[pick(kValues.size())]);
    }
    return text;
}

TEST(ConfigFuzzSmoke, SeedsAreAccepted) {
    auto seeds = load_dir(std::string(PECD_SOURCE_DIR) + "/fuzz/config/corpus", ".toml");
    ASSERT_EQ(seeds.size(), 5u);
    for (const auto& s : seeds) {
        auto o = config_entry(s);
        EXPECT_TRUE(o.accepted) << o.error << "\n" << s;
        EXPECT_EQ(o.violation, "");
    }
}

TEST(ConfigFuzzSmoke, MutatedFilesAreRefusedWithAKeyOrUsable) {
    auto seeds = load_dir(std::string(PECD_SOURCE_DIR) + "/fuzz/config/corpus", ".toml");
    ASSERT_FALSE(seeds.empty());
    std::mt19937 rng(20261206u);
    const auto deadline = std::chrono::steady_clock::now() + kTimeBudget;
    int run = 0, accepted = 0;
    for (; run < kMutations && std::chrono::steady_clock::now() < deadline; ++run) {
        const auto& seed = seeds[static_cast<std::size_t>(run) % seeds.size()];
        auto text =
            run % 2 ? swap_values(seed, rng)
                    : mutate(seed, seeds[static_cast<std::size_t>(run * 3 + 1) % seeds.size()], rng, kTokens);
        auto o = config_entry(text);
        ASSERT_EQ(o.violation, "") << "mutation " << run << ":\n" << text;
        accepted += o.accepted;
    }
    std::cout << "config mutations: " << run << " run, " << accepted << " accepted\n";
    EXPECT_GE(run, 1000);
    EXPECT_GT(accepted, 0);
    EXPECT_LT(accepted, run);
}

}  // namespace
}  // namespace pecd::fuzz
