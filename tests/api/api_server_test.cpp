// api_server_test.cpp - the mailbox API over real HTTPS + mutual TLS, driven by curl
//
// The server runs in-process on 127.0.0.1 with a ManualClock; certificates (server, a
// client CA and its client, a foreign CA and its client) and the token signing keys
// (RSA and EC, as a JWKS file) are made at test time with the openssl command and
// OpenSSL; tokens are signed here. Every request goes through curl.
#include <gtest/gtest.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <boost/asio/io_context.hpp>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "api/server.hpp"
#include "api_stack.hpp"
#include "core/fs.hpp"
#include "jwt_helpers.hpp"
#include "log/legal_log.hpp"
#include "store/mail_store.hpp"
#include "tls/server_tls.hpp"

namespace pecd::api {
namespace {

using json = nlohmann::json;
using test::sign;

struct Cmd {
    int rc;
    std::string out;
};
Cmd run(const std::string& cmd) {
    Cmd r{0, {}};
    FILE* p = ::popen((cmd + " 2>/dev/null").c_str(), "r");
    if (!p) return {-1, {}};
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
    r.rc = ::pclose(p);
    return r;
}

EVP_PKEY* load_key(const std::filesystem::path& p) {
    FILE* f = std::fopen(p.c_str(), "r");
    EVP_PKEY* k = PEM_read_PrivateKey(f, nullptr, nullptr, nullptr);
    std::fclose(f);
    return k;
}

const TimePoint kStart = TimePoint(std::chrono::seconds(1790000000));

class ApiServerTest : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/pecd-api-XXXXXX";
        dir_ = ::mkdtemp(tmpl);
        auto d = dir_.string();
        // Client CA + client certificate; a foreign CA + its client.
        for (std::string ca : {"ca", "foreign"}) {
            ASSERT_EQ(run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 "
                          "-subj /CN=" +
                          ca + "-ca -keyout " + d + "/" + ca + ".key -out " + d + "/" + ca + ".pem")
                          .rc,
                      0);
            ASSERT_EQ(
                run("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=" + ca +
                    "-portal -keyout " + d + "/" + ca + "-client.key -out " + d + "/" + ca + "-client.csr")
                    .rc,
                0);
            ASSERT_EQ(run("openssl x509 -req -in " + d + "/" + ca + "-client.csr -CA " + d + "/" + ca +
                          ".pem -CAkey " + d + "/" + ca + ".key -CAcreateserial -days 30 -out " + d + "/" +
                          ca + "-client.pem")
                          .rc,
                      0);
        }
        ASSERT_EQ(
            run("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out " + d + "/rsa.key").rc, 0);
        ASSERT_EQ(
            run("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out " + d + "/ec.key").rc,
            0);
        ASSERT_EQ(
            run("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out " + d + "/other.key").rc,
            0);
        rsa_ = load_key(dir_ / "rsa.key");
        ec_ = load_key(dir_ / "ec.key");
        other_ = load_key(dir_ / "other.key");
        ASSERT_TRUE(rsa_ && ec_ && other_);
        json jwks = test::jwks_of(rsa_, ec_);
        fs::write_file_durable(dir_ / "jwks.json", jwks.dump(), 0600);

        stack_ = std::make_unique<test::ApiStack>(dir_, clock_);
        db_ = stack_->db.get();
        store_ = &stack_->store;
        log_ = &stack_->log;
        lifecycle_ = &stack_->lifecycle;
        audit_ = std::make_unique<AuditTrail>(*db_, *log_, clock_);

