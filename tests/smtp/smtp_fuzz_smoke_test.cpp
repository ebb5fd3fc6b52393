// smtp_fuzz_smoke_test.cpp - the SMTP fuzz entries (server and client session) in the
// normal suite
//
// The seeds of fuzz/smtp_session/corpus and fuzz/smtp_client/corpus must do what their
// peer expects of them (messages stored or delivered, the smuggling attempt refused, no
// delivery in clear when TLS is required), and a fixed set of deterministic mutations of
// them (seeded PRNG) must keep every promise smtp_entries.hpp lists. Bounded in count
// (kMutations) and time (kTimeBudget).
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

const std::vector<std::string> kReplyTokens = {"\r\n",
                                               "\n",
                                               "\r",
                                               "220 ",
                                               "250 ",
                                               "250-",
                                               "354 ",
                                               "421 ",
                                               "451 ",
                                               "550 ",
                                               "221 ",
                                               "999 ",
                                               "2",
                                               "-",
                                               "250-PIPELINING\r\n",
                                               "250-STARTTLS\r\n",
                                               "250 STARTTLS\r\n",
                                               "250-SIZE 1\r\n",
                                               "250-DSN\r\n",
                                               "250-8BITMIME\r\n",
                                               "250-SMTPUTF8\r\n",
                                               "250-SIZE 99999999999999999999999\r\n",
                                               std::string(1, '\0'),
                                               "\xff",
                                               std::string(600, 'x')};

std::map<std::string, std::string> seeds(const std::string& target) {
    std::map<std::string, std::string> out;
    for (const auto& e :
         std::filesystem::directory_iterator(std::string(PECD_SOURCE_DIR) + "/fuzz/" + target + "/corpus"))
        out[e.path().filename().string()] = pecd::fs::read_file(e.path());
    return out;
}

// Runs `entry` on deterministic mutations of the seeds until one breaks a promise (a
// test failure naming it), kMutations are done or kTimeBudget is spent.
template <class Entry>
auto run_mutations(const std::map<std::string, std::string>& seed_map, Entry entry,
                   const std::vector<std::string>& tokens, unsigned seed) {
    std::vector<std::string> corpus;
    for (const auto& [name, data] : seed_map) corpus.push_back(data);
    std::mt19937 rng(seed);
    const auto deadline = std::chrono::steady_clock::now() + kTimeBudget;
    std::vector<decltype(entry(std::string_view()))> outcomes;
    for (int i = 0; i < kMutations && std::chrono::steady_clock::now() < deadline; ++i) {
        const auto& base = corpus[static_cast<std::size_t>(i) % corpus.size()];
        const auto& other = corpus[static_cast<std::size_t>(i * 7 + 3) % corpus.size()];
        outcomes.push_back(entry(mutate(base, other, rng, tokens)));
        if (!outcomes.back().violation.empty()) {
            ADD_FAILURE() << "mutation " << i << ": " << outcomes.back().violation << "\n"
                          << outcomes.back().transcript;
            break;
        }
    }
    return outcomes;
}

TEST(SessionFuzzSmoke, SeedSessionsBehave) {
    auto s = seeds("smtp_session");
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
    auto outcomes = run_mutations(seeds("smtp_session"), smtp_session_entry, kTokens, 20261206u);
    std::size_t committed = 0;
    for (const auto& o : outcomes) committed += o.committed;
    std::cout << "session mutations: " << outcomes.size() << " run, " << committed << " messages stored\n";
    EXPECT_GE(outcomes.size(), 1000u);
    EXPECT_GT(committed, 0u) << "some mutations still deliver";
}

TEST(ClientFuzzSmoke, SeedServersGetTheRightVerdicts) {
    auto s = seeds("smtp_client");
    ASSERT_EQ(s.size(), 7u);
    std::map<std::string, ClientOutcome> o;
    for (const auto& [name, data] : s) {
        o[name] = smtp_client_entry(data);
        EXPECT_EQ(o[name].violation, "") << name << "\n" << o[name].transcript;
    }
    EXPECT_EQ(o["esmtp-starttls-pipelining"].delivered, 1u) << o["esmtp-starttls-pipelining"].transcript;
    EXPECT_TRUE(o["esmtp-starttls-pipelining"].tls);
    EXPECT_EQ(o["tls-required-not-offered"].delivered, 0u);
    EXPECT_FALSE(o["tls-required-not-offered"].body_sent) << "no delivery in clear";
    EXPECT_EQ(o["helo-fallback"].delivered, 1u) << o["helo-fallback"].transcript;
    EXPECT_EQ(o["lmtp-three"].delivered, 1u) << "one 250, one 452 after the data, one 550 at RCPT\n"
                                             << o["lmtp-three"].transcript;
    EXPECT_EQ(o["mail-refused"].delivered, 0u);
    EXPECT_EQ(o["reply-code-changes"].delivered, 0u);
    EXPECT_EQ(o["implicit-tls-keep-open"].delivered, 1u) << o["implicit-tls-keep-open"].transcript;
}

TEST(ClientFuzzSmoke, MutatedServersKeepThePromises) {
    auto outcomes = run_mutations(seeds("smtp_client"), smtp_client_entry, kReplyTokens, 20261207u);
    std::size_t delivered = 0;
    for (const auto& o : outcomes) delivered += o.delivered;
    std::cout << "client mutations: " << outcomes.size() << " run, " << delivered
              << " recipients delivered\n";
    EXPECT_GE(outcomes.size(), 1000u);
    EXPECT_GT(delivered, 0u) << "some mutations still deliver";
}

}  // namespace
}  // namespace pecd::fuzz
