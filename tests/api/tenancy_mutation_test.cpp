// tenancy_mutation_test.cpp - one company's token against another company's mailboxes,
// whatever the request looks like
//
// A provider serves many companies through one API: a token names the domains or the
// mailboxes it may reach (pecd_domains, pecd_mailboxes). Requests made by that token are
// mutated (seeded, bounded; the fuzz targets' mutator) in their method, target (percent
// encoding, case, dot segments, query) and body, with the other tenants' addresses and
// message ids among the mutation tokens, and go through MailboxApi::handle() on a real
// SQLite store; lifecycle plans are committed as the server commits them. Whatever the
// request: no answer carries another tenant's message (subject, body, attachment name),
// no other tenant's mailbox changes and none is created outside the token's reach, no
// answer is a 500, and every /v1/ request is audited.
#include <gtest/gtest.h>

#include <chrono>
#include <iostream>
#include <random>

#include "api_stack.hpp"
#include "core/fs.hpp"
#include "jwt_helpers.hpp"
#include "mutate.hpp"
#include "temp_dir.hpp"

namespace pecd::api {
namespace {

using json = nlohmann::json;

constexpr int kMutations = 100000;
constexpr auto kTimeBudget = std::chrono::seconds(150);
const TimePoint kStart = TimePoint(std::chrono::seconds(1790000000));

struct Key {
    explicit Key(EVP_PKEY* k) : pkey(k) {}
    ~Key() { EVP_PKEY_free(pkey); }
    EVP_PKEY* pkey;
};

// A message only its own mailbox's readers may see: every marker is secret.
std::string secret_message(const std::string& marker) {
    return "From: sender@x.example\r\nTo: someone\r\nSubject: " + marker + "-subject\r\nMessage-ID: <" +
           marker +
           "@x.example>\r\nMIME-Version: 1.0\r\n"
           "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n" +
           marker + "-body\r\n--b\r\nContent-Type: application/pdf; name=\"" + marker +
           "-file.pdf\"\r\nContent-Disposition: attachment; filename=\"" + marker +
           "-file.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n";
}

class TenancyTest : public ::testing::Test {
protected:
    void SetUp() override {
        json jwks = test::jwks_of(rsa_.pkey, ec_.pkey);
        fs::write_file_durable(dir_ / "jwks.json", jwks.dump(), 0600);
        stack_ = std::make_unique<test::ApiStack>(dir_, clock_);
        auto& mail = stack_->store;
        mail.add_mailbox({"alice@a.example", 1 << 20});
        mail.add_mailbox({"carol@a.example", 1 << 20});
        mail.add_mailbox({"bob@b.example", 1 << 20, store::MailboxKind::receive_only, false});
        for (auto [address, marker] : {std::pair{"alice@a.example", "OWN-A"},
                                       {"carol@a.example", "SECRET-C"},
                                       {"bob@b.example", "SECRET-B"}})
            ASSERT_EQ(mail.deliver_bytes(address, std::string(marker) + ".1", secret_message(marker),
                                         "s@x.example"),
                      store::DeliveryOutcome::stored);
    }

    std::string token(const json& grants) {
        auto now = std::chrono::duration_cast<std::chrono::seconds>(kStart.time_since_epoch()).count();
        json c = {{"iss", "https://idp.test"}, {"aud", "pecd-api"},
                  {"sub", "portal-a"},         {"exp", now + 600},
                  {"nbf", now - 10},           {"scope", "mailbox:read mailbox:provision"}};
        for (auto& [k, v] : grants.items()) c[k] = v;
        return test::sign(ec_.pkey, {{"alg", "ES256"}, {"kid", "ec1"}}, c);
    }
    std::int64_t first_message(const std::string& address) {
        return stack_->store.messages(address).at(0).id;
    }

    // Commits a lifecycle plan the way the server does (with its audit record) and
    // returns the response that goes out.
    ApiResponse run(Plan& plan) {
        if (!plan.change) return plan.response;
        try {
            stack_->db->transact([&](store::Tx& tx) { plan.change(tx); });
        } catch (...) {
            return stack_->api.failed_change(std::current_exception()).first;
        }
        return plan.after_change();
    }