        tls::ServerTlsSettings ts;
        ts.pair = tls::ensure_self_signed(dir_ / "tls", {"localhost"});
        ts.client_ca = dir_ / "ca.pem";
        ApiServerSettings ss;
        ss.tls = std::make_shared<tls::ServerTls>(ts);
        ss.allow = AllowList({"127.0.0.1/32", "::1"});
        ss.max_body = 4096;
        server_ = std::make_unique<ApiServer>(io_, stack_->api, *audit_, *lifecycle_, ss);
        port_ = server_->start();
        for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { io_.run(); });
    }
    void TearDown() override {
        server_->stop();
        io_.stop();
        for (auto& t : threads_) t.join();
        server_.reset();
        audit_.reset();
        EVP_PKEY_free(rsa_);
        EVP_PKEY_free(ec_);
        EVP_PKEY_free(other_);
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }

    json claims(const json& extra = json::object()) {
        auto now = std::chrono::duration_cast<std::chrono::seconds>(clock_.now().time_since_epoch()).count();
        json c = {{"iss", "https://idp.test"},
                  {"aud", "pecd-api"},
                  {"sub", "portal-a"},
                  {"exp", now + 600},
                  {"nbf", now - 10},
                  {"scope", "mailbox:read mailbox:provision"},
                  {"pecd_domains", json::array({"a.example"})}};
        for (auto& [k, v] : extra.items()) c[k] = v;
        return c;
    }
    std::string token(const json& extra = json::object(), const std::string& kid = "rsa1") {
        return sign(kid == "ec1" ? ec_ : rsa_, {{"alg", kid == "ec1" ? "ES256" : "RS256"}, {"kid", kid}},
                    claims(extra));
    }

    struct Http {
        int status = 0;
        std::string body;
        std::string content_type;
    };
    // curl with the client certificate `client` ("ca" = trusted, "foreign", "" = none),
    // connecting from the source address `ip`.
    Http curl(const std::string& method, const std::string& path, const std::string& tok,
              const std::string& body = "", const std::string& client = "ca",
              const std::string& ip = "127.0.0.1") {
        auto d = dir_.string();
        std::string cmd = "curl -sS --max-time 20 -o " + d +
                          "/body.out -w '%{http_code} %{content_type}' --cacert " + d +
                          "/tls/ca.pem --resolve localhost:" + std::to_string(port_) +
                          ":127.0.0.1 --interface " + ip + " -X " + method;
        if (!client.empty())
            cmd += " --cert " + d + "/" + client + "-client.pem --key " + d + "/" + client + "-client.key";
        if (!tok.empty()) cmd += " -H 'Authorization: Bearer " + tok + "'";
        if (!body.empty()) {
            fs::write_file_durable(dir_ / "body.in", body, 0600);
            cmd += " -H 'Content-Type: application/json' --data-binary @" + d + "/body.in";
        }
        cmd += " 'https://localhost:" + std::to_string(port_) + path + "'";
        auto r = run(cmd);
        Http h;
        if (r.out.size() >= 3) h.status = std::atoi(r.out.substr(0, 3).c_str());
        if (r.out.size() > 4) h.content_type = r.out.substr(4);
        std::ifstream f(dir_ / "body.out", std::ios::binary);
        h.body.assign(std::istreambuf_iterator<char>(f), {});
        std::filesystem::remove(dir_ / "body.out");
        return h;
    }
    std::vector<log::Event> audit_records() {
        std::vector<log::Event> out;
        for (auto& r : log_->records(1, log_->head_seq())) out.push_back(log::parse_record(r.record).event);
        return out;
    }
    void deliver(const std::string& address, const std::string& key, const std::string& text) {
        auto f = dir_ / ("msg-" + key);
        fs::write_file_durable(f, text, 0600);
        ASSERT_EQ(store_->deliver(address, key, f, text.size(), "sender@b.example"),
                  store::DeliveryOutcome::stored);
    }

    std::filesystem::path dir_;
    ManualClock clock_{kStart};
    EVP_PKEY *rsa_ = nullptr, *ec_ = nullptr, *other_ = nullptr;
    std::unique_ptr<test::ApiStack> stack_;
    store::Database* db_ = nullptr;
    store::MailStore* store_ = nullptr;
    log::LegalLog* log_ = nullptr;
    store::MailboxLifecycle* lifecycle_ = nullptr;
    std::unique_ptr<AuditTrail> audit_;
    boost::asio::io_context io_;
    std::unique_ptr<ApiServer> server_;
    std::vector<std::thread> threads_;
    unsigned short port_ = 0;
};

TEST_F(ApiServerTest, HandshakeNeedsAClientCertificateFromTheConfiguredCa) {
    EXPECT_EQ(curl("GET", "/openapi.yaml", "", "", "").status, 0);
    EXPECT_EQ(curl("GET", "/openapi.yaml", "", "", "foreign").status, 0);
    auto ok = curl("GET", "/openapi.yaml", "", "", "ca");
    EXPECT_EQ(ok.status, 200);
    EXPECT_NE(ok.body.find("openapi: 3"), std::string::npos);
}

