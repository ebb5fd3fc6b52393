// mime_view_mutation_test.cpp - what the API shows of stored messages nobody vetted
//
// Mailboxes keep what arrived (anomaly envelopes carry ordinary mail from anyone), and the
// API parses it to list headers and attachments. The real provider samples and a
// multipart message with attachments are mutated (seeded, bounded; the fuzz targets'
// mutator) and read the way the API reads them: nothing throws, every text shown is valid
// UTF-8 (the API writes it into JSON), and every attachment listed can be fetched.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>

#include "api/mime_view.hpp"
#include "mutate.hpp"

namespace pecd::api {
namespace {

constexpr int kMutations = 10000;
constexpr auto kTimeBudget = std::chrono::seconds(120);

// Whether the JSON the API writes can hold it (nlohmann's dump() refuses invalid UTF-8).
bool json_safe(const std::string& s) {
    try {
        (void)nlohmann::json(s).dump();
        return true;
    } catch (const nlohmann::json::exception&) {
        return false;
    }
}

TEST(MimeViewMutations, HostileStoredMessagesAreShownSafely) {
    auto corpus = fuzz::load_dir(PECD_SAMPLES_DIR, ".eml");
    ASSERT_FALSE(corpus.empty());
    corpus.push_back(
        "From: =?iso-8859-1?q?Citt=E0?= <a@example.com>\r\nSubject: =?utf-8?b?w6g=?= fattura\r\n"
        "Message-ID: <m1@example.com>\r\nDate: Mon, 3 Feb 2025 10:15:00 +0100\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: "
        "text/plain\r\n\r\ntesto\r\n"
        "--b1\r\nContent-Type: application/pdf; name=\"f.pdf\"\r\nContent-Transfer-Encoding: base64\r\n"
        "Content-Disposition: attachment; filename*=utf-8''caff%C3%A8.pdf\r\n\r\nJVBERi0xLjQK\r\n"
        "--b1\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n--b1--\r\n");
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
        try {
            auto h = summarize(raw);
            for (const auto* text : {&h.message_id, &h.subject, &h.from, &h.date, &h.pec_type, &h.pec_ref})
                ASSERT_TRUE(json_safe(*text)) << "mutation " << i << ": not UTF-8: " << *text;
            auto list = attachments(raw);
            if (!list.empty()) ++with_attachments;
            for (const auto& a : list) {
                ASSERT_TRUE(json_safe(a.filename) && json_safe(a.content_type)) << "mutation " << i;
                auto got = attachment(raw, a.index);
                ASSERT_TRUE(got) << "mutation " << i << ": attachment " << a.index << " listed, not found";
            }
            EXPECT_FALSE(attachment(raw, static_cast<int>(list.size()))) << "mutation " << i;
        } catch (const std::exception& e) {
            FAIL() << "mutation " << i << ": " << e.what();
        }
    }
    std::cout << "stored-message mutations: " << executed << " shown, " << with_attachments
              << " with attachments\n";
    EXPECT_GE(executed, 1000);
    EXPECT_GT(with_attachments, 0);
}

}  // namespace
}  // namespace pecd::api
