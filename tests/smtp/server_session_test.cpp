// server_session_test.cpp - the SMTP server state machine, byte for byte, without sockets
#include "smtp/server_session.hpp"

#include <gtest/gtest.h>

#include "core/error.hpp"

using namespace pecd;
using namespace pecd::smtp;

namespace {

struct Stored {
    Envelope envelope;
    std::string data;
    bool committed = false;
    bool aborted = false;
};

class FakeMessage final : public queue::IncomingMessage {
public:
    explicit FakeMessage(Stored& s) : s_(s) {}
    void write(std::string_view chunk) override { s_.data.append(chunk); }
    void commit(std::function<void(queue::CommitResult)> done) override {
        s_.committed = true;
        done({true, "Q1", ""});
    }
    void abort() noexcept override { s_.aborted = true; }

private:
    Stored& s_;
};

class FakeHandler final : public SessionHandler {
public:
    RecipientVerdict check_recipient(const SessionInfo& s, const std::string& a) override {
        if (a.ends_with("@local.test")) return a.starts_with("nobody") ? RecipientVerdict::unknown_user
                                                                       : RecipientVerdict::accept;
        return s.auth_user.empty() ? RecipientVerdict::relay_denied : RecipientVerdict::accept;
    }
    std::unique_ptr<queue::IncomingMessage> begin_message(const Envelope& e) override {
        if (fail_begin) throw TemporaryError("disk full");
        messages.push_back(std::make_unique<Stored>());
        messages.back()->envelope = e;
        return std::make_unique<FakeMessage>(*messages.back());
    }
    std::vector<std::unique_ptr<Stored>> messages;
    bool fail_begin = false;
};

class SessionTest : public ::testing::Test {
protected:
    ManualClock clock{TimePoint(std::chrono::seconds(1'700'000'000))};
    FakeHandler handler;

    std::unique_ptr<ServerSession> make(ListenerPolicy p = {}, bool implicit = false) {
        p.hostname = "mx.local.test";
        auto s = std::make_unique<ServerSession>(p, handler, clock, "127.0.0.1", 40000, implicit);
        s->start();
        s->output().clear();
        return s;
    }
    // Feeds bytes, runs the waits a real I/O layer would (commit succeeds), returns replies.
    std::string send(ServerSession& s, std::string_view bytes) {
        s.feed(bytes);
        drive(s);
        std::string out;
        out.swap(s.output());
        return out;
    }
    void drive(ServerSession& s) {
        for (int i = 0; i < 100 && s.wait() == Wait::commit; ++i) {
            s.pending_message()->commit([&](queue::CommitResult r) { s.commit_finished(r); });
            s.resume();
        }
    }
    static std::string plain(const std::string& user, const std::string& pass) {
        std::string raw = std::string("\0", 1) + user + std::string("\0", 1) + pass;
        static const char* b = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        std::string out;
        std::size_t i = 0;
        for (; i + 2 < raw.size(); i += 3) {
            unsigned v = (unsigned char)raw[i] << 16 | (unsigned char)raw[i + 1] << 8 | (unsigned char)raw[i + 2];
            out += {b[v >> 18], b[(v >> 12) & 63], b[(v >> 6) & 63], b[v & 63]};
        }
        if (raw.size() - i == 1) {
            unsigned v = (unsigned char)raw[i] << 16;
            out += {b[v >> 18], b[(v >> 12) & 63], '=', '='};
        } else if (raw.size() - i == 2) {
            unsigned v = (unsigned char)raw[i] << 16 | (unsigned char)raw[i + 1] << 8;
            out += {b[v >> 18], b[(v >> 12) & 63], b[(v >> 6) & 63], '='};
        }
        return out;
    }
};

TEST_F(SessionTest, GreetingNamesHost) {
    ListenerPolicy p;
    p.hostname = "mx.local.test";
    ServerSession s(p, handler, clock, "127.0.0.1", 1);
    s.start();
    EXPECT_EQ(s.output(), "220 mx.local.test ESMTP pecd\r\n");
}

TEST_F(SessionTest, EhloBeforeTlsOffersStarttlsButNotAuth) {
    ListenerPolicy p;
    p.auth = true;
    auto s = make(p);
    auto r = send(*s, "EHLO client.test\r\n");
    EXPECT_NE(r.find("250-STARTTLS"), std::string::npos);
    EXPECT_NE(r.find("250-PIPELINING"), std::string::npos);
    EXPECT_NE(r.find("250-SIZE 104857600"), std::string::npos);
    EXPECT_NE(r.find("250-ENHANCEDSTATUSCODES"), std::string::npos);
    EXPECT_NE(r.find("250-8BITMIME"), std::string::npos);
    EXPECT_NE(r.find("250 DSN"), std::string::npos);
    EXPECT_EQ(r.find("AUTH"), std::string::npos);
}

TEST_F(SessionTest, AuthBeforeTlsIsRefused) {
    ListenerPolicy p;
    p.auth = true;
    auto s = make(p);
    send(*s, "EHLO c\r\n");
    EXPECT_EQ(send(*s, "AUTH PLAIN " + plain("a@local.test", "pw") + "\r\n"),
              "530 5.7.0 Must issue a STARTTLS command first\r\n");
    EXPECT_EQ(s->wait(), Wait::none);
}

TEST_F(SessionTest, StarttlsDiscardsPipelinedBytesAndRestarts) {
    ListenerPolicy p;
    p.auth = true;
    auto s = make(p);
    send(*s, "EHLO c\r\n");
    s->feed("STARTTLS\r\nMAIL FROM:<evil@x.test>\r\n");
    EXPECT_EQ(s->wait(), Wait::start_tls);
    EXPECT_EQ(s->output(), "220 2.0.0 Ready to start TLS\r\n");
    s->output().clear();
    s->tls_started("TLSv1.3", "TLS_AES_256_GCM_SHA384");
    s->resume();
    EXPECT_EQ(s->output(), "") << "the pipelined MAIL must not be executed";
    // The session restarted: MAIL needs a new EHLO.
    EXPECT_EQ(send(*s, "MAIL FROM:<a@local.test>\r\n"), "503 5.5.1 Error: send HELO/EHLO first\r\n");
    auto r = send(*s, "EHLO c\r\n");
    EXPECT_NE(r.find("AUTH PLAIN LOGIN"), std::string::npos);
    EXPECT_EQ(r.find("STARTTLS"), std::string::npos);
}

TEST_F(SessionTest, StarttlsRequiredRefusesMailInClear) {
    ListenerPolicy p;
    p.tls = TlsMode::starttls_required;
    auto s = make(p);
    send(*s, "EHLO c\r\n");
    EXPECT_EQ(send(*s, "MAIL FROM:<a@local.test>\r\n"), "530 5.7.0 Must issue a STARTTLS command first\r\n");
}

TEST_F(SessionTest, AuthPlainAndLoginAfterTls) {
    ListenerPolicy p;
    p.auth = true;
    p.require_auth = true;
    auto s = make(p, true);
    s->tls_started("TLSv1.3", "X");
    send(*s, "EHLO c\r\n");
    EXPECT_EQ(send(*s, "MAIL FROM:<a@local.test>\r\n"), "530 5.7.0 Authentication required\r\n");
    s->feed("AUTH PLAIN " + plain("a@local.test", "secret") + "\r\n");
    ASSERT_EQ(s->wait(), Wait::authenticate);
    EXPECT_EQ(s->auth_request().user, "a@local.test");
    EXPECT_EQ(s->auth_request().password, "secret");
    s->auth_finished(false);
    EXPECT_EQ(s->output(), "535 5.7.8 Error: authentication failed\r\n");
    s->output().clear();
    // LOGIN, step by step: "Username:" and "Password:" prompts in base64.
    EXPECT_EQ(send(*s, "AUTH LOGIN\r\n"), "334 VXNlcm5hbWU6\r\n");
    EXPECT_EQ(send(*s, "YUBsb2NhbC50ZXN0\r\n"), "334 UGFzc3dvcmQ6\r\n");
    s->feed("c2VjcmV0\r\n");
    ASSERT_EQ(s->wait(), Wait::authenticate);
    EXPECT_EQ(s->auth_request().user, "a@local.test");
    s->auth_finished(true);
    EXPECT_EQ(s->output(), "235 2.7.0 Authentication successful\r\n");
    s->output().clear();
    EXPECT_EQ(send(*s, "MAIL FROM:<a@local.test>\r\n"), "250 2.1.0 Ok\r\n");
    EXPECT_EQ(send(*s, "RCPT TO:<x@remote.test>\r\n"), "250 2.1.5 Ok\r\n") << "authenticated relay";
}

TEST_F(SessionTest, AuthAbortAndBadBase64) {
    ListenerPolicy p;
    p.auth = true;
    auto s = make(p, true);
    s->tls_started("TLSv1.2", "X");
    send(*s, "EHLO c\r\n");
    EXPECT_EQ(send(*s, "AUTH PLAIN\r\n"), "334 \r\n");
    EXPECT_EQ(send(*s, "*\r\n"), "501 5.0.0 Authentication aborted\r\n");
    EXPECT_EQ(send(*s, "AUTH PLAIN !!!notbase64\r\n"), "501 5.5.2 Error: cannot decode response\r\n");
    EXPECT_EQ(send(*s, "AUTH CRAM-MD5\r\n"), "504 5.5.4 Error: unsupported authentication mechanism\r\n");
}

TEST_F(SessionTest, SenderMustMatchAuthenticatedUser) {
    ListenerPolicy p;
    p.auth = p.require_auth = p.sender_must_match_auth = true;
    auto s = make(p, true);
    s->tls_started("TLSv1.3", "X");
    send(*s, "EHLO c\r\n");
    s->feed("AUTH PLAIN " + plain("a@local.test", "pw") + "\r\n");
    s->auth_finished(true);
    s->output().clear();
    EXPECT_EQ(send(*s, "MAIL FROM:<someone.else@local.test>\r\n"),
              "553 5.7.1 Sender address rejected: not owned by the authenticated user\r\n");
    EXPECT_EQ(send(*s, "MAIL FROM:<A@Local.Test>\r\n"), "250 2.1.0 Ok\r\n");
}

TEST_F(SessionTest, NoOpenRelayWithoutAuth) {
    auto s = make();
    send(*s, "EHLO c\r\n");
    send(*s, "MAIL FROM:<x@remote.test>\r\n");
    EXPECT_EQ(send(*s, "RCPT TO:<y@elsewhere.test>\r\n"),
              "554 5.7.1 Recipient address rejected: relay access denied\r\n");
    EXPECT_EQ(send(*s, "RCPT TO:<nobody@local.test>\r\n"), "550 5.1.1 Recipient address rejected: user unknown\r\n");
    EXPECT_EQ(send(*s, "DATA\r\n"), "554 5.5.1 Error: no valid recipients\r\n");
}

TEST_F(SessionTest, PipelinedTransactionIsStoredWithReceivedAndDotsUndone) {
    auto s = make();
    auto r = send(*s,
                  "EHLO c\r\nMAIL FROM:<x@remote.test> SIZE=100 BODY=8BITMIME RET=HDRS ENVID=abc\r\n"
                  "RCPT TO:<bob@local.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@local.test\r\n"
                  "DATA\r\nSubject: t\r\n\r\n..leading dot\r\nbody\r\n.\r\nQUIT\r\n");
    EXPECT_NE(r.find("354 End data"), std::string::npos);
    EXPECT_NE(r.find("250 2.0.0 Ok: queued as Q1\r\n221 2.0.0 Bye\r\n"), std::string::npos);
    ASSERT_EQ(handler.messages.size(), 1u);
    auto& m = *handler.messages[0];
    EXPECT_TRUE(m.committed);
    EXPECT_EQ(m.envelope.mail_from, "x@remote.test");
    EXPECT_EQ(m.envelope.dsn_ret, "HDRS");
    EXPECT_EQ(m.envelope.dsn_envid, "abc");
    ASSERT_EQ(m.envelope.recipients.size(), 1u);
    EXPECT_EQ(m.envelope.recipients[0].notify, "SUCCESS,FAILURE");
    EXPECT_EQ(m.envelope.recipients[0].orcpt, "rfc822;bob@local.test");
    EXPECT_TRUE(m.data.starts_with("Received: from c ([127.0.0.1])\r\n\tby mx.local.test (pecd) with ESMTP id "));
    EXPECT_TRUE(m.data.ends_with("Subject: t\r\n\r\n.leading dot\r\nbody\r\n")) << m.data;
    EXPECT_TRUE(s->closed());
}

TEST_F(SessionTest, ReceivedRecordsTlsProtocolAndCipher) {
    auto s = make({}, true);
    s->tls_started("TLSv1.3", "TLS_AES_256_GCM_SHA384");
    send(*s, "EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<bob@local.test>\r\nDATA\r\nx\r\n.\r\n");
    ASSERT_EQ(handler.messages.size(), 1u);
    EXPECT_NE(handler.messages[0]->data.find("with ESMTPS id"), std::string::npos);
    EXPECT_NE(handler.messages[0]->data.find("(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384)"),
              std::string::npos);
}

// With several recipients there is no "for" clause; every continuation line must still
// start with white space, or the header block would end inside Received:.
TEST_F(SessionTest, ReceivedWithSeveralRecipientsIsOneFoldedHeader) {
    auto s = make({}, true);
    s->tls_started("TLSv1.3", "TLS_AES_256_GCM_SHA384");
    send(*s, "EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<bob@local.test>\r\nRCPT TO:<carol@local.test>\r\n"
             "DATA\r\nSubject: two\r\n\r\nx\r\n.\r\n");
    ASSERT_EQ(handler.messages.size(), 1u);
    const auto& data = handler.messages[0]->data;
    auto end = data.find("Subject: two\r\n");
    ASSERT_NE(end, std::string::npos);
    std::string received = data.substr(0, end);
    for (std::size_t p = received.find("\r\n"); p + 2 < received.size(); p = received.find("\r\n", p + 2))
        EXPECT_TRUE(received[p + 2] == '\t' || received[p + 2] == ' ') << received;
    EXPECT_NE(received.find("(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384); "), std::string::npos) << received;
}

// SMTP smuggling: none of these may end the data early and start a second message.
TEST_F(SessionTest, SmugglingPayloadsNeverSplitAMessage) {
    for (std::string end : {"\n.\n", "\r.\r", "\r\n.\n", "\n.\r\n", "\r.\r\n"}) {
        handler.messages.clear();
        auto s = make();
        auto r = send(*s, "EHLO c\r\nMAIL FROM:<x@remote.test>\r\nRCPT TO:<bob@local.test>\r\nDATA\r\n"
                          "Subject: one\r\n\r\nhello" + end +
                          "MAIL FROM:<spoof@local.test>\r\nRCPT TO:<bob@local.test>\r\nDATA\r\n"
                          "Subject: smuggled\r\n\r\nx\r\n.\r\n");
        EXPECT_NE(r.find("521 5.5.2"), std::string::npos) << "payload " << ::testing::PrintToString(end);
        EXPECT_TRUE(s->closed());
        ASSERT_EQ(handler.messages.size(), 1u);
        EXPECT_FALSE(handler.messages[0]->committed);
        EXPECT_TRUE(handler.messages[0]->aborted);
    }
}

TEST_F(SessionTest, DataSplitAcrossReadsAtEveryByte) {
    std::string dialog = "EHLO c\r\nMAIL FROM:<x@remote.test>\r\nRCPT TO:<bob@local.test>\r\nDATA\r\n"
                         "A: b\r\n\r\n..\r\n...x\r\nline\r\n.\r\n";
    auto s = make();
    std::string out;
    for (char c : dialog) out += send(*s, std::string_view(&c, 1));
    ASSERT_EQ(handler.messages.size(), 1u);
    EXPECT_TRUE(handler.messages[0]->committed);
    EXPECT_TRUE(handler.messages[0]->data.ends_with("A: b\r\n\r\n.\r\n..x\r\nline\r\n")) << handler.messages[0]->data;
}

TEST_F(SessionTest, BareLfInCommandIsRefusedAndSessionContinues) {
    auto s = make();
    EXPECT_EQ(send(*s, "EHLO c\n"), "500 5.5.2 Error: bare <LF> received\r\n");
    EXPECT_EQ(send(*s, "NOOP\rX\r\n"), "500 5.5.2 Error: bare <CR> received\r\n");
    EXPECT_EQ(send(*s, "NOOP\r\n"), "250 2.0.0 Ok\r\n");
}

TEST_F(SessionTest, OverlongCommandLineIsRefusedThenServiceGoesOn) {
    auto s = make();
    auto r = send(*s, std::string(5000, 'A'));
    EXPECT_EQ(r, "500 5.5.2 Error: line too long\r\n");
    EXPECT_EQ(send(*s, std::string(3000, 'B') + "\r\n"), "");
    EXPECT_EQ(send(*s, "NOOP\r\n"), "250 2.0.0 Ok\r\n");
}

TEST_F(SessionTest, OversizedMessageRefusedAtEndOfData) {
    ListenerPolicy p;
    p.limits.message_size = 1000;
    auto s = make(p);
    EXPECT_EQ(send(*s, "EHLO c\r\nMAIL FROM:<x@r.test> SIZE=5000\r\n").substr(0, 3), "250");  // EHLO
    handler.messages.clear();
    auto r = send(*s, "MAIL FROM:<x@r.test>\r\nRCPT TO:<bob@local.test>\r\nDATA\r\n");
    std::string big;
    for (int i = 0; i < 50; ++i) big += std::string(60, 'x') + "\r\n";
    r = send(*s, big + ".\r\n");
    EXPECT_EQ(r, "552 5.3.4 Error: message size exceeds fixed limit\r\n");
    ASSERT_EQ(handler.messages.size(), 1u);
    EXPECT_FALSE(handler.messages[0]->committed);
    EXPECT_EQ(send(*s, "NOOP\r\n"), "250 2.0.0 Ok\r\n");
}

TEST_F(SessionTest, DeclaredSizeOverLimitRefusedAtMail) {
    ListenerPolicy p;
    p.limits.message_size = 1000;
    auto s = make(p);
    send(*s, "EHLO c\r\n");
    EXPECT_EQ(send(*s, "MAIL FROM:<x@r.test> SIZE=5000\r\n"), "552 5.3.4 Message size exceeds fixed limit\r\n");
    // RFC 1870 size-value is digits only: a sign is a syntax error, not a huge size.
    for (const char* bad : {"-1", "+5", " 5", "5x", "", "999999999999999999999"})
        EXPECT_EQ(send(*s, std::string("MAIL FROM:<x@r.test> SIZE=") + bad + "\r\n"),
                  "501 5.5.4 Bad SIZE parameter\r\n")
            << bad;
    EXPECT_EQ(send(*s, "MAIL FROM:<x@r.test> SIZE=999\r\n"), "250 2.1.0 Ok\r\n");
}

TEST_F(SessionTest, OverlongDataLineRefusedAtEndOfData) {
    ListenerPolicy p;
    p.limits.data_line = 1000;
    auto s = make(p);
    send(*s, "EHLO c\r\nMAIL FROM:<x@r.test>\r\nRCPT TO:<bob@local.test>\r\nDATA\r\n");
    // The tail of the long line is ".": it must not count as the end of data.
    auto r = send(*s, std::string(3000, 'x'));
    r += send(*s, ".\r\nmore\r\n.\r\n");
    EXPECT_EQ(r, "552 5.3.4 Error: message line too long\r\n");
}

TEST_F(SessionTest, TooManyRecipients) {
    ListenerPolicy p;
    p.limits.recipients = 2;
    auto s = make(p);
    send(*s, "EHLO c\r\nMAIL FROM:<x@r.test>\r\nRCPT TO:<a@local.test>\r\nRCPT TO:<b@local.test>\r\n");
    EXPECT_EQ(send(*s, "RCPT TO:<c@local.test>\r\n"), "452 4.5.3 Error: too many recipients\r\n");
}

TEST_F(SessionTest, TooManyErrorsCloses) {
    ListenerPolicy p;
    p.limits.errors = 3;
    auto s = make(p);
    send(*s, "FOO\r\nBAR\r\n");
    auto r = send(*s, "BAZ\r\nNOOP\r\n");
    EXPECT_NE(r.find("421 4.7.0"), std::string::npos);
    EXPECT_TRUE(s->closed());
    EXPECT_EQ(r.find("250"), std::string::npos) << "nothing is processed after the 421";
}

TEST_F(SessionTest, ClientBytesRepeatedOnlyAsPrintableAscii) {
    using namespace std::string_literals;
    auto s = make();
    send(*s, "EHLO c\r\n");
    // A parameter name with a NUL, a tab and an 8-bit byte comes back with each as '?'.
    EXPECT_EQ(send(*s, "MAIL FROM:<x@y.test> F\0O\t\xe8=1\r\n"s),
              "555 5.5.4 Unsupported parameter F?O??\r\n");
    // However long the echoed text, the reply line stays within 512 octets.
    auto r = send(*s, "MAIL FROM:<x@y.test> " + std::string(1500, 'P') + "=1\r\n");
    EXPECT_EQ(r.size(), 512u) << r;
    EXPECT_TRUE(r.starts_with("555 5.5.4 Unsupported parameter PPP") && r.ends_with("PP\r\n")) << r;
    // The HELO name goes into the Received: header the same way.
    send(*s, "EHLO ev\0il)\x01\r\nMAIL FROM:<>\r\nRCPT TO:<bob@local.test>\r\nDATA\r\nx\r\n.\r\n"s);
    ASSERT_EQ(handler.messages.size(), 1u);
    EXPECT_TRUE(handler.messages[0]->data.starts_with("Received: from ev?il)? ([127.0.0.1])\r\n"))
        << handler.messages[0]->data;
}

TEST_F(SessionTest, MalformedCommandsGetPreciseReplies) {
    auto s = make();
    send(*s, "EHLO c\r\n");
    EXPECT_EQ(send(*s, "MAIL TO:<x@y.test>\r\n"), "501 5.5.4 Syntax: MAIL FROM:<address>\r\n");
    EXPECT_EQ(send(*s, "MAIL FROM:x@y.test\r\n"), "501 5.1.7 Bad sender address syntax: path must be enclosed in <>\r\n");
    EXPECT_EQ(send(*s, "MAIL FROM:<x@y.test> FOO=1\r\n"), "555 5.5.4 Unsupported parameter FOO\r\n");
    EXPECT_EQ(send(*s, "RCPT TO:<a@local.test>\r\n"), "503 5.5.1 Error: need MAIL command\r\n");
    EXPECT_EQ(send(*s, "EHLO\r\n"), "501 5.5.4 Syntax: EHLO hostname\r\n");
    EXPECT_EQ(send(*s, "DATA extra\r\n"), "501 5.5.4 Syntax: DATA\r\n");
}

TEST_F(SessionTest, TemporaryStoreFailureGives451AndNothingStored) {
    auto s = make();
    handler.fail_begin = true;
    auto r = send(*s, "EHLO c\r\nMAIL FROM:<x@r.test>\r\nRCPT TO:<a@local.test>\r\nDATA\r\n");
    EXPECT_NE(r.find("451 4.3.0"), std::string::npos);
    EXPECT_TRUE(handler.messages.empty());
}

TEST_F(SessionTest, LmtpRepliesOncePerRecipient) {
    ListenerPolicy p;
    p.lmtp = true;
    p.tls = TlsMode::none;
    auto s = make(p);
    EXPECT_EQ(send(*s, "EHLO c\r\n"), "500 5.5.1 Error: command not recognized\r\n");
    send(*s, "LHLO c\r\nMAIL FROM:<x@r.test>\r\nRCPT TO:<a@local.test>\r\nRCPT TO:<b@local.test>\r\n");
    auto r = send(*s, "DATA\r\nx\r\n.\r\n");
    EXPECT_EQ(r, "354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok: queued as Q1\r\n250 2.0.0 Ok: queued as Q1\r\n");
}

TEST_F(SessionTest, TimeoutSays421) {
    auto s = make();
    s->timeout();
    EXPECT_EQ(s->output(), "421 4.4.2 mx.local.test Error: timeout exceeded\r\n");
    EXPECT_TRUE(s->closed());
}

}  // namespace