TEST_F(ApiServerTest, AddressOutsideTheAllowListIsRefused) {
    EXPECT_EQ(curl("GET", "/openapi.yaml", "", "", "ca", "127.0.0.2").status, 0);
    EXPECT_EQ(curl("GET", "/openapi.yaml", "", "", "ca", "127.0.0.1").status, 200);
    // The refusal is recorded without a response to wait for: poll (bounded).
    bool audited = false;
    for (int i = 0; i < 100 && !audited; ++i) {
        for (auto& e : audit_records())
            audited =
                audited || (e.peer_host == "127.0.0.2" && e.outcome.find("allow-list") != std::string::npos);
        if (!audited) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_TRUE(audited);
}

TEST_F(ApiServerTest, BadTokensAre401) {
    store_->add_mailbox({"box@a.example", 1 << 20, store::MailboxKind::receive_only, true});
    const std::string path = "/v1/mailboxes/box@a.example";
    auto now = std::chrono::duration_cast<std::chrono::seconds>(clock_.now().time_since_epoch()).count();
    {
        auto first = curl("GET", path, token());
        EXPECT_EQ(first.status, 200) << first.body;
    }
    EXPECT_EQ(curl("GET", path, token({}, "ec1")).status, 200);
    EXPECT_EQ(curl("GET", path, "").status, 401);
    EXPECT_EQ(curl("GET", path, token({{"exp", now - 100}})).status, 401);
    EXPECT_EQ(curl("GET", path, token({{"nbf", now + 3600}})).status, 401);
    // Times past the clock's range (2262) are refused, not wrapped into the past.
    EXPECT_EQ(curl("GET", path, token({{"nbf", 20000000000}})).status, 401);
    EXPECT_EQ(curl("GET", path, token({{"exp", 20000000000}})).status, 401);
    EXPECT_EQ(curl("GET", path, token({{"exp", 9000000000}})).status, 200);
    EXPECT_EQ(curl("GET", path, token({{"iss", "https://evil.test"}})).status, 401);
    EXPECT_EQ(curl("GET", path, token({{"aud", "other-api"}})).status, 401);
    EXPECT_EQ(curl("GET", path, sign(other_, {{"alg", "RS256"}, {"kid", "rsa1"}}, claims())).status, 401);
    EXPECT_EQ(curl("GET", path, sign(other_, {{"alg", "RS256"}, {"kid", "nope"}}, claims())).status, 401);
    auto none =
        base64url_encode(R"({"alg":"none","kid":"rsa1"})") + "." + base64url_encode(claims().dump()) + ".";
    auto r = curl("GET", path, none);
    EXPECT_EQ(r.status, 401);
    EXPECT_EQ(r.content_type, "application/problem+json");
    auto hs = base64url_encode(R"({"alg":"HS256","kid":"rsa1"})") + "." + base64url_encode(claims().dump()) +
              ".c2ln";
    EXPECT_EQ(curl("GET", path, hs).status, 401);
}

TEST_F(ApiServerTest, CompanyACannotReadCompanyB) {
    store_->add_mailbox({"box@b.example", 1 << 20, store::MailboxKind::receive_only, true});
    auto r = curl("GET", "/v1/mailboxes/box@b.example/messages", token());
    EXPECT_EQ(r.status, 404);
    bool audited = false;
    for (auto& e : audit_records())
        audited =
            audited ||
            (e.actor == "portal-a" && !e.recipients.empty() && e.recipients[0].address == "box@b.example" &&
             e.outcome.rfind("refused", 0) == 0 && e.tls.peer.find("ca-portal") != std::string::npos);
    EXPECT_TRUE(audited);
}

TEST_F(ApiServerTest, LifecycleWithReadOnlyPeriodAndNoReactivation) {
    auto t = token();
    auto r = curl("POST", "/v1/mailboxes", t, R"({"address":"Office@a.example","kind":"receive-only"})");
    ASSERT_EQ(r.status, 201) << r.body;
    EXPECT_EQ(json::parse(r.body)["state"], "active");
    EXPECT_EQ(curl("POST", "/v1/mailboxes", t, R"({"address":"office@a.example"})").status, 409);
    r = curl("PATCH", "/v1/mailboxes/office@a.example", t, R"({"quota_bytes":5000000})");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(json::parse(r.body)["quota_bytes"], 5000000);
    deliver("office@a.example", "k1", "From: a@b.example\r\nSubject: before\r\n\r\nbody\r\n");
    r = curl("POST", "/v1/mailboxes/office@a.example/deactivate", t);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(json::parse(r.body)["state"], "deactivated");
    EXPECT_EQ(store_->may_receive("office@a.example"), store::Acceptance::not_active);
    EXPECT_EQ(curl("POST", "/v1/mailboxes/office@a.example/activate", t).status, 409);
    clock_.advance(std::chrono::hours(24 * 179));
    t = token();
    r = curl("GET", "/v1/mailboxes/office@a.example/messages", t);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(json::parse(r.body)["total"], 1);
    clock_.advance(std::chrono::hours(24 * 2));
    t = token();
    EXPECT_EQ(curl("GET", "/v1/mailboxes/office@a.example/messages", t).status, 410);
    server_->sweep_closures();
    EXPECT_EQ(store_->mailbox("office@a.example")->state, store::MailboxState::closed);
    r = curl("POST", "/v1/mailboxes/office@a.example/activate", t);
    EXPECT_EQ(r.status, 409);
    EXPECT_EQ(r.content_type, "application/problem+json");
    EXPECT_EQ(curl("POST", "/v1/mailboxes", t, R"({"address":"office@a.example"})").status, 409);
    int changes = 0;
    for (auto& e : audit_records())
        if (e.details["action"].rfind("mailbox.", 0) == 0) ++changes;
    EXPECT_GE(changes, 8);
}

TEST_F(ApiServerTest, SearchBoundsBeyondTheClockAreOpenEnds) {
    // RFC 3339 allows years 0000 to 9999; the clock holds 1677 to 2262. A bound beyond it
    // once wrapped around (9999 became a day in 1816), so "until 9999" found nothing.
    store_->add_mailbox({"office@a.example", 1 << 20, store::MailboxKind::receive_only, true});
    deliver("office@a.example", "k1", "From: x@b.example\r\nSubject: one\r\n\r\nx\r\n");
    deliver("office@a.example", "k2", "From: x@c.example\r\nSubject: two\r\n\r\nx\r\n");
    auto t = token({{"pecd_domains", json::array()},
                    {"pecd_mailboxes", json::array({"office@a.example"})},
                    {"scope", "mailbox:read"}});
    auto total = [&](const std::string& query) {
        auto r = curl("GET", "/v1/mailboxes/office@a.example/messages?" + query, t);
        EXPECT_EQ(r.status, 200) << query << ": " << r.body;
        return r.status == 200 ? json::parse(r.body)["total"].get<int>() : -1;
    };
    EXPECT_EQ(total("to=9999-12-31T23:59:59Z"), 2);
    EXPECT_EQ(total("from=9999-01-01T00:00:00Z"), 0);
    EXPECT_EQ(total("from=0000-01-01T00:00:00Z"), 2);
    EXPECT_EQ(total("to=0001-01-01T00:00:00%2B01:00"), 0);
    EXPECT_EQ(total("from=2000-01-01T00:00:00Z&to=2262-04-11T23:47:16Z"), 2);
    EXPECT_EQ(total("from=2000-01-01t00:00:00.5%2B01:30"), 2);
    // Digits where RFC 3339 has digits: no sign, no blank, no letters in the offset.
    for (const char* bad :
         {"%2B026-01-01T00:00:00Z", "-026-01-01T00:00:00Z", "%20026-01-01T00:00:00Z",
          "2026-01-01T00:00:00%2Bab:cd", "2026-01-01T00:00:00%2B24:00", "2026-01-01T00:00:00.Z",
          "2026-1-01T00:00:00Z", "2026-01-01T00:00:00", "2026-02-30T00:00:00Z"}) {
        auto r = curl("GET", std::string("/v1/mailboxes/office@a.example/messages?from=") + bad, t);
        EXPECT_EQ(r.status, 400) << bad << ": " << r.body;
    }
}

TEST_F(ApiServerTest, DeliveredMessageIsFoundReadDownloadedAndEachReadAudited) {
    store_->add_mailbox({"office@a.example", 1 << 20, store::MailboxKind::receive_only, true});
    std::string msg =
        "From: Sender <sender@b.example>\r\nTo: office@a.example\r\nSubject: Notifica atto\r\n"
        "Message-ID: <m1@b.example>\r\nX-Trasporto: posta-certificata\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
        "--XX\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"atto.pdf\"\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--XX--\r\n";
    deliver("office@a.example", "k1", msg);
    deliver("office@a.example", "k2", "From: x@c.example\r\nSubject: other\r\n\r\nx\r\n");
    auto t = token({{"pecd_domains", json::array()},
                    {"pecd_mailboxes", json::array({"office@a.example"})},
                    {"scope", "mailbox:read"}});
    auto before = log_->head_seq();
    auto r =
        curl("GET", "/v1/mailboxes/office@a.example/messages?subject=NOTIFICA&type=posta-certificata", t);
    ASSERT_EQ(r.status, 200) << r.body;
    auto page = json::parse(r.body);
    ASSERT_EQ(page["total"], 1);
    auto id = page["items"][0]["id"].get<std::int64_t>();
    std::string base = "/v1/mailboxes/office@a.example/messages/" + std::to_string(id);
    r = curl("GET", base, t);
    ASSERT_EQ(r.status, 200);
    auto meta = json::parse(r.body);
    EXPECT_EQ(meta["subject"], "Notifica atto");
    EXPECT_EQ(meta["pec"]["type"], "posta-certificata");
    EXPECT_EQ(meta["pec"]["status"], "delivered");
    r = curl("GET", base + "/raw", t);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, msg);
    r = curl("GET", base + "/attachments/0", t);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "%PDF-1.4\n");
    EXPECT_EQ(curl("GET", base + "/verification", t).status, 200);
    EXPECT_EQ(curl("GET", "/v1/mailboxes/office@a.example/messages?sender=c.example", t).status, 200);
    // A read-only token cannot provision.
    EXPECT_EQ(curl("POST", "/v1/mailboxes/office@a.example/deactivate", t).status, 403);
    EXPECT_EQ(log_->head_seq() - before, 7);
    EXPECT_EQ(store_->mailbox("office@a.example")->message_count, 2);
    int reads = 0;
    for (auto& e : audit_records())
        if (e.details["action"].rfind("message.", 0) == 0 && e.outcome == "ok") ++reads;
    EXPECT_EQ(reads, 6);
}

