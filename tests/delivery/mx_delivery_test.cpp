// mx_delivery_test.cpp - the real delivery loop to remote domains: queue runner -> MX lookup
// (c-ares against unbound) -> SMTP client -> smtp-sink instances playing the MX hosts
//
// unbound serves the zone "test." on 127.0.0.1; MX hosts resolve to 127.0.0.x where
// smtp-sink instances listen on one port (the MX port is configurable, so port 25 is not
// needed). Checked: MX preference, implicit MX, fallback to the next MX, NXDOMAIN and null
// MX bounces, temporary failures retried, permanent failures bounced with an RFC 3464 DSN
// (parsed by Python's email package), one delay notice for ordinary mail, the 24-hour
// lifetime of PEC traffic, and the per-destination connection limit. The clock is a
// ManualClock, so retries and lifetimes pass without waiting.
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "core/error.hpp"
#include "delivery/mail_system.hpp"
#include "peers.hpp"
#include "temp_dir.hpp"
#include "unbound_server.hpp"

namespace pecd {
namespace {

using namespace std::chrono_literals;

constexpr const char* kZones = R"(
  local-zone: "test." static
  local-data: "pref.test. IN MX 10 mx1.pref.test."
  local-data: "pref.test. IN MX 20 mx2.pref.test."
  local-data: "mx1.pref.test. IN A 127.0.0.2"
  local-data: "mx2.pref.test. IN A 127.0.0.3"
  local-data: "fallback.test. IN MX 10 down.fallback.test."
  local-data: "fallback.test. IN MX 20 up.fallback.test."
  local-data: "down.fallback.test. IN A 127.0.0.4"
  local-data: "up.fallback.test. IN A 127.0.0.3"
  local-data: "implicit.test. IN A 127.0.0.2"
  local-data: "nullmx.test. IN MX 0 ."
  local-data: "retry.test. IN MX 10 mx.retry.test."
  local-data: "mx.retry.test. IN A 127.0.0.5"
  local-data: "reject.test. IN MX 10 mx.reject.test."
  local-data: "mx.reject.test. IN A 127.0.0.6"
  local-data: "delay.test. IN MX 10 mx.delay.test."
  local-data: "mx.delay.test. IN A 127.0.0.8"
  local-data: "limit.test. IN MX 10 mx.limit.test."
  local-data: "mx.limit.test. IN A 127.0.0.9"
)";

class MxDeliveryTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dns_ = new test::UnboundServer(kZones);
        port_ = test::free_port();
    }
    static void TearDownTestSuite() {
        delete dns_;
        dns_ = nullptr;
    }

    MxDeliveryTest() : clock(SystemClock::instance().now()) {
        std::filesystem::permissions(dir.path(), std::filesystem::perms(0755));  // smtp-sink runs as postfix
    }

    void SetUp() override {
        ASSERT_TRUE(dns_->ready("mx1.pref.test")) << "unbound did not start\n" << dns_->log();
    }

    void open(std::size_t per_destination = 20, unsigned workers = 8) {
        delivery::MailSystemOptions o;
        o.data_dir = dir.path() / "data";
        o.hostname = "mx.pecd.test";
        o.spool.min_free_bytes = 1 << 20;
        o.dns = dns_->settings();
        o.mx_port = port_;
        o.remote.connect_timeout = 3s;
        o.remote.reply_timeout = 10s;
        o.remote.connections_per_destination = per_destination;
        o.runner.workers = workers;
        o.runner.poll = 100ms;
        o.runner.retry.first = 60s;
        o.runner.retry.max = 600s;
        o.runner.retry.delay_warning = 4h;
        ms = std::make_unique<delivery::MailSystem>(o, clock);
        if (!ms->store().domain("local.test")) {
            ms->store().add_domain("local.test");
            ms->store().add_mailbox({"sender@local.test"});
        }
    }

    test::Process sink(const std::string& address, const std::string& name,
                       const std::vector<std::string>& flags = {}) {
        return test::start_smtp_sink(port_, dir.path() / name, flags, address);
    }

    std::string submit(const std::vector<std::string>& rcpts, const std::string& subject) {
        Envelope e;
        e.mail_from = "sender@local.test";
        for (auto& r : rcpts) e.recipients.push_back({r, "", ""});
        e.received_at = clock.now();
        auto m = ms->sink().begin(e);
        m->write("From: sender@local.test\r\nSubject: " + subject + "\r\nMessage-ID: <" + subject +
                 "@local.test>\r\n\r\nbody of " + subject + "\r\n");
        std::promise<queue::CommitResult> p;
        auto f = p.get_future();
        m->commit([&](queue::CommitResult r) { p.set_value(r); });
        auto r = f.get();
        EXPECT_TRUE(r.ok) << r.error;
        return r.queue_id;
    }

    void run_queue() {
        for (int i = 0; i < 10 && ms->runner().run_once() > 0; ++i) {
        }
    }
    // Advances the clock to the next due attempt (if any) and runs the queue once more.
    void retry_now() {
        if (auto due = ms->spool().next_due(); due && *due > clock.now()) clock.set(*due + 1s);
        run_queue();
    }

    std::vector<std::string> notices() {
        std::vector<std::string> out;
        for (auto& m : ms->store().messages("sender@local.test"))
            out.push_back(ms->store().read_message("sender@local.test", m.id));
        return out;
    }

    std::size_t dumped(const std::string& name) { return test::dumped_messages(dir.path() / name).size(); }

    std::string parse_dsn(const std::string& bytes) {
        auto file = dir.path() / "dsn.eml";
        fs::write_file_durable(file, bytes);
        auto script = dir.path() / "parse.py";
        fs::write_file_durable(
            script,
            "import email, sys\n"
            "from email import policy\n"
            "m = email.message_from_binary_file(open(sys.argv[1], 'rb'), policy=policy.compat32)\n"
            "print(m.get_content_type() + '|' + str(m.get_param('report-type')) + '|')\n"
            "print('subject=' + str(m['Subject']))\n"
            "for part in m.walk():\n"
            "    if part.get_content_type() == 'message/delivery-status':\n"
            "        for block in part.get_payload():\n"
            "            for k, v in block.items():\n"
            "                print(k.lower() + '=' + v.strip())\n"
            "    if part.get_content_type() in ('message/rfc822', 'text/rfc822-headers'):\n"
            "        print('enclosed=' + part.get_content_type())\n");
        int status = -1;
        auto out = test::run("python3 " + script.string() + " " + file.string(), &status);
        EXPECT_EQ(status, 0) << out;
        return out;
    }

    static test::UnboundServer* dns_;
    static unsigned short port_;
    test::TempDir dir{"pecd-mx"};
    ManualClock clock;
    std::unique_ptr<delivery::MailSystem> ms;
};
test::UnboundServer* MxDeliveryTest::dns_ = nullptr;
unsigned short MxDeliveryTest::port_ = 0;

