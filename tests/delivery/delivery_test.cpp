// delivery_test.cpp - the queue runner delivering through real transports and real peers
//
// Local mailboxes, Dovecot over LMTP, smtp-sink as SMTP next hop (down, then back up;
// rejecting with 5xx), Postfix with STARTTLS as next hop, and RFC 3464 DSNs checked with
// Python's email package. Peers are started here on 127.0.0.1; the clock is a ManualClock
// so retries are driven without waiting.
#include <gtest/gtest.h>

#include <csignal>
#include <functional>
#include <future>
#include <thread>

#include "core/error.hpp"
#include "delivery/mail_system.hpp"
#include "peers.hpp"
#include "temp_dir.hpp"

namespace pecd {
namespace {

using namespace std::chrono_literals;

class DeliveryTest : public ::testing::Test {
protected:
    DeliveryTest() : clock(SystemClock::instance().now()) {
        // The peers drop privileges (smtp-sink to postfix, Dovecot to nobody).
        std::filesystem::permissions(dir.path(), std::filesystem::perms(0755));
    }

    void open(std::optional<store::Route> default_route = std::nullopt,
              std::shared_ptr<tls::ClientTls> tls = nullptr, tls::PolicyMap policies = {}) {
        delivery::MailSystemOptions o;
        o.data_dir = dir.path() / "data";
        o.hostname = "mx.pecd.test";
        o.spool.min_free_bytes = 1 << 20;
        o.default_route = default_route;
        o.remote.connect_timeout = 5s;
        o.remote.reply_timeout = 10s;
        o.remote.tls = std::move(tls);
        o.remote.policies = std::move(policies);
        if (tweak) tweak(o);
        ms = std::make_unique<delivery::MailSystem>(o, clock);
        if (!ms->store().domain("local.test")) {
            ms->store().add_domain("local.test");
            ms->store().add_mailbox({"sender@local.test"});
            ms->store().add_mailbox({"rcpt@local.test"});
        }
    }

    std::string submit(const std::string& from, const std::vector<std::string>& rcpts,
                       const std::string& body, const std::string& ret = "") {
        Envelope e;
        e.mail_from = from;
        e.dsn_ret = ret;
        for (auto& r : rcpts) e.recipients.push_back({r, "", ""});
        e.received_at = clock.now();
        auto m = ms->sink().begin(e);
        m->write(body);
        std::promise<queue::CommitResult> p;
        auto f = p.get_future();
        m->commit([&](queue::CommitResult r) { p.set_value(r); });
        auto r = f.get();
        EXPECT_TRUE(r.ok) << r.error;
        return r.queue_id;
    }

    // Runs the queue until nothing is due now (bounded).
    void run_queue() {
        for (int i = 0; i < 10 && ms->runner().run_once() > 0; ++i) {
        }
    }

    std::vector<std::string> mailbox(const std::string& address) {
        std::vector<std::string> out;
        for (auto& m : ms->store().messages(address)) out.push_back(ms->store().read_message(address, m.id));
        return out;
    }

    // Parses a DSN with Python's email package; returns "content-type|report-type|" and
    // the per-recipient fields it found, one "name=value" per line.
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