TEST_F(ApiServerTest, BrokenTextInStoredMailIsListedAsUtf8) {
    // A file name that says it is UTF-8 and is not (RFC 2231, "caff%E8"): the listing
    // still answers, with U+FFFD where the bytes were broken.
    store_->add_mailbox({"box@a.example", 1 << 20, store::MailboxKind::receive_only, true});
    deliver(
        "box@a.example", "k1",
        "From: x@c.example\r\nSubject: caff\xe8\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nx\r\n"
        "--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; "
        "filename*=utf-8''caff%E8.pdf\r\n"
        "\r\n%PDF\r\n--b--\r\n");
    auto t = token();
    auto r = curl("GET", "/v1/mailboxes/box@a.example/messages", t);
    ASSERT_EQ(r.status, 200) << r.body;
    auto id = json::parse(r.body)["items"][0]["id"].get<std::int64_t>();
    std::string base = "/v1/mailboxes/box@a.example/messages/" + std::to_string(id);
    r = curl("GET", base + "/attachments", t);
    ASSERT_EQ(r.status, 200) << r.body;
    auto list = json::parse(r.body);
    ASSERT_FALSE(list.dump().empty());
    EXPECT_NE(r.body.find("caff\xef\xbf\xbd.pdf"), std::string::npos) << r.body;
    EXPECT_EQ(curl("GET", base, t).status, 200);
}