    pecd::test::TempDir temp_{"pecd-tenancy"};
    const std::filesystem::path& dir_ = temp_.path();
    ManualClock clock_{kStart};
    Key rsa_{EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048))};
    Key ec_{EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")};
    std::unique_ptr<test::ApiStack> stack_;
};

// "METHOD TARGET\nBODY": one line to mutate as a whole.
ApiRequest parse_request(const std::string& text, const std::string& bearer) {
    ApiRequest r;
    auto nl = text.find('\n');
    auto line = text.substr(0, nl);
    auto sp = line.find(' ');
    r.method = line.substr(0, sp);
    r.target = sp == std::string::npos ? "" : line.substr(sp + 1);
    r.body = nl == std::string::npos ? "" : text.substr(nl + 1);
    r.content_type = "application/json";
    r.authorization = "Bearer " + bearer;
    r.client_ip = "127.0.0.1";
    r.client_cert = "CN=portal-a";
    return r;
}

TEST_F(TenancyTest, NoRequestReachesAnotherTenant) {
    const auto a = std::to_string(first_message("alice@a.example"));
    const auto b = std::to_string(first_message("bob@b.example"));
    const auto c = std::to_string(first_message("carol@a.example"));
    const auto bob_before = *stack_->store.mailbox("bob@b.example");
    // Two companies' portals: one may reach all of a.example but nothing of b.example,
    // the other only alice's mailbox.
    const std::string domain_token = token({{"pecd_domains", {"a.example"}}});
    const std::string mailbox_token = token({{"pecd_mailboxes", {"alice@a.example"}}});

    const std::vector<std::string> seeds = {
        "GET /v1/mailboxes/alice@a.example\n",
        "GET /v1/mailboxes/alice@a.example/messages?subject=OWN&limit=5&offset=0\n",
        "GET /v1/mailboxes/alice@a.example/messages/" + a + "\n",
        "GET /v1/mailboxes/alice@a.example/messages/" + a + "/raw\n",
        "GET /v1/mailboxes/alice@a.example/messages/" + a + "/verification\n",
        "GET /v1/mailboxes/alice@a.example/messages/" + a + "/attachments\n",
        "GET /v1/mailboxes/alice@a.example/messages/" + a + "/attachments/0\n",
        "GET /v1/mailboxes/alice@a.example/messages/" + b + "/raw\n",
        "GET /v1/mailboxes/bob@b.example/messages/" + b + "/attachments/0\n",
        "GET /v1/mailboxes/carol@a.example/messages/" + c + "/raw\n",
        "POST /v1/mailboxes\n{\"address\":\"new@a.example\",\"kind\":\"receive-only\",\"quota_bytes\":1000}",
        "POST /v1/mailboxes\n{\"address\":\"evil@b.example\"}",
        "PATCH /v1/mailboxes/alice@a.example\n{\"quota_bytes\":5000}",
        "PATCH /v1/mailboxes/bob@b.example\n{\"quota_bytes\":5}",
        "POST /v1/mailboxes/bob@b.example/deactivate\n",
        "POST /v1/mailboxes/carol@a.example/deactivate\n",
        "POST /v1/mailboxes/alice@a.example/activate\n",
    };
    const std::vector<std::string> tokens = {"bob@b.example",
                                             "BOB@B.EXAMPLE",
                                             "carol@a.example",
                                             "b.example",
                                             "%40",
                                             "%2F",
                                             "%2e%2e",
                                             "/../",
                                             "//",
                                             "?",
                                             "&",
                                             "=",
                                             ";",
                                             " ",
                                             "%20",
                                             "%00",
                                             "@",
                                             "alice@a.example@",
                                             b,
                                             c,
                                             "/messages/" + b,
                                             "/attachments/",
                                             "/raw",
                                             "\"address\":\"x@b.example\"",
                                             "{",
                                             "}",
                                             "\"quota_bytes\":",
                                             "-1",
                                             "1e999",
                                             "[]",
                                             "null"};
    std::mt19937 rng(20261206u);
    const auto deadline = std::chrono::steady_clock::now() + kTimeBudget;
    int run_count = 0, ok = 0, changed = 0;
    for (int i = 0; i < kMutations && std::chrono::steady_clock::now() < deadline; ++i, ++run_count) {
        auto text = fuzz::mutate(seeds[static_cast<std::size_t>(i) % seeds.size()],
                                 seeds[static_cast<std::size_t>(i * 5 + 1) % seeds.size()], rng, tokens);
        const bool whole_domain = i % 2 == 0;
        auto req = parse_request(text, whole_domain ? domain_token : mailbox_token);
        const auto carol_before =
            *stack_->store.mailbox("carol@a.example");  // the domain token may change her
        auto plan = stack_->api.handle(req);
        if (plan.change) ++changed;
        auto response = run(plan);
        const std::string where = "mutation " + std::to_string(i) + ": " + text;
        ASSERT_NE(response.status, 500) << where << "\n" << response.body;
        if (response.status / 100 == 2) ++ok;
        for (const char* secret : {"SECRET-B", "SECRET-C"}) {
            if (whole_domain && std::string(secret) == "SECRET-C") continue;  // carol is in a.example
            ASSERT_EQ(response.body.find(secret), std::string::npos) << where << "\n" << response.body;
        }
        if (req.target.rfind("/v1/", 0) == 0) {
            ASSERT_TRUE(plan.audited) << where;
        }
        auto bob = stack_->store.mailbox("bob@b.example");
        ASSERT_TRUE(bob && bob->state == bob_before.state && bob->quota_bytes == bob_before.quota_bytes)
            << where;
        if (!whole_domain) {
            auto carol = stack_->store.mailbox("carol@a.example");
            ASSERT_TRUE(carol && carol->state == carol_before.state &&
                        carol->quota_bytes == carol_before.quota_bytes)
                << where;
        }
        for (const auto& m : stack_->store.mailboxes("b.example"))
            ASSERT_EQ(m.address, "bob@b.example") << where;
    }
    std::cout << "tenancy mutations: " << run_count << " requests, " << ok << " answered 2xx, " << changed
              << " lifecycle changes\n";
    EXPECT_GE(run_count, 1000);
    EXPECT_GT(ok, 0);
    EXPECT_GT(changed, 0);
}

}  // namespace
}  // namespace pecd::api