    std::function<void(delivery::MailSystemOptions&)> tweak;  // applied by open()
    test::TempDir dir{"pecd-delivery"};
    ManualClock clock;
    std::unique_ptr<delivery::MailSystem> ms;
};

TEST_F(DeliveryTest, LocalDeliveryStoresBytesAndBouncesUnknownMailboxWithADsn) {
    open();
    std::string body =
        "From: sender@local.test\r\nSubject: hello\r\nMessage-ID: <m1@local.test>\r\n\r\nHi.\r\n";
    auto id = submit("sender@local.test", {"rcpt@local.test", "nobody@local.test"}, body);
    run_queue();
    EXPECT_EQ(mailbox("rcpt@local.test"), std::vector<std::string>{body});
    EXPECT_FALSE(ms->spool().load(id)) << "message should have left the queue";
    auto dsns = mailbox("sender@local.test");
    ASSERT_EQ(dsns.size(), 1u);
    auto parsed = parse_dsn(dsns[0]);
    EXPECT_NE(parsed.find("multipart/report|delivery-status|"), std::string::npos) << parsed;
    EXPECT_NE(parsed.find("reporting-mta=dns; mx.pecd.test"), std::string::npos) << parsed;
    EXPECT_NE(parsed.find("final-recipient=rfc822; nobody@local.test"), std::string::npos) << parsed;
    EXPECT_NE(parsed.find("action=failed"), std::string::npos) << parsed;
    EXPECT_NE(parsed.find("status=5.1.1"), std::string::npos) << parsed;
    EXPECT_NE(parsed.find("diagnostic-code=smtp; 550 5.1.1"), std::string::npos) << parsed;
    EXPECT_NE(parsed.find("enclosed=message/rfc822"), std::string::npos) << parsed;
    EXPECT_EQ(parsed.find("rcpt@local.test"), std::string::npos)
        << "delivered recipient reported: " << parsed;
    EXPECT_NE(dsns[0].find("Message-ID: <m1@local.test>"), std::string::npos);
}

TEST_F(DeliveryTest, NoDsnForTheNullSenderNorWhenNotifyNever) {
    open();
    submit("", {"nobody@local.test"}, "Subject: bounce of a bounce\r\n\r\nx\r\n");
    Envelope e;
    e.mail_from = "sender@local.test";
    e.recipients.push_back({"nobody@local.test", "NEVER", ""});
    ms->spool().enqueue(e, "Subject: quiet\r\n\r\nx\r\n", false);
    run_queue();
    EXPECT_TRUE(mailbox("sender@local.test").empty());
    EXPECT_TRUE(ms->spool().list().empty());
}

TEST_F(DeliveryTest, HeadersOnlyDsnWhenRetIsHdrs) {
    open();
    submit("sender@local.test", {"nobody@local.test"}, "Subject: secret\r\n\r\nconfidential body\r\n",
           "HDRS");
    run_queue();
    auto dsns = mailbox("sender@local.test");
    ASSERT_EQ(dsns.size(), 1u);
    EXPECT_NE(parse_dsn(dsns[0]).find("enclosed=text/rfc822-headers"), std::string::npos);
    EXPECT_EQ(dsns[0].find("confidential body"), std::string::npos);
}

TEST_F(DeliveryTest, FullMailboxDefersWithBackoffThenDelivers) {
    open();
    ms->store().set_quota("rcpt@local.test", 10);
    EXPECT_EQ(ms->store().may_receive("rcpt@local.test", 100), store::Acceptance::over_quota);
    auto id = submit("sender@local.test", {"rcpt@local.test"}, std::string(100, 'x') + "\r\n");
    run_queue();
    auto q = ms->spool().load(id);
    ASSERT_TRUE(q);
    EXPECT_EQ(q->recipients[0].attempts, 1);
    EXPECT_NE(q->recipients[0].last_error.find("452 4.2.2"), std::string::npos)
        << q->recipients[0].last_error;
    EXPECT_GT(q->recipients[0].next_attempt, clock.now() + 40s);  // first retry ≈ 60 s ± 20 %
    EXPECT_TRUE(mailbox("rcpt@local.test").empty());
    ms->store().set_quota("rcpt@local.test", 1 << 20);
    run_queue();
    EXPECT_TRUE(mailbox("rcpt@local.test").empty()) << "retried before its time";
    clock.advance(2min);
    run_queue();
    EXPECT_EQ(mailbox("rcpt@local.test").size(), 1u);
}

TEST_F(DeliveryTest, ExpiredMessageFailsWith447AndADsn) {
    open();
    ms->store().set_quota("rcpt@local.test", 1);
    submit("sender@local.test", {"rcpt@local.test"}, "Subject: late\r\n\r\nxx\r\n");
    run_queue();
    clock.advance(std::chrono::hours(24 * 6));
    run_queue();
    auto dsns = mailbox("sender@local.test");
    ASSERT_EQ(dsns.size(), 1u);
    auto parsed = parse_dsn(dsns[0]);
    EXPECT_NE(parsed.find("status=4.4.7"), std::string::npos) << parsed;
    EXPECT_NE(parsed.find("delivery time expired"), std::string::npos) << parsed;
}

TEST_F(DeliveryTest, LmtpToDovecotGivesPerRecipientReplies) {
    test::Dovecot dovecot(dir.path() / "dovecot", {"alice@dove.test", "bob@dove.test"});
    ASSERT_TRUE(dovecot.ok()) << dovecot.log();
    open();
    ms->store().add_domain("dove.test",
                           store::parse_route("lmtp:127.0.0.1:" + std::to_string(dovecot.port())));
    std::string body = "From: sender@local.test\r\nSubject: via lmtp\r\n\r\n.dot line\r\nbody\r\n";
    submit("sender@local.test", {"alice@dove.test", "ghost@dove.test", "bob@dove.test"}, body);
    run_queue();
    auto alice = dovecot.messages("alice@dove.test");
    ASSERT_EQ(alice.size(), 1u) << dovecot.log();
    // Maildir files use LF line ends; the dot line must arrive un-stuffed.
    std::string lf;
    for (char c : alice[0])
        if (c != '\r') lf += c;
    EXPECT_NE(lf.find("Subject: via lmtp\n\n.dot line\nbody\n"), std::string::npos) << alice[0];
    EXPECT_EQ(dovecot.messages("bob@dove.test").size(), 1u);
    auto dsns = mailbox("sender@local.test");
    ASSERT_EQ(dsns.size(), 1u) << "the unknown LMTP user must bounce";
    auto parsed = parse_dsn(dsns[0]);
    EXPECT_NE(parsed.find("final-recipient=rfc822; ghost@dove.test"), std::string::npos) << parsed;
    EXPECT_NE(parsed.find("status=5.1.1"), std::string::npos) << parsed;
    EXPECT_NE(parsed.find("remote-mta=dns; 127.0.0.1"), std::string::npos) << parsed;
    EXPECT_TRUE(ms->spool().list().empty());
}

TEST_F(DeliveryTest, NextHopDownWaitsRetriesAndGetsThroughWhenItReturns) {
    auto port = test::free_port();
    open(store::parse_route("smtp:127.0.0.1:" + std::to_string(port)));
    std::string body = "Subject: patience\r\n\r\n..two dots\r\n";
    auto id = submit("sender@local.test", {"far@remote.test"}, body);
    run_queue();
    auto q = ms->spool().load(id);
    ASSERT_TRUE(q);
    EXPECT_EQ(q->recipients[0].attempts, 1);
    EXPECT_NE(q->recipients[0].last_error.find("connect"), std::string::npos) << q->recipients[0].last_error;
    auto first_wait = q->recipients[0].next_attempt - clock.now();
    clock.advance(first_wait + 1s);
    run_queue();
    q = ms->spool().load(id);
    ASSERT_TRUE(q);
    EXPECT_EQ(q->recipients[0].attempts, 2);
    EXPECT_GT(q->recipients[0].next_attempt - clock.now(), first_wait) << "backoff must grow";

    auto sink = test::start_smtp_sink(port, dir.path() / "dump");
    clock.advance(q->recipients[0].next_attempt - clock.now() + 1s);
    run_queue();
    EXPECT_FALSE(ms->spool().load(id)) << "not delivered after the next hop returned";
    auto dumped = test::dumped_messages(dir.path() / "dump");
    ASSERT_EQ(dumped.size(), 1u);
    EXPECT_NE(dumped[0].find("..two dots"), std::string::npos) << dumped[0];
    EXPECT_TRUE(mailbox("sender@local.test").empty()) << "no DSN for a delivered message";
}

TEST_F(DeliveryTest, PermanentRejectionByTheNextHopProducesADsn) {
    auto port = test::free_port();
    auto sink = test::start_smtp_sink(port, dir.path() / "dump", {"-f", "RCPT"});
    open(store::parse_route("smtp:127.0.0.1:" + std::to_string(port)));
    submit("sender@local.test", {"refused@remote.test"}, "Subject: refused\r\n\r\nx\r\n");
    run_queue();
    auto dsns = mailbox("sender@local.test");
    ASSERT_EQ(dsns.size(), 1u);
    auto parsed = parse_dsn(dsns[0]);
    EXPECT_NE(parsed.find("multipart/report|delivery-status|"), std::string::npos) << parsed;
    EXPECT_NE(parsed.find("final-recipient=rfc822; refused@remote.test"), std::string::npos) << parsed;
    EXPECT_NE(parsed.find("status=5."), std::string::npos) << parsed;
    EXPECT_NE(parsed.find("diagnostic-code=smtp; 5"), std::string::npos) << parsed;
    EXPECT_TRUE(ms->spool().list().empty());
}

TEST_F(DeliveryTest, TemporaryRejectionByTheNextHopIsRetried) {
    auto port = test::free_port();
    auto sink = test::start_smtp_sink(port, dir.path() / "dump", {"-r", "RCPT"});
    open(store::parse_route("smtp:127.0.0.1:" + std::to_string(port)));
    auto id = submit("sender@local.test", {"later@remote.test"}, "Subject: later\r\n\r\nx\r\n");
    run_queue();
    auto q = ms->spool().load(id);
    ASSERT_TRUE(q);
    EXPECT_EQ(q->recipients[0].state, queue::RecipientState::pending);
    EXPECT_NE(q->recipients[0].last_error.find("450"), std::string::npos) << q->recipients[0].last_error;
    EXPECT_TRUE(mailbox("sender@local.test").empty());
}

TEST_F(DeliveryTest, SmtpNextHopWithStartTlsToPostfix) {
    auto sink_port = test::free_port();
    auto sink = test::start_smtp_sink(sink_port, dir.path() / "dump");
    test::PostfixTlsRelay postfix("/tmp/pecd-delivery-postfix", sink_port);
    ASSERT_TRUE(postfix.error().empty()) << postfix.error();
    auto tls = std::make_shared<tls::ClientTls>(tls::ClientTlsSettings{});
    tls::PolicyMap policies;
    policies.set("tls.test", {tls::Policy::encrypt, {}});  // TLS required, self-signed peer
    open(std::nullopt, tls, policies);
    ms->store().add_domain("tls.test",
                           store::parse_route("smtp:127.0.0.1:" + std::to_string(postfix.port())));
    std::string body = "From: sender@local.test\r\nSubject: over tls\r\n\r\nencrypted hop\r\n";
    auto id = submit("sender@local.test", {"someone@tls.test"}, body);
    run_queue();
    EXPECT_FALSE(ms->spool().load(id)) << "not accepted by Postfix\n" << postfix.log();
    auto log = postfix.log();
    EXPECT_NE(log.find("TLS connection established from"), std::string::npos) << log;
    // Postfix relays to the sink on its own schedule: wait for it, bounded.
    std::vector<std::string> dumped;
    for (int i = 0; i < 100 && dumped.empty(); ++i) {
        std::this_thread::sleep_for(100ms);
        dumped = test::dumped_messages(dir.path() / "dump");
    }
    ASSERT_EQ(dumped.size(), 1u) << postfix.log();
    EXPECT_NE(dumped[0].find("encrypted hop"), std::string::npos);
}

TEST_F(DeliveryTest, RequiredTlsNotOfferedDefers) {
    auto port = test::free_port();
    auto sink = test::start_smtp_sink(port, dir.path() / "dump");  // smtp-sink offers no STARTTLS
    auto tls = std::make_shared<tls::ClientTls>(tls::ClientTlsSettings{});
    tls::PolicyMap policies;
    policies.set("secure.test", {tls::Policy::verify, {}});
    open(std::nullopt, tls, policies);
    ms->store().add_domain("secure.test", store::parse_route("smtp:127.0.0.1:" + std::to_string(port)));
    auto id = submit("sender@local.test", {"x@secure.test"}, "Subject: must be encrypted\r\n\r\nx\r\n");
    run_queue();
    auto q = ms->spool().load(id);
    ASSERT_TRUE(q);
    EXPECT_EQ(q->recipients[0].state, queue::RecipientState::pending);
    EXPECT_NE(q->recipients[0].last_error.find("TLS required"), std::string::npos)
        << q->recipients[0].last_error;
    EXPECT_TRUE(test::dumped_messages(dir.path() / "dump").empty())
        << "sent in plain text despite the policy";
}

// Postfix over STARTTLS (policy encrypt) as next hop; the sink behind it collects what it relays.
class CachedSessionTest : public DeliveryTest {
protected:
    void start_postfix(const std::string& extra_main_cf = {}) {
        sink_port = test::free_port();
        sink = test::start_smtp_sink(sink_port, dir.path() / "dump");
        // Its own Postfix directory: the other Postfix tests may run at the same time.
        postfix_dir = "/tmp/pecd-cache-postfix-" + dir.path().filename().string();
        postfix = std::make_unique<test::PostfixTlsRelay>(postfix_dir, sink_port, extra_main_cf);
        ASSERT_TRUE(postfix->error().empty()) << postfix->error();
        tls::PolicyMap policies;
        policies.set("tls.test", {tls::Policy::encrypt, {}});
        open(std::nullopt, std::make_shared<tls::ClientTls>(tls::ClientTlsSettings{}), policies);
        ms->store().add_domain("tls.test",
                               store::parse_route("smtp:127.0.0.1:" + std::to_string(postfix->port())));
    }
    std::string send(const std::string& subject) {
        return submit(
            "sender@local.test", {"someone@tls.test"},
            "From: sender@local.test\r\nSubject: " + subject + "\r\n\r\nbody of " + subject + "\r\n");
    }
    // Waits (bounded) until Postfix has relayed `n` messages to the sink; returns them.
    std::vector<std::string> relayed(std::size_t n) {
        std::vector<std::string> out;
        for (int i = 0; i < 150 && out.size() < n; ++i) {
            std::this_thread::sleep_for(100ms);
            out = test::dumped_messages(dir.path() / "dump");
        }
        std::this_thread::sleep_for(300ms);  // and nothing more arrives
        return test::dumped_messages(dir.path() / "dump");
    }
    // Postfix writes its log through postlogd: wait until `n` connections are in it.
    std::vector<int> connections(std::size_t n) {
        auto pids = postfix->smtpd_connections();
        for (int i = 0; i < 50 && pids.size() < n; ++i) {
            std::this_thread::sleep_for(100ms);
            pids = postfix->smtpd_connections();
        }
        return pids;
    }
    static std::size_t copies(const std::vector<std::string>& messages, const std::string& subject) {
        std::size_t n = 0;
        for (const auto& m : messages) {
            auto at = m.find("Subject: " + subject);
            auto end = at + 9 + subject.size();
            n += at != std::string::npos && end < m.size() && (m[end] == '\r' || m[end] == '\n');
        }
        return n;
    }

