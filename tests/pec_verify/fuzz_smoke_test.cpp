// fuzz_smoke_test.cpp - a bounded, deterministic fuzz run in the normal suite
//
// Feeds the libFuzzer targets' entry functions (fuzz/common/pec_entries.*) the sample
// corpus and a fixed number of deterministic mutations of it (seeded PRNG: the same
// inputs every run). Asserts that nothing crashes and that every rejected input comes with
// a finding. Bounded in count (kMutations) and time (kTimeBudget).
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <random>

#include "mutate.hpp"
#include "pec_entries.hpp"

namespace pecd::fuzz {
namespace {

constexpr int kMutations = 20000;
constexpr auto kTimeBudget = std::chrono::seconds(240);

const std::vector<std::string> kTokens = {
    "\r\n",
    "\n",
    "--",
    "\r\n\r\n",
    "boundary=",
    ";",
    "\"",
    "Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; boundary=",
    "Content-Type: application/pkcs7-signature\r\n",
    "Content-Transfer-Encoding: base64\r\n",
    "MIAGCSqGSIb3DQEHAqCAMIA",
    "X-Trasporto: posta-certificata\r\n",
    "X-Ricevuta: avvenuta-consegna\r\n",
    "X-VerificaSicurezza: errore\r\n",
    "<postacert tipo=\"",
    "errore=\"virus\"",
    "&lt;",
    "&#x0;",
    "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>",
    "=?utf-8?b?w6g=?=",
    "name=\"daticert.xml\"",
    "message/rfc822",
    "\xff\xfe",
    std::string(1, '\0')};

struct RunStats {
    int executed = 0, accepted = 0, rejected = 0;
};

template <class Entry>
RunStats run_mutations(const std::vector<std::string>& corpus, Entry entry, unsigned seed) {
    RunStats st;
    std::mt19937 rng(seed);
    const auto deadline = std::chrono::steady_clock::now() + kTimeBudget;
    for (int i = 0; i < kMutations && std::chrono::steady_clock::now() < deadline; ++i) {
        const auto& base = corpus[static_cast<std::size_t>(i) % corpus.size()];
        const auto& other = corpus[static_cast<std::size_t>(i * 7 + 3) % corpus.size()];
        auto input = mutate(base, other, rng, kTokens);
        auto o = entry(input);
        ++st.executed;
        if (o.accepted) {
            ++st.accepted;
        } else {
            ++st.rejected;
            EXPECT_FALSE(o.finding.empty()) << "rejected without a finding, mutation " << i;
        }
    }
    return st;
}

TEST(FuzzSmoke, SeedsAreJudgedWithFindings) {
    auto messages = load_dir(PECD_SAMPLES_DIR, ".eml");
    ASSERT_EQ(messages.size(), 6u);
    int accepted = 0;
    for (auto& m : messages) {
        auto o = verify_message_entry(m);
        accepted += o.accepted;
        if (!o.accepted) {
            EXPECT_FALSE(o.finding.empty());
        }
    }
    EXPECT_EQ(accepted, 2) << "the two real Aruba receipts";
    for (auto& x : load_dir(std::string(PECD_SOURCE_DIR) + "/fuzz/daticert/corpus", ".xml")) {
        auto o = daticert_entry(x);
        if (!o.accepted) {
            EXPECT_FALSE(o.finding.empty());
        }
    }
    for (auto bad : {"", "\r\n\r\n", "Content-Type: multipart/signed; boundary=\"\"\r\n\r\n--\r\n--\r\n"}) {
        auto o = verify_message_entry(bad);
        EXPECT_FALSE(o.accepted);
        EXPECT_FALSE(o.finding.empty());
    }
}

TEST(FuzzSmoke, MessageMutations) {
    auto corpus = load_dir(PECD_SAMPLES_DIR, ".eml");
    ASSERT_FALSE(corpus.empty());
    auto st = run_mutations(corpus, verify_message_entry, 20261125u);
    std::cout << "message mutations: " << st.executed << " run, " << st.accepted << " accepted, "
              << st.rejected << " rejected\n";
    EXPECT_GE(st.executed, 1000);
    EXPECT_GT(st.rejected, st.executed / 2) << "most mutations must be caught";
}

TEST(FuzzSmoke, DaticertMutations) {
    auto corpus = load_dir(std::string(PECD_SOURCE_DIR) + "/fuzz/daticert/corpus", ".xml");
    ASSERT_FALSE(corpus.empty());
    auto st = run_mutations(corpus, daticert_entry, 42u);
    std::cout << "daticert mutations: " << st.executed << " run, " << st.accepted << " accepted, "
              << st.rejected << " rejected\n";
    EXPECT_GE(st.executed, 1000);
    EXPECT_GT(st.accepted, 0) << "some mutations (e.g. in text values) stay valid";
    EXPECT_GT(st.rejected, 0);
}

}  // namespace
}  // namespace pecd::fuzz
