// smtp_client_test.cpp - the SMTP/LMTP client state machine without sockets
#include <gtest/gtest.h>

#include "smtp/client.hpp"

namespace pecd::smtp {
namespace {

using Step = ClientSession::Step;

Reply parse_one(const std::string& text) {
    ReplyParser p;
    p.feed(text);
    auto r = p.next();
    if (!r) throw std::runtime_error("incomplete reply");
    return *r;
}

ClientParams params(std::vector<std::string> rcpts, bool lmtp = false) {
    ClientParams p;
    p.lmtp = lmtp;
    p.helo_name = "mx.pecd.test";
    p.mail_from = "a@x.test";
    for (auto& r : rcpts) p.recipients.push_back({r, "", ""});
    p.size = 1234;
    return p;
}

// Greeting, EHLO and the pipelined MAIL and RCPT of one recipient, all accepted: the
// session then waits for the DATA reply.
void open_transaction(ClientSession& s, const std::string& greeting, const std::string& ehlo) {
    s.on_reply(parse_one(greeting));
    s.on_reply(parse_one(ehlo));
    s.on_reply(parse_one("250 ok\r\n"));
    s.on_reply(parse_one("250 ok\r\n"));
}

TEST(ReplyParser, MultiLineAcrossReadsAndStatusCodes) {
    ReplyParser p;
    p.feed("250-mx.example hello\r\n250-PIPE");
    EXPECT_FALSE(p.next());
    p.feed("LINING\r\n250 SIZE 1000\r\n550 5.1.1 no such user\r\n");
    auto r = p.next();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->code, 250);
    ASSERT_EQ(r->lines.size(), 3u);
    EXPECT_EQ(r->lines[1], "PIPELINING");
    auto r2 = p.next();
    ASSERT_TRUE(r2);
    EXPECT_EQ(r2->status(), "5.1.1");
    EXPECT_EQ(r2->summary(), "550 5.1.1 no such user");
    EXPECT_EQ(parse_one("451 try later\r\n").status(), "4.0.0");
    EXPECT_EQ(parse_one("550 4.1.1 mismatched class\r\n").status(), "5.0.0");
    EXPECT_EQ(parse_one("250\r\n").code, 250);
}

TEST(ReplyParser, MalformedRepliesAreProtocolErrors) {
    for (const char* bad : {"hello\r\n", "25 short\r\n", "250x\r\n", "999 no\r\n", "099 no\r\n"}) {
        ReplyParser p;
        p.feed(bad);
        EXPECT_THROW(p.next(), ProtocolError) << bad;
    }
    ReplyParser mixed;
    mixed.feed("250-a\r\n251 b\r\n");
    EXPECT_THROW(mixed.next(), ProtocolError);
    ReplyParser huge;
    EXPECT_THROW(huge.feed(std::string(10000, '2')), ProtocolError);
}

TEST(DotStuffer, StuffsLeadingDotsAcrossChunksAndTerminates) {
    DotStuffer d;
    std::string out = d.encode(".a\r\nb\r");
    out += d.encode("\n.");
    out += d.encode(".c\r\n");
    out += d.finish();
    EXPECT_EQ(out, "..a\r\nb\r\n...c\r\n.\r\n");
    DotStuffer open_line;
    std::string unterminated = open_line.encode("no newline");
    unterminated += open_line.finish();
    EXPECT_EQ(unterminated, "no newline\r\n.\r\n");
    DotStuffer empty;
    EXPECT_EQ(empty.finish(), ".\r\n");
}

// Whatever the chunks, the stuffed stream is the same: every line starting with a dot gets
// one more, and the terminator depends on whether the whole body ended with CRLF.
TEST(DotStuffer, AnySplitOfTheBodyGivesTheSameStream) {
    const std::vector<std::string> bodies = {".\r\n..x\r\ny.\r\n.", "a\r\n", "a\r",
                                             "\r\n.\r\n",           "..",    "x\n.y\n"};
    auto reference = [](const std::string& body) {
        std::string out;
        bool line_start = true;
        for (char c : body) {
            if (line_start && c == '.') out += '.';
            out += c;
            line_start = c == '\n';
        }
        const bool crlf = body.empty() || (body.size() >= 2 && body.compare(body.size() - 2, 2, "\r\n") == 0);
        return out + (crlf ? ".\r\n" : "\r\n.\r\n");
    };
    for (const auto& body : bodies)
        for (std::size_t i = 0; i <= body.size(); ++i)
            for (std::size_t j = i; j <= body.size(); ++j) {
                DotStuffer d;
                std::string out = d.encode(std::string_view(body).substr(0, i));
                out += d.encode(std::string_view(body).substr(i, j - i));
                out += d.encode(std::string_view(body).substr(j));
                out += d.finish();
                EXPECT_EQ(out, reference(body)) << "body \"" << body << "\" split at " << i << ", " << j;
            }
}

TEST(ClientSession, PipelinedSmtpWithMixedRecipientReplies) {
    auto p = params({"ok@y.test", "bad@y.test"});
    p.recipients[0].notify = "FAILURE";
    p.recipients[0].orcpt = "rfc822;ok@y.test";
    p.dsn_envid = "E1";
    p.dsn_ret = "HDRS";
    p.eight_bit = true;
    ClientSession s(p);
    auto a = s.on_reply(parse_one("220 mx.y.test ESMTP\r\n"));
    EXPECT_EQ(a.bytes, "EHLO mx.pecd.test\r\n");
    EXPECT_EQ(s.greeting_host(), "mx.y.test");
    a = s.on_reply(
        parse_one("250-mx.y.test\r\n250-PIPELINING\r\n250-SIZE 10000\r\n250-8BITMIME\r\n250 DSN\r\n"));
    EXPECT_EQ(a.step, Step::send);
    EXPECT_EQ(a.bytes,
              "MAIL FROM:<a@x.test> SIZE=1234 BODY=8BITMIME RET=HDRS ENVID=E1\r\n"
              "RCPT TO:<ok@y.test> NOTIFY=FAILURE ORCPT=rfc822;ok@y.test\r\n"
              "RCPT TO:<bad@y.test>\r\nDATA\r\n");
    EXPECT_EQ(s.on_reply(parse_one("250 ok\r\n")).bytes, "");
    EXPECT_EQ(s.on_reply(parse_one("250 ok\r\n")).bytes, "");
    EXPECT_EQ(s.on_reply(parse_one("550 5.1.1 unknown\r\n")).bytes, "");
    EXPECT_EQ(s.on_reply(parse_one("354 go\r\n")).step, Step::send_body);
    a = s.on_reply(parse_one("250 2.0.0 queued as X\r\n"));
    EXPECT_EQ(a.step, Step::done);
    EXPECT_EQ(a.bytes, "QUIT\r\n");
    ASSERT_EQ(s.results().size(), 2u);
    EXPECT_EQ(s.results()[0]->summary(), "250 2.0.0 queued as X");
    EXPECT_EQ(s.results()[1]->status(), "5.1.1");
}

TEST(ClientSession, DataAnsweredWithoutA354DeliversNoOne) {
    // A server that answers DATA with 250 never received the body: the recipients it
    // accepted are deferred, not delivered.
    ClientSession s(params({"ok@y.test"}));
    open_transaction(s, "220 mx ESMTP\r\n", "250-mx\r\n250 PIPELINING\r\n");
    auto a = s.on_reply(parse_one("250 2.0.0 thanks\r\n"));
    EXPECT_EQ(a.step, Step::done);
    ASSERT_TRUE(s.results()[0]);
    EXPECT_EQ(s.results()[0]->code, 451) << s.results()[0]->summary();
    EXPECT_NE(s.results()[0]->summary().find("instead of 354"), std::string::npos);
    // A 3xx where a verdict is due (here after the body) defers as well.
    ClientSession t(params({"ok@y.test"}, true));
    open_transaction(t, "220 lmtp\r\n", "250-lmtp\r\n250 PIPELINING\r\n");
    EXPECT_EQ(t.on_reply(parse_one("354 go\r\n")).step, Step::send_body);
    t.on_reply(parse_one("354 again?\r\n"));
    ASSERT_TRUE(t.results()[0]);
    EXPECT_EQ(t.results()[0]->code, 451) << t.results()[0]->summary();
}

TEST(ClientSession, KeptOpenAfterTheTransactionAndResumedWithANewMailFrom) {
    auto p = params({"x@y.test"});
    p.keep_open = true;
    ClientSession first(p);
    open_transaction(first, "220 mx.y.test ESMTP\r\n", "250-mx.y.test\r\n250-PIPELINING\r\n250 SIZE 10000\r\n");
    EXPECT_EQ(first.on_reply(parse_one("354 go\r\n")).step, Step::send_body);
    auto a = first.on_reply(parse_one("250 2.0.0 queued\r\n"));
    EXPECT_EQ(a.step, Step::done);
    EXPECT_EQ(a.bytes, "") << "no QUIT on a session kept for the next message";
    EXPECT_TRUE(first.reusable());

    // The next message: straight to MAIL, with the extensions of the first EHLO.
    auto q = params({"z@y.test"});
    q.keep_open = true;
    q.mail_from = "b@x.test";
    ClientSession next(q);
    a = next.resume(first.extensions(), true);
    EXPECT_EQ(a.bytes, "MAIL FROM:<b@x.test> SIZE=1234\r\nRCPT TO:<z@y.test>\r\nDATA\r\n");
    EXPECT_TRUE(next.tls_active());
    next.on_reply(parse_one("250 ok\r\n"));
    next.on_reply(parse_one("250 ok\r\n"));
    EXPECT_EQ(next.on_reply(parse_one("354 go\r\n")).step, Step::send_body);
    // A server that closes after the transaction leaves nothing to reuse.
    a = next.on_reply(parse_one("421 4.3.2 shutting down\r\n"));
    EXPECT_EQ(a.bytes, "QUIT\r\n");
    EXPECT_FALSE(next.reusable());
    EXPECT_TRUE(next.results()[0]->transient());

    // Every recipient refused, DATA refused: the MAIL is still in force, so no reuse.
    ClientSession refused(q);
    refused.resume(first.extensions(), true);
    refused.on_reply(parse_one("250 ok\r\n"));
    refused.on_reply(parse_one("550 5.1.1 unknown\r\n"));
    EXPECT_EQ(refused.on_reply(parse_one("554 5.5.1 no valid recipients\r\n")).bytes, "QUIT\r\n");
    EXPECT_FALSE(refused.reusable());
    EXPECT_TRUE(refused.results()[0]->permanent());

    // LMTP sessions are not kept.
    auto l = params({"x@y.test"}, true);
    l.keep_open = true;
    ClientSession lmtp(l);
    open_transaction(lmtp, "220 lmtp\r\n", "250-lmtp\r\n250 PIPELINING\r\n");
    lmtp.on_reply(parse_one("354 go\r\n"));
    EXPECT_EQ(lmtp.on_reply(parse_one("250 2.0.0 stored\r\n")).bytes, "QUIT\r\n");
    EXPECT_FALSE(lmtp.reusable());
}

TEST(ClientSession, WithoutPipeliningOneCommandAtATimeAndNoDataWhenAllRefused) {
    ClientSession s(params({"x@y.test"}));
    s.on_reply(parse_one("220 hi\r\n"));
    auto a = s.on_reply(parse_one("250 mx\r\n"));
    EXPECT_EQ(a.bytes, "MAIL FROM:<a@x.test>\r\n");
    a = s.on_reply(parse_one("250 ok\r\n"));
    EXPECT_EQ(a.bytes, "RCPT TO:<x@y.test>\r\n");
    a = s.on_reply(parse_one("450 4.2.0 greylisted\r\n"));
    EXPECT_EQ(a.step, Step::done);
    EXPECT_TRUE(s.results()[0]->transient());
}

TEST(ClientSession, HeloFallbackAndSizeLimitAndRejectedGreeting) {
    ClientSession old(params({"x@y.test"}));
    old.on_reply(parse_one("220 old\r\n"));
    EXPECT_EQ(old.on_reply(parse_one("502 what\r\n")).bytes, "HELO mx.pecd.test\r\n");
    EXPECT_EQ(old.on_reply(parse_one("250 old\r\n")).bytes, "MAIL FROM:<a@x.test>\r\n");

    ClientSession small(params({"x@y.test"}));
    small.on_reply(parse_one("220 hi\r\n"));
    auto a = small.on_reply(parse_one("250-mx\r\n250 SIZE 100\r\n"));
    EXPECT_EQ(a.step, Step::done);
    EXPECT_EQ(small.results()[0]->status(), "5.3.4");

    ClientSession busy(params({"x@y.test"}));
    a = busy.on_reply(parse_one("421 4.3.2 busy\r\n"));
    EXPECT_EQ(a.step, Step::done);
    EXPECT_TRUE(busy.results()[0]->transient());
}

TEST(ClientSession, StartTlsThenEhloAgainAndRequiredTlsMissingDefers) {
    auto p = params({"x@y.test"});
    p.tls = TlsWanted::required;
    ClientSession s(p);
    s.on_reply(parse_one("220 hi\r\n"));
    auto a = s.on_reply(parse_one("250-mx\r\n250 STARTTLS\r\n"));
    EXPECT_EQ(a.bytes, "STARTTLS\r\n");
    EXPECT_EQ(s.on_reply(parse_one("220 go ahead\r\n")).step, Step::start_tls);
    a = s.tls_started();
    EXPECT_EQ(a.bytes, "EHLO mx.pecd.test\r\n");
    EXPECT_TRUE(s.tls_active());
    EXPECT_EQ(s.on_reply(parse_one("250 mx\r\n")).bytes, "MAIL FROM:<a@x.test>\r\n");

    ClientSession plain(p);
    plain.on_reply(parse_one("220 hi\r\n"));
    a = plain.on_reply(parse_one("250 mx\r\n"));
    EXPECT_EQ(a.step, Step::done);
    EXPECT_TRUE(plain.tls_refused());
    EXPECT_TRUE(plain.results()[0]->transient());
}

TEST(ClientSession, LmtpGivesOneFinalReplyPerAcceptedRecipient) {
    ClientSession s(params({"a@l.test", "b@l.test", "c@l.test"}, true));
    EXPECT_EQ(s.on_reply(parse_one("220 lmtp\r\n")).bytes, "LHLO mx.pecd.test\r\n");
    s.on_reply(parse_one("250-l\r\n250 PIPELINING\r\n"));
    s.on_reply(parse_one("250 ok\r\n"));          // MAIL
    s.on_reply(parse_one("250 ok\r\n"));          // a
    s.on_reply(parse_one("550 5.1.1 no b\r\n"));  // b
    s.on_reply(parse_one("250 ok\r\n"));          // c
    EXPECT_EQ(s.on_reply(parse_one("354 go\r\n")).step, Step::send_body);
    EXPECT_EQ(s.on_reply(parse_one("250 2.0.0 a saved\r\n")).step, Step::send);
    EXPECT_EQ(s.on_reply(parse_one("452 4.2.2 c over quota\r\n")).step, Step::done);
    EXPECT_TRUE(s.results()[0]->positive());
    EXPECT_EQ(s.results()[1]->status(), "5.1.1");
    EXPECT_EQ(s.results()[2]->status(), "4.2.2");
}

TEST(ClientSession, BrokenConnectionDefersWhatIsOpenAndLineBreaksAreRefused) {
    ClientSession s(params({"a@l.test", "b@l.test"}));
    s.on_reply(parse_one("220 hi\r\n"));
    s.on_reply(parse_one("250 mx\r\n"));
    s.on_reply(parse_one("250 ok\r\n"));
    s.on_reply(parse_one("550 no a\r\n"));
    s.fail_unresolved("connection reset");
    EXPECT_TRUE(s.results()[0]->permanent());
    EXPECT_TRUE(s.results()[1]->transient());
    EXPECT_TRUE(s.finished());
    auto p = params({"a@l.test\r\nRCPT TO:<evil@x>"});
    EXPECT_THROW(ClientSession{p}, Error);
}

}  // namespace
}  // namespace pecd::smtp