TEST_F(MxDeliveryTest, LowestPreferenceFirstAndImplicitMx) {
    auto mx1 = sink("127.0.0.2", "mx1");
    auto mx2 = sink("127.0.0.3", "mx2");
    open();
    auto a = submit({"a@pref.test"}, "pref");
    auto b = submit({"b@implicit.test"}, "implicit");
    run_queue();
    EXPECT_FALSE(ms->spool().load(a));
    EXPECT_FALSE(ms->spool().load(b));
    EXPECT_EQ(dumped("mx1"), 2u) << "MX 10 (and the implicit MX at 127.0.0.2) must get the mail";
    EXPECT_EQ(dumped("mx2"), 0u) << "MX 20 used although MX 10 was up";
    EXPECT_TRUE(notices().empty());
}

TEST_F(MxDeliveryTest, NextMxWhenTheFirstIsDown) {
    auto mx2 = sink("127.0.0.3", "mx2");  // nothing on 127.0.0.2 and 127.0.0.4
    open();
    auto a = submit({"a@pref.test"}, "pref-down");
    auto b = submit({"b@fallback.test"}, "fallback");
    run_queue();
    EXPECT_FALSE(ms->spool().load(a)) << "not delivered through MX 20";
    EXPECT_FALSE(ms->spool().load(b)) << "not delivered through MX 20";
    EXPECT_EQ(dumped("mx2"), 2u);
}

