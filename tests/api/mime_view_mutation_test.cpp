// mime_view_mutation_test.cpp - what the API shows of stored messages nobody vetted
//
// Mailboxes keep what arrived (anomaly envelopes carry ordinary mail from anyone), and the
// API parses it to list headers and attachments. The real provider samples and the
// mime_view fuzz target's seeds are mutated (seeded, bounded; the fuzz targets' mutator)
// and read the way the API reads them: nothing throws, every text shown is valid UTF-8
// (the API writes it into JSON), and every attachment listed can be fetched
// (fuzz/common/mime_view_entries.hpp).
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <random>

#include "mime_view_entries.hpp"
#include "mutate.hpp"

namespace pecd::api {
namespace {

constexpr int kMutations = 10000;
constexpr auto kTimeBudget = std::chrono::seconds(120);

TEST(MimeViewMutations, HostileStoredMessagesAreShownSafely) {
    auto corpus = fuzz::load_dir(PECD_SAMPLES_DIR, ".eml");
    ASSERT_FALSE(corpus.empty());
    for (auto& seed : fuzz::load_dir(std::string(PECD_SOURCE_DIR) + "/fuzz/mime_view/corpus", ".eml"))
        corpus.push_back(std::move(seed));
    const std::vector<std::string> tokens = {"\r\n",
                                             "\r\n\r\n",
                                             "--",
                                             "boundary=",
                                             "\"",
                                             ";",
                                             "=?",
                                             "?=",
                                             "?q?",
                                             "?b?",
                                             "=?utf-8?q?",
                                             "=?x-unknown?b?",
                                             "\xe0",
                                             "\xff\xfe",
                                             "\xc3",
                                             std::string(1, '\0'),
                                             "Content-Type: message/rfc822\r\n",
                                             "Content-Transfer-Encoding: quoted-printable\r\n",
                                             "filename*=",
                                             "Subject: \xe8\xe0\r\n",
                                             "From: \xa0<x@y>\r\n"};
    std::mt19937 rng(20261206u);
    const auto deadline = std::chrono::steady_clock::now() + kTimeBudget;
    int executed = 0, with_attachments = 0;
    for (int i = 0; i < kMutations && std::chrono::steady_clock::now() < deadline; ++i) {
        const auto& base = corpus[static_cast<std::size_t>(i) % corpus.size()];
        auto raw =
            fuzz::mutate(base, corpus[static_cast<std::size_t>(i * 7 + 3) % corpus.size()], rng, tokens);
        ++executed;
        auto o = fuzz::mime_view_entry(raw);
        ASSERT_EQ(o.violation, "") << "mutation " << i;
        if (o.attachments > 0) ++with_attachments;
    }
    std::cout << "stored-message mutations: " << executed << " shown, " << with_attachments
              << " with attachments\n";
    EXPECT_GE(executed, 1000);
    EXPECT_GT(with_attachments, 0);
}

}  // namespace
}  // namespace pecd::api
