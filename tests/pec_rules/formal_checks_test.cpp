// formal_checks_test.cpp - the access point's formal checks (pec.md 5.1.2)
//
// One test per rule (syntax, From, To, Bcc, authentication, MAIL FROM, RCPT set, recipient
// count, size x recipients with the DM floors), the extraction the envelope builder uses
// (Message-ID, decoded Subject, To/Cc, Reply-To, X-TipoRicevuta), encoded headers, groups,
// comments in addresses, duplicate recipients, and hostile input that must not crash.
#include "pec/formal_checks.hpp"

#include <gtest/gtest.h>

#include <random>

#include "core/error.hpp"

namespace pecd::pec {
namespace {

struct Msg {
    std::vector<std::string> headers = {
        "Date: Wed, 25 Nov 2026 09:00:00 +0100",
        "From: Mario Rossi <mario.rossi@pec.example.it>",
        "To: Anna <anna@pec.other.it>",
        "Cc: luca@pec.other.it",
        "Subject: Fattura n. 12",
        "Message-ID: <abc.123@mua.example.it>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
    };
    std::string body = "Buongiorno,\r\nin allegato.\r\n";

    Msg& set(const std::string& name, const std::string& value) {
        drop(name);
        headers.push_back(name + ": " + value);
        return *this;
    }
    Msg& drop(const std::string& name) {
        std::erase_if(headers, [&](const std::string& h) { return h.rfind(name + ":", 0) == 0; });
        return *this;
    }
    std::string bytes() const {
        std::string s;
        for (auto& h : headers) s += h + "\r\n";
        return s + "\r\n" + body;
    }
};

Envelope envelope(const std::string& from, const std::vector<std::string>& rcpts) {
    Envelope e;
    e.mail_from = from;
    for (auto& r : rcpts) e.recipients.push_back({r, "", ""});
    return e;
}

const std::string kSender = "mario.rossi@pec.example.it";
const std::vector<std::string> kRcpts = {"anna@pec.other.it", "luca@pec.other.it"};

FormalResult check(const Msg& m, const Envelope& e = envelope(kSender, kRcpts),
                   const std::string& auth = kSender, FormalLimits limits = {}) {
    return check_submission(e, auth, m.bytes(), limits);
}

void expect_code(const FormalResult& r, FormalCode code) {
    EXPECT_EQ(to_string(r.code), to_string(code)) << r.reason;
    if (code != FormalCode::ok) {
        EXPECT_FALSE(r.reason.empty());
        EXPECT_NE(r.reason.find(" ("), std::string::npos)
            << "Italian text with an English gloss: " << r.reason;
        for (unsigned char c : r.reason) EXPECT_LT(c, 0x80) << "reason must be ASCII: " << r.reason;
    }
}

TEST(FormalChecks, ValidSubmissionPassesAndIsExtracted) {
    Msg m;
    m.set("Reply-To", "segreteria@example.it");
    auto r = check(m);
    expect_code(r, FormalCode::ok);
    EXPECT_TRUE(r.reason.empty());
    EXPECT_EQ(r.info.client_msgid, "<abc.123@mua.example.it>");
    EXPECT_EQ(r.info.subject, "Fattura n. 12");
    EXPECT_EQ(r.info.from.address, kSender);
    EXPECT_EQ(r.info.from.name, "Mario Rossi");
    ASSERT_EQ(r.info.to.size(), 1u);
    EXPECT_EQ(r.info.to[0].address, "anna@pec.other.it");
    EXPECT_EQ(r.info.to[0].name, "Anna");
    ASSERT_EQ(r.info.cc.size(), 1u);
    EXPECT_EQ(r.info.cc[0].address, "luca@pec.other.it");
    EXPECT_TRUE(r.info.has_reply_to);
    ASSERT_EQ(r.info.reply_to.size(), 1u);
    EXPECT_EQ(r.info.reply_to[0].address, "segreteria@example.it");
    EXPECT_EQ(r.info.receipt_type, ReceiptType::completa);
    EXPECT_FALSE(r.info.receipt_type_given);
    EXPECT_EQ(r.info.size, m.bytes().size());
}

TEST(FormalChecks, SyntaxErrorsAreReportedWithTheLine) {
    Msg bad_line;
    bad_line.headers.insert(bad_line.headers.begin() + 2, "this is not a header");
    auto r = check(bad_line);
    expect_code(r, FormalCode::syntax);
    EXPECT_NE(r.reason.find("line 3"), std::string::npos) << r.reason;

    Msg no_date;
    no_date.drop("Date");
    expect_code(check(no_date), FormalCode::syntax);

    Msg bad_date;
    bad_date.set("Date", "yesterday at noon");
    expect_code(check(bad_date), FormalCode::syntax);

    Msg twice;
    twice.headers.push_back("Subject: again");
    r = check(twice);
    expect_code(r, FormalCode::syntax);
    EXPECT_EQ(r.field, "Subject");

    Msg long_line;
    long_line.set("X-Long", std::string(1000, 'x'));
    expect_code(check(long_line), FormalCode::syntax);

    Msg bad_id;
    bad_id.set("Message-ID", "no-brackets@example.it");
    expect_code(check(bad_id), FormalCode::syntax);
    // Printable ASCII only: a control or 8-bit byte could not be repeated alike in our
    // headers and in daticert.xml.
    for (const char* id : {"<abc\x0e@example.it>", "<abc\xc3\xa8@example.it>", "<a b@example.it>"}) {
        Msg unprintable;
        unprintable.set("Message-ID", id);
        r = check(unprintable);
        expect_code(r, FormalCode::syntax);
        EXPECT_EQ(r.field, "Message-ID") << id;
    }

    Msg latin1;
    latin1.set("Subject", "Citt\xe0");
    expect_code(check(latin1), FormalCode::syntax);

    Msg continuation_first;
    continuation_first.headers.insert(continuation_first.headers.begin(), " folded");
    expect_code(check(continuation_first), FormalCode::syntax);

    Msg long_body;
    long_body.body = "ok\r\n" + std::string(999, 'b') + "\r\n";
    r = check(long_body);
    expect_code(r, FormalCode::syntax);
    EXPECT_NE(r.reason.find("line 11"), std::string::npos) << r.reason;
    long_body.body = "ok\r\n" + std::string(998, 'b') + "\r\n";
    expect_code(check(long_body), FormalCode::ok);

    Msg nul_body;
    nul_body.body = std::string("a\0b\r\n", 5);
    expect_code(check(nul_body), FormalCode::syntax);

    Msg bad_cc;
    bad_cc.set("Cc", "luca@pec.other.it, <<<");
    expect_code(check(bad_cc), FormalCode::syntax);
}

TEST(FormalChecks, FromMustHoldExactlyOneValidAddress) {
    Msg none;
    none.drop("From");
    expect_code(check(none), FormalCode::from_missing);

    Msg two;
    two.set("From", "mario.rossi@pec.example.it, altro@pec.example.it");
    expect_code(check(two), FormalCode::from_invalid);

    Msg group;
    group.set("From", "Ufficio: mario.rossi@pec.example.it;");
    expect_code(check(group), FormalCode::from_invalid);

    Msg garbage;
    garbage.set("From", "Mario Rossi");
    expect_code(check(garbage), FormalCode::from_invalid);

    Msg no_domain;
    no_domain.set("From", "<mario.rossi@>");
    expect_code(check(no_domain), FormalCode::from_invalid);
}

TEST(FormalChecks, ToMustHoldAtLeastOneValidAddress) {
    Msg none;
    none.drop("To");
    expect_code(check(none, envelope(kSender, {"luca@pec.other.it"})), FormalCode::to_missing);

    Msg undisclosed;
    undisclosed.set("To", "undisclosed-recipients:;");
    expect_code(check(undisclosed, envelope(kSender, {"luca@pec.other.it"})), FormalCode::to_missing);

    // GMime alone would silently drop the garbage or the missing comma; the check does not.
    Msg garbage;
    garbage.set("To", "anna@pec.other.it, ,garbage<<");
    expect_code(check(garbage), FormalCode::to_invalid);

    Msg no_comma;
    no_comma.set("To", "anna@pec.other.it luca@pec.other.it");
    expect_code(check(no_comma), FormalCode::to_invalid);

    Msg double_dot;
    double_dot.set("To", "anna@pec..other.it");
    expect_code(check(double_dot), FormalCode::to_invalid);
}

TEST(FormalChecks, BccMustBeAbsentOrEmpty) {
    Msg with_bcc;
    with_bcc.set("Bcc", "nascosto@pec.other.it");
    auto r = check(with_bcc,
                   envelope(kSender, {"anna@pec.other.it", "luca@pec.other.it", "nascosto@pec.other.it"}));
    expect_code(r, FormalCode::bcc_present);
    EXPECT_EQ(r.field, "Bcc");

    Msg empty_bcc;
    empty_bcc.set("Bcc", "");
    expect_code(check(empty_bcc), FormalCode::ok);

    Msg empty_group;
    empty_group.set("Bcc", "undisclosed-recipients:;");
    expect_code(check(empty_group), FormalCode::ok);
}

TEST(FormalChecks, AuthenticationIsRequired) {
    expect_code(check(Msg{}, envelope(kSender, kRcpts), ""), FormalCode::not_authenticated);
}

TEST(FormalChecks, MailFromMustEqualFrom) {
    auto r = check(Msg{}, envelope("altro@pec.example.it", kRcpts), "altro@pec.example.it");
    expect_code(r, FormalCode::sender_mismatch);
    EXPECT_EQ(r.field, "MAIL FROM");
    // Case does not matter.
    expect_code(check(Msg{}, envelope("Mario.Rossi@PEC.example.it", kRcpts), "MARIO.ROSSI@pec.example.it"),
                FormalCode::ok);
}

TEST(FormalChecks, AuthenticatedUserMustEqualFrom) {
    expect_code(check(Msg{}, envelope(kSender, kRcpts), "altro@pec.example.it"), FormalCode::auth_mismatch);
}

TEST(FormalChecks, RcptSetMustEqualToPlusCc) {
    auto extra =
        check(Msg{}, envelope(kSender, {"anna@pec.other.it", "luca@pec.other.it", "spia@pec.other.it"}));
    expect_code(extra, FormalCode::recipients_extra);
    EXPECT_NE(extra.reason.find("spia@pec.other.it"), std::string::npos);

    auto missing = check(Msg{}, envelope(kSender, {"anna@pec.other.it"}));
    expect_code(missing, FormalCode::recipients_missing);
    EXPECT_NE(missing.reason.find("luca@pec.other.it"), std::string::npos);

    expect_code(check(Msg{}, envelope(kSender, {"ANNA@pec.other.it", "Luca@Pec.Other.It"})), FormalCode::ok);
}

TEST(FormalChecks, DuplicateRecipientsCollapse) {
    Msg dup;
    dup.set("To", "anna@pec.other.it, Anna Bis <ANNA@pec.other.it>");
    dup.set("Cc", "anna@pec.other.it, luca@pec.other.it");
    auto r = check(dup, envelope(kSender, {"anna@pec.other.it", "luca@pec.other.it", "anna@PEC.other.it"}));
    expect_code(r, FormalCode::ok);
    EXPECT_EQ(r.info.to.size(), 2u);  // extraction keeps what the header says
}

TEST(FormalChecks, GroupsCountTheirMembers) {
    Msg g;
    g.set("To", "Ufficio legale: anna@pec.other.it, \"Luca B.\" <luca@pec.other.it>;");
    g.drop("Cc");
    auto r = check(g);
    expect_code(r, FormalCode::ok);
    ASSERT_EQ(r.info.to.size(), 2u);
    EXPECT_EQ(r.info.to[1].name, "Luca B.");
    EXPECT_EQ(r.info.to[1].address, "luca@pec.other.it");

    Msg nested;
    nested.set("To", "A: B: anna@pec.other.it;;");
    expect_code(check(nested), FormalCode::to_invalid);
}

TEST(FormalChecks, CommentsInAddresses) {
    Msg c;
    c.set("From", "(ufficio) \"Rossi, Mario\" <mario.rossi@pec.example.it> (lavoro)");
    c.set("To", "anna@pec.other.it (Anna (la collega))");
    auto r = check(c);
    expect_code(r, FormalCode::ok);
    EXPECT_EQ(r.info.from.name, "Rossi, Mario");
    EXPECT_EQ(r.info.from.address, kSender);
    EXPECT_EQ(r.info.to[0].address, "anna@pec.other.it");

    Msg open_comment;
    open_comment.set("To", "anna@pec.other.it (non chiuso");
    expect_code(check(open_comment), FormalCode::to_invalid);
}

TEST(FormalChecks, EncodedHeadersAreDecoded) {
    Msg e;
    e.set("Subject", "=?UTF-8?B?RmF0dHVyYSDDqCBwcm9udGE=?=\r\n =?ISO-8859-1?Q?_citt=E0?=");
    e.set("From", "=?UTF-8?Q?Nicol=C3=B2_Rossi?= <mario.rossi@pec.example.it>");
    auto r = check(e);
    expect_code(r, FormalCode::ok);
    EXPECT_EQ(r.info.subject, "Fattura \xc3\xa8 pronta citt\xc3\xa0");
    EXPECT_EQ(r.info.from.name, "Nicol\xc3\xb2 Rossi");

    Msg folded;
    folded.set("Subject", "prima parte\r\n\tseconda parte");
    EXPECT_EQ(check(folded).info.subject, "prima parte\tseconda parte");

    Msg utf8;  // RFC 6532 raw UTF-8 is accepted
    utf8.set("Subject", "Citt\xc3\xa0");
    auto u = check(utf8);
    expect_code(u, FormalCode::ok);
    EXPECT_EQ(u.info.subject, "Citt\xc3\xa0");
}

TEST(FormalChecks, ReceiptTypeIsReadCaseInsensitively) {
    Msg b;
    b.set("x-tiporicevuta", " Breve ");
    auto r = check(b);
    expect_code(r, FormalCode::ok);
    EXPECT_EQ(r.info.receipt_type, ReceiptType::breve);
    EXPECT_TRUE(r.info.receipt_type_given);
    EXPECT_TRUE(r.info.receipt_type_valid);

    Msg s;
    s.set("X-TipoRicevuta", "sintetica");
    EXPECT_EQ(check(s).info.receipt_type, ReceiptType::sintetica);

    // Invalid value: accepted, falls back to completa, flagged (documented decision).
    Msg bad;
    bad.set("X-TipoRicevuta", "veloce");
    auto rb = check(bad);
    expect_code(rb, FormalCode::ok);
    EXPECT_EQ(rb.info.receipt_type, ReceiptType::completa);
    EXPECT_TRUE(rb.info.receipt_type_given);
    EXPECT_FALSE(rb.info.receipt_type_valid);
}

TEST(FormalChecks, RecipientCountLimit) {
    Msg many;
    std::string to;
    std::vector<std::string> rcpts;
    for (int i = 0; i < 51; ++i) {
        auto a = "d" + std::to_string(i) + "@pec.other.it";
        to += (i ? ", " : "") + a;
        rcpts.push_back(a);
    }
    many.set("To", to);
    many.drop("Cc");
    FormalLimits at_floor{50, FormalLimits::kMinVolume};
    expect_code(check(many, envelope(kSender, rcpts), kSender, at_floor), FormalCode::too_many_recipients);
    rcpts.pop_back();
    many.set("To", to.substr(0, to.rfind(',')));
    expect_code(check(many, envelope(kSender, rcpts), kSender, at_floor), FormalCode::ok);
}

TEST(FormalChecks, SizeTimesRecipientsLimitAndTheDmFloor) {
    FormalLimits floor{FormalLimits::kMinRecipients, FormalLimits::kMinVolume};
    EXPECT_NO_THROW(floor.validate());
    // 50 recipients x 629145 bytes = 30 MiB exactly: must pass at the floor.
    Msg big;
    std::string to;
    std::vector<std::string> rcpts;
    for (int i = 0; i < 50; ++i) {
        auto a = "d" + std::to_string(i) + "@pec.other.it";
        to += (i ? ", " : "") + a;
        rcpts.push_back(a);
    }
    big.set("To", to);
    big.drop("Cc");
    auto target = FormalLimits::kMinVolume / 50;
    auto head = big.bytes().size() - big.body.size();
    // 76-character lines (RFC 5322 lines stay under 998 octets).
    std::string body;
    while (body.size() < target - head)
        body += body.size() % 78 == 76 ? '\r' : body.size() % 78 == 77 ? '\n' : 'a';
    big.body = body;
    ASSERT_EQ(big.bytes().size() * 50, FormalLimits::kMinVolume - FormalLimits::kMinVolume % 50);
    expect_code(check(big, envelope(kSender, rcpts), kSender, floor), FormalCode::ok);
    big.body += std::string(1, 'a');
    auto r = check(big, envelope(kSender, rcpts), kSender, floor);
    expect_code(r, FormalCode::too_large);
    EXPECT_EQ(r.field, "SIZE");
}

TEST(FormalChecks, LimitsBelowTheDmFloorAreRejected) {
    EXPECT_THROW((FormalLimits{49, FormalLimits::kMinVolume}.validate()), Error);
    EXPECT_THROW((FormalLimits{50, FormalLimits::kMinVolume - 1}.validate()), Error);
    EXPECT_NO_THROW(FormalLimits{}.validate());
}

TEST(FormalChecks, HostileInputNeverCrashes) {
    std::mt19937 rng(20261125);
    const std::string base = Msg{}.bytes();
    for (int i = 0; i < 3000; ++i) {
        std::string s = base;
        int edits = 1 + static_cast<int>(rng() % 8);
        for (int k = 0; k < edits; ++k) {
            auto pos = rng() % (s.size() + 1);
            const char pool[] = {'<', '>',  '(',  ')',  '"',    '\\', ':', ';', ',',
                                 '@', '\r', '\n', '\0', '\x80', '[',  ']', ' '};
            s.insert(s.begin() + static_cast<long>(pos), pool[rng() % sizeof pool]);
        }
        auto r = check_submission(envelope(kSender, kRcpts), kSender, s, FormalLimits{});
        EXPECT_EQ(r.ok(), r.reason.empty());
    }
    EXPECT_EQ(check_submission(envelope(kSender, kRcpts), kSender, "", FormalLimits{}).code,
              FormalCode::syntax);
    std::vector<MailboxAddress> out;
    std::string err;
    EXPECT_FALSE(parse_address_list(std::string(100000, '('), out, &err));
    EXPECT_FALSE(parse_address_list("\"unterminated", out, &err));
}

}  // namespace
}  // namespace pecd::pec