TEST_F(MxDeliveryTest, AllMxDownDefersWithBackoff) {
    open();
    auto id = submit({"a@pref.test"}, "nobody-home");
    run_queue();
    auto q = ms->spool().load(id);
    ASSERT_TRUE(q);
    EXPECT_EQ(q->recipients[0].state, queue::RecipientState::pending);
    EXPECT_NE(q->recipients[0].last_error.find("connect"), std::string::npos) << q->recipients[0].last_error;
    EXPECT_GT(q->recipients[0].next_attempt, clock.now() + 40s);
    EXPECT_TRUE(notices().empty());
}

TEST_F(MxDeliveryTest, UnknownDomainAndNullMxBounce) {
    open();
    submit({"x@nosuch.test", "y@nullmx.test"}, "nowhere");
    run_queue();
    auto n = notices();
    ASSERT_EQ(n.size(), 1u);
    auto parsed = parse_dsn(n[0]);
    EXPECT_NE(parsed.find("multipart/report|delivery-status|"), std::string::npos) << parsed;
    EXPECT_NE(parsed.find("final-recipient=rfc822; x@nosuch.test"), std::string::npos) << parsed;
    EXPECT_NE(parsed.find("final-recipient=rfc822; y@nullmx.test"), std::string::npos) << parsed;
    EXPECT_NE(parsed.find("status=5.1.2"), std::string::npos) << parsed;
    EXPECT_NE(parsed.find("null MX"), std::string::npos) << parsed;
    EXPECT_TRUE(ms->spool().list().empty());
}

TEST_F(MxDeliveryTest, TemporaryFailureRetriedThenDelivered) {
    // Its own dump directory: smtp-sink creates a transaction's file at MAIL FROM and
    // removes it when the transaction ends, so one killed before it read the RSET or QUIT
    // after the 450 leaves a file behind.
    auto busy = std::make_unique<test::Process>(sink("127.0.0.5", "retry-busy", {"-r", "RCPT"}));
    open();
    auto id = submit({"r@retry.test"}, "retry");
    run_queue();
    auto q = ms->spool().load(id);
    ASSERT_TRUE(q);
    EXPECT_EQ(q->recipients[0].attempts, 1);
    EXPECT_NE(q->recipients[0].last_error.find("450"), std::string::npos) << q->recipients[0].last_error;
    busy.reset();
    auto ok = sink("127.0.0.5", "retry");
    run_queue();
    EXPECT_TRUE(ms->spool().load(id)) << "retried before its time";
    retry_now();
    EXPECT_FALSE(ms->spool().load(id)) << "not delivered on the retry";
    EXPECT_EQ(dumped("retry"), 1u);
    EXPECT_TRUE(notices().empty());
}

TEST_F(MxDeliveryTest, PermanentFailureBouncesWithAnRfc3464Dsn) {
    auto mx = sink("127.0.0.6", "reject", {"-f", "RCPT"});
    open();
    submit({"no@reject.test"}, "rejected");
    run_queue();
    auto n = notices();
    ASSERT_EQ(n.size(), 1u);
    auto parsed = parse_dsn(n[0]);
    EXPECT_NE(parsed.find("multipart/report|delivery-status|"), std::string::npos) << parsed;
    EXPECT_NE(parsed.find("reporting-mta=dns; mx.pecd.test"), std::string::npos) << parsed;
    EXPECT_NE(parsed.find("final-recipient=rfc822; no@reject.test"), std::string::npos) << parsed;
    EXPECT_NE(parsed.find("action=failed"), std::string::npos) << parsed;
    EXPECT_NE(parsed.find("status=5."), std::string::npos) << parsed;
    EXPECT_NE(parsed.find("remote-mta=dns; mx.reject.test"), std::string::npos) << parsed;
    EXPECT_NE(parsed.find("diagnostic-code=smtp; 5"), std::string::npos) << parsed;
    EXPECT_NE(parsed.find("enclosed=message/rfc822"), std::string::npos) << parsed;
    EXPECT_TRUE(ms->spool().list().empty());
}