    ~CachedSessionTest() override {
        postfix.reset();
        std::error_code ec;
        if (!postfix_dir.empty()) std::filesystem::remove_all(postfix_dir, ec);
    }

    unsigned short sink_port = 0;
    test::Process sink;
    std::filesystem::path postfix_dir;
    std::unique_ptr<test::PostfixTlsRelay> postfix;
};

TEST_F(CachedSessionTest, SeveralMessagesToOneNextHopShareOneTlsSession) {
    start_postfix();
    std::vector<std::string> ids;
    for (int i = 0; i < 5; ++i) {
        ids.push_back(send("cached-" + std::to_string(i)));
        run_queue();  // one message at a time: each finds the session of the one before
    }
    for (auto& id : ids) EXPECT_FALSE(ms->spool().load(id)) << "not accepted by Postfix\n" << postfix->log();
    auto messages = relayed(5);
    ASSERT_EQ(messages.size(), 5u) << postfix->log();
    for (int i = 0; i < 5; ++i) EXPECT_EQ(copies(messages, "cached-" + std::to_string(i)), 1u);
    std::this_thread::sleep_for(500ms);
    auto log = postfix->log();
    EXPECT_EQ(postfix->smtpd_connections().size(), 1u) << log;
    EXPECT_EQ(ms->remote().reused_sessions(), 4u);
    std::size_t handshakes = 0;
    for (auto at = log.find("TLS connection established from"); at != std::string::npos;
         at = log.find("TLS connection established from", at + 1))
        ++handshakes;
    EXPECT_EQ(handshakes, 1u) << log;
}

TEST_F(CachedSessionTest, IdleSessionClosedByThePeerIsReplacedWithoutLossOrDuplicate) {
    // Postfix drops a client silent for 1 s (421); the cache would keep it for 10 s.
    tweak = [](delivery::MailSystemOptions& o) { o.remote.connection_idle = 10s; };
    start_postfix("smtpd_timeout = 1s\n");
    auto first = send("before-timeout");
    run_queue();
    EXPECT_FALSE(ms->spool().load(first));
    ASSERT_EQ(connections(1).size(), 1u) << postfix->log();
    std::this_thread::sleep_for(2500ms);
    auto second = send("after-timeout");
    run_queue();
    EXPECT_FALSE(ms->spool().load(second)) << "not delivered after the peer closed the cached session";
    auto messages = relayed(2);
    EXPECT_EQ(copies(messages, "before-timeout"), 1u);
    EXPECT_EQ(copies(messages, "after-timeout"), 1u);
    EXPECT_EQ(connections(2).size(), 2u) << postfix->log();
    EXPECT_EQ(ms->remote().reused_sessions(), 0u) << "a closed session must not be taken from the cache";
}

TEST_F(CachedSessionTest, ReusedSessionThatStopsAnsweringBeforeTheDataIsRetriedOnANewConnection) {
    // The smtpd process of the cached session is stopped: the socket stays open and quiet,
    // so the session is reused and MAIL gets no answer. The message must go through on a
    // new connection (another smtpd), and exactly once.
    tweak = [](delivery::MailSystemOptions& o) {
        o.remote.connection_idle = 30s;
        o.remote.reply_timeout = 2s;
    };
    start_postfix();
    auto first = send("first-session");
    run_queue();
    EXPECT_FALSE(ms->spool().load(first));
    auto pids = connections(1);
    ASSERT_EQ(pids.size(), 1u) << postfix->log();
    ASSERT_EQ(::kill(pids[0], SIGSTOP), 0);
    auto second = send("after-stop");
    run_queue();
    EXPECT_FALSE(ms->spool().load(second)) << "not delivered on a new connection";
    EXPECT_EQ(ms->remote().reused_sessions(), 1u);
    ::kill(pids[0], SIGCONT);  // it finds MAIL, RCPT, DATA and a closed connection
    auto messages = relayed(2);
    EXPECT_EQ(copies(messages, "first-session"), 1u);
    EXPECT_EQ(copies(messages, "after-stop"), 1u);
    EXPECT_EQ(messages.size(), 2u);
    EXPECT_EQ(connections(2).size(), 2u) << postfix->log();
}

}  // namespace
}  // namespace pecd