TEST_F(ApiServerTest, BadBodiesGetProblemsAndTheServerKeepsServing) {
    auto t = token();
    auto r = curl("POST", "/v1/mailboxes", t, "{\"address\": ");
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(r.content_type, "application/problem+json");
    EXPECT_NE(json::parse(r.body)["detail"].get<std::string>().find("malformed JSON"), std::string::npos);
    r = curl("POST", "/v1/mailboxes", t, R"({"address":"x@a.example","colour":"red"})");
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(r.body.find("colour"), std::string::npos);
    r = curl("POST", "/v1/mailboxes", t, R"({"address":"x@a.example","quota_bytes":"big"})");
    EXPECT_EQ(r.status, 400);
    // Well-formed JSON with a number no double holds: the client's mistake (it was a 500).
    r = curl("POST", "/v1/mailboxes", t, R"({"address":"x@a.example","quota_bytes":1e999})");
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_NE(r.body.find("out of range"), std::string::npos) << r.body;
    r = curl("POST", "/v1/mailboxes", t, "{\"address\":\"" + std::string(10000, 'x') + "@a.example\"}");
    EXPECT_EQ(r.status, 413);
    EXPECT_EQ(r.content_type, "application/problem+json");
    EXPECT_EQ(curl("POST", "/v1/mailboxes", t, R"({"address":"x@a.example"})").status, 201);
    EXPECT_EQ(curl("GET", "/v1/mailboxes/x@a.example/messages?bogus=1", t).status, 400);
}

}  // namespace
}  // namespace pecd::api