TEST_F(MxDeliveryTest, OneDelayNoticeForOrdinaryMailThenExpiryAfterFiveDays) {
    open();
    auto id = submit({"late@delay.test"}, "slow");
    run_queue();
    clock.advance(3h);
    retry_now();
    EXPECT_TRUE(notices().empty()) << "delay notice before the configured 4 hours";
    clock.advance(2h);
    retry_now();
    auto n = notices();
    ASSERT_EQ(n.size(), 1u) << "one delay notice after 4 hours";
    auto parsed = parse_dsn(n[0]);
    EXPECT_NE(parsed.find("multipart/report|delivery-status|"), std::string::npos) << parsed;
    EXPECT_NE(parsed.find("action=delayed"), std::string::npos) << parsed;
    EXPECT_NE(parsed.find("status=4."), std::string::npos) << parsed;
    EXPECT_NE(parsed.find("will-retry-until="), std::string::npos) << parsed;
    EXPECT_NE(parsed.find("subject=Delayed Mail"), std::string::npos) << parsed;
    EXPECT_NE(parsed.find("enclosed=text/rfc822-headers"), std::string::npos) << parsed;
    ASSERT_TRUE(ms->spool().load(id)) << "a delayed message stays queued";
    for (int i = 0; i < 5; ++i) {
        clock.advance(2h);
        retry_now();
    }
    EXPECT_EQ(notices().size(), 1u) << "the delay notice must go out once";
    clock.advance(std::chrono::hours(24 * 5));
    retry_now();
    n = notices();
    ASSERT_EQ(n.size(), 2u) << "expiry must bounce";
    parsed = parse_dsn(n[0].find("Delayed Mail") == std::string::npos ? n[0] : n[1]);
    EXPECT_NE(parsed.find("action=failed"), std::string::npos) << parsed;
    EXPECT_NE(parsed.find("status=4.4.7"), std::string::npos) << parsed;
    EXPECT_FALSE(ms->spool().load(id));
}

TEST_F(MxDeliveryTest, PecTrafficLivesTwentyFourHoursWithoutDelayNotice) {
    open();
    auto id = submit({"pec@delay.test"}, "pec-class");
    ms->spool().set_message_class(id, queue::MessageClass::pec);
    run_queue();
    clock.advance(6h);
    retry_now();
    EXPECT_TRUE(notices().empty()) << "no delay notice for PEC traffic";
    EXPECT_TRUE(ms->spool().load(id));
    clock.advance(19h);
    retry_now();
    auto n = notices();
    ASSERT_EQ(n.size(), 1u) << "PEC traffic must expire after 24 hours";
    auto parsed = parse_dsn(n[0]);
    EXPECT_NE(parsed.find("status=4.4.7"), std::string::npos) << parsed;
    EXPECT_FALSE(ms->spool().load(id));
}

TEST_F(MxDeliveryTest, ConnectionLimitPerDestination) {
    // smtp-sink waits 1 s before answering DATA, so parallel deliveries overlap.
    auto mx = sink("127.0.0.9", "limit", {"-w", "1"});
    for (std::size_t limit : {1u, 4u}) {
        open(limit, 8);
        std::vector<std::string> ids;
        for (int i = 0; i < 4; ++i)
            ids.push_back(
                submit({"l@limit.test"}, "limit-" + std::to_string(limit) + "-" + std::to_string(i)));
        ms->start();
        auto deadline = std::chrono::steady_clock::now() + 30s;
        while (!ms->spool().list().empty() && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(50ms);
        ms->stop();
        EXPECT_TRUE(ms->spool().list().empty()) << "not all delivered with limit " << limit;
        if (limit == 1)
            EXPECT_EQ(ms->remote().peak_connections("limit.test"), 1u);
        else
            EXPECT_GT(ms->remote().peak_connections("limit.test"), 1u) << "the limit check cannot fail";
        ms.reset();
    }
    EXPECT_EQ(dumped("limit"), 8u);
}

}  // namespace
}  // namespace pecd
