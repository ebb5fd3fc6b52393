// session_fuzz_smoke_test.cpp - the SMTP session fuzz entry in the normal suite
//
// The seed sessions of fuzz/smtp_session/corpus must do what a client expects of them
// (their messages stored, the smuggling attempt refused), and a fixed set of deterministic
// mutations of them (seeded PRNG) must keep every promise smtp_entries.hpp lists. Bounded
// in count (kMutations) and time (kTimeBudget).
#include <gtest/gtest.h>

#include <chrono>
#include <iostream>
#include <map>

#include "core/fs.hpp"
#include "mutate.hpp"
#include "smtp_entries.hpp"

namespace pecd::fuzz {
namespace {

constexpr int kMutations = 200000;
constexpr auto kTimeBudget = std::chrono::seconds(120);

const std::vector<std::string> kTokens = {"\r\n",
                                          "\n",
                                          "\r",
                                          ".\r\n",
                                          "\r\n.\r\n",
                                          "\n.\n",
                                          "..",
                                          "EHLO x\r\n",
                                          "HELO x\r\n",
                                          "LHLO x\r\n",
                                          "STARTTLS\r\n",
                                          "AUTH PLAIN\r\n",
                                          "AUTH LOGIN\r\n",
                                          "*\r\n",
                                          "=",
                                          "MAIL FROM:<u@local.test>\r\n",
                                          "MAIL FROM:<>\r\n",
                                          "RCPT TO:<b@local.test>\r\n",
                                          "RCPT TO:<x@remote.test>\r\n",
                                          "DATA\r\n",
                                          "RSET\r\n",
                                          "QUIT\r\n",
                                          " SIZE=999999999999999999999",
                                          " BODY=BINARYMIME",
                                          " SMTPUTF8",
                                          " BODY=8BITMIME",
                                          " NOTIFY=NEVER",
                                          " ORCPT=rfc822;",
                                          " RET=FULL",
                                          " ENVID=",
                                          "<",
                                          ">",
                                          "@",
                                          "\"",
                                          "\\",
                                          std::string(1, '\0'),
                                          "\xff",
                                          "\xc3\xa8",
                                          std::string(300, 'a')};

std::map<std::string, std::string> seeds() {
    std::map<std::string, std::string> out;
    for (const auto& e :
         std::filesystem::directory_iterator(std::string(PECD_SOURCE_DIR) + "/fuzz/smtp_session/corpus"))
        out[e.path().filename().string()] = pecd::fs::read_file(e.path());
    return out;
}

TEST(SessionFuzzSmoke, SeedSessionsBehave) {
    auto s = seeds();
    ASSERT_EQ(s.size(), 9u);
    std::map<std::string, SessionOutcome> o;
    for (const auto& [name, data] : s) {
        o[name] = smtp_session_entry(data);
        EXPECT_EQ(o[name].violation, "") << name;
        EXPECT_GT(o[name].replies, 2u) << name;
    }
    EXPECT_EQ(o["mx-starttls"].committed, 1u) << o["mx-starttls"].transcript;
    EXPECT_EQ(o["mx-plain-pipelined"].committed, 1u);
    EXPECT_EQ(o["submission-plain"].committed, 1u) << o["submission-plain"].transcript;
    EXPECT_EQ(o["submission-login"].committed, 1u) << "the sender that is not the account is refused";
    EXPECT_EQ(o["implicit-auth-wrong"].committed, 0u) << "a wrong password authenticates no one";
    EXPECT_EQ(o["lmtp"].committed, 1u);
    EXPECT_EQ(o["smuggling"].committed, 0u) << "a bare LF in DATA ends the connection";
    EXPECT_TRUE(o["smuggling"].closed);
    EXPECT_EQ(o["small-limits"].committed, 0u) << "over the size limit";
    EXPECT_TRUE(o["small-limits"].closed) << "too many errors";
    EXPECT_EQ(o["commit-fails"].committed, 0u) << "the queue could not store it";
}

TEST(SessionFuzzSmoke, MutatedSessionsKeepThePromises) {
    auto s = seeds();
    std::vector<std::string> corpus;
    for (auto& [name, data] : s) corpus.push_back(data);
    std::mt19937 rng(20261206u);
    const auto deadline = std::chrono::steady_clock::now() + kTimeBudget;
    int executed = 0;
    std::size_t committed = 0;
    for (int i = 0; i < kMutations && std::chrono::steady_clock::now() < deadline; ++i) {
        const auto& base = corpus[static_cast<std::size_t>(i) % corpus.size()];
        const auto& other = corpus[static_cast<std::size_t>(i * 7 + 3) % corpus.size()];
        auto input = mutate(base, other, rng, kTokens);
        auto o = smtp_session_entry(input);
        ++executed;
        committed += o.committed;
        ASSERT_EQ(o.violation, "") << "mutation " << i;
    }
    std::cout << "session mutations: " << executed << " run, " << committed << " messages stored\n";
    EXPECT_GE(executed, 1000);
    EXPECT_GT(committed, 0u) << "some mutations still deliver";
}

}  // namespace
}  // namespace pecd::fuzz
