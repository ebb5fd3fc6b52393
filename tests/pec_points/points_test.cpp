// points_test.cpp - the decision layer of the access, reception and delivery points
//
// One PKI (openssl binary) and one in-test index per run: "Test PEC" signs and manages
// pec.test.example (so it is both the sending and the receiving provider, the same-domain
// case pec.md 5.5 allows), "Altro PEC" manages pec.altro.example. Every message a point
// builds is read back with pec::verify_message (trust store + index): it must be valid and
// of the expected kind, with the expected SMTP envelope and daticert fields.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <random>

#include "core/error.hpp"
#include "crypto/identity.hpp"
#include "mutate.hpp"
#include "pec/points/access_point.hpp"
#include "pec/points/delivery_point.hpp"
#include "pec/points/reception_point.hpp"
#include "pec/verify.hpp"
#include "test_index.hpp"
#include "test_pki.hpp"

namespace pecd::pec {
namespace {

const std::string kSender = "mario.rossi@pec.test.example";
const std::string kAnna = "anna@pec.altro.example";    // To, certificato
const std::string kCarlo = "carlo@pec.altro.example";  // Cc, certificato
const std::string kUfficio = "ufficio@example.com";    // To, esterno
const std::string kServiceBox = "posta-certificata@pec.test.example";

std::string original(const std::string& extra_headers = "") {
    return "From: Mario Rossi <" + kSender + ">\r\n" + "To: " + kAnna + ", " + kUfficio + "\r\n" +
           "Cc: " + kCarlo + "\r\n" + extra_headers +
           "Subject: Fattura n.1\r\n"
           "Message-ID: <client-123@mua.test.example>\r\n"
           "Date: Mon, 3 Feb 2025 10:15:00 +0100\r\n"
           "MIME-Version: 1.0\r\n"
           "Content-Type: text/plain; charset=utf-8\r\n\r\n"
           "Testo del messaggio.\r\n";
}

Envelope submission_envelope() {
    Envelope env;
    env.mail_from = kSender;
    env.recipients = {{kAnna, {}, {}}, {kUfficio, {}, {}}, {kCarlo, {}, {}}};
    return env;
}

Envelope hop_envelope(std::string from, std::vector<std::string> rcpts) {
    Envelope env;
    env.mail_from = std::move(from);
    for (auto& r : rcpts) env.recipients.push_back({std::move(r), {}, {}});
    return env;
}

class Points : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        pki_ = std::make_unique<test::TestPki>();
        crypto::KeySource src;
        src.certificate = pki_->path("signer.pem");
        src.key = pki_->path("signer.key");
        id_ = std::make_unique<crypto::SigningIdentity>(crypto::load_identity(src));
        trust_ =
            std::make_unique<crypto::TrustStore>(crypto::TrustStore::from_pem_file(pki_->path("ca.pem")));
        index_ = std::make_unique<test::TestIndex>();
        index_->add("providerName=Test PEC,o=postacert", "Test PEC S.p.A.", {"pec.test.example"},
                    {id_->certificate.get()});
        index_->add("providerName=Altro,o=postacert", "Altro PEC", {"PEC.Altro.Example"}, {});
    }
    static void TearDownTestSuite() {
        index_.reset();
        trust_.reset();
        id_.reset();
        pki_.reset();
    }

    static PecVerification verify(const std::string& data) {
        VerifyOptions o;
        o.trust = trust_.get();
        o.index = index_.get();
        return verify_message(data, o);
    }
    // Verifies a built message and checks it is valid and of the given kind.
    static PecVerification expect_kind(const BuiltMessage& m, MessageKind kind) {
        auto v = verify(m.data);
        EXPECT_TRUE(v.valid()) << ::testing::PrintToString(v.classification.problems)
                               << ::testing::PrintToString(v.inconsistencies) << v.chain.detail;
        EXPECT_TRUE(v.classification.kind.has_value());
        if (v.classification.kind) {
            EXPECT_EQ(kind_name(*v.classification.kind), kind_name(kind));
        }
        return v;
    }

    AccessPointContext access_ctx(std::string msgid = "pecd.1.node.1.1.aa@pec.test.example") const {
        AccessPointContext c;
        c.provider_domain = "pec.test.example";
        c.provider_name = "Test PEC S.p.A.";
        c.signer = id_.get();
        c.time = now_;
        c.pec_msgid = std::move(msgid);
        c.index = index_.get();
        return c;
    }
    ReceptionContext reception_ctx() const {
        ReceptionContext c;
        c.provider_domain = "pec.test.example";
        c.provider_name = "Test PEC S.p.A.";
        c.signer = id_.get();
        c.time = now_ + std::chrono::seconds(5);
        return c;
    }
    DeliveryPointContext delivery_ctx() const {
        return {"pec.test.example", "Test PEC S.p.A.", id_.get(), now_ + std::chrono::seconds(9)};
    }
    // An accepted submission's transport envelope (the input of the other points).
    BuiltMessage transport(const std::string& extra_headers = "") const {
        auto d = accept_submission(submission_envelope(), kSender, original(extra_headers), access_ctx());
        EXPECT_TRUE(d.accepted);
        return *d.transport;
    }

    TimePoint now_ = std::chrono::system_clock::now();
    static inline std::unique_ptr<test::TestPki> pki_;
    static inline std::unique_ptr<crypto::SigningIdentity> id_;
    static inline std::unique_ptr<crypto::TrustStore> trust_;
    static inline std::unique_ptr<test::TestIndex> index_;
};

// ---------------------------------------------------------------- access point

TEST_F(Points, AccessAcceptsAndBuildsReceiptAndEnvelopeWithOneTime) {
    auto d = accept_submission(submission_envelope(), kSender, original(), access_ctx());
    ASSERT_TRUE(d.accepted);
    EXPECT_FALSE(d.quarantine);
    EXPECT_EQ(d.formal, FormalCode::ok);

    auto r = expect_kind(d.receipt, MessageKind::accettazione);
    EXPECT_EQ(d.receipt.mail_from, kServiceBox);
    EXPECT_EQ(d.receipt.rcpt_to, std::vector<std::string>{kSender});
    ASSERT_TRUE(r.daticert);
    EXPECT_EQ(r.daticert->identificativo, "pecd.1.node.1.1.aa@pec.test.example");
    EXPECT_EQ(r.daticert->msgid.value_or(""), "<client-123@mua.test.example>");
    std::vector<DaticertRecipient> expected = {{kAnna, RecipientType::certificato},
                                               {kUfficio, RecipientType::esterno},
                                               {kCarlo, RecipientType::certificato}};
    EXPECT_EQ(r.daticert->destinatari, expected);

    ASSERT_TRUE(d.transport);
    auto t = expect_kind(*d.transport, MessageKind::transport_envelope);
    EXPECT_EQ(d.transport->mail_from, kSender);
    EXPECT_EQ(d.transport->rcpt_to, (std::vector<std::string>{kAnna, kUfficio, kCarlo}));
    EXPECT_EQ(d.transport->message_id, "pecd.1.node.1.1.aa@pec.test.example");
    ASSERT_TRUE(t.daticert);
    EXPECT_EQ(t.daticert->data, r.daticert->data);  // the single time reference
    EXPECT_EQ(t.daticert->data, daticert_date(now_));
    EXPECT_EQ(t.daticert->destinatari, expected);

    EXPECT_EQ(d.tracked_recipients, (std::vector<std::string>{kAnna, kCarlo}));
    EXPECT_EQ(d.log.event, "accettazione");
    EXPECT_EQ(d.log.pec_msgid, "pecd.1.node.1.1.aa@pec.test.example");
    EXPECT_EQ(d.log.client_msgid, "<client-123@mua.test.example>");
    EXPECT_EQ(d.log.sender, kSender);
    EXPECT_EQ(d.log.subject, "Fattura n.1");
    EXPECT_EQ(d.log.recipients, expected);
    EXPECT_EQ(d.log.generated_ids, (std::vector<std::string>{d.receipt.message_id, d.transport->message_id}));
    EXPECT_TRUE(d.log.reason.empty());
}

TEST_F(Points, AccessRefusesFormalErrorWithItsReason) {
    auto env = submission_envelope();
    env.recipients.push_back({"nascosto@pec.altro.example", {}, {}});  // a hidden recipient
    auto d = accept_submission(env, kSender, original(), access_ctx());
    EXPECT_FALSE(d.accepted);
    EXPECT_FALSE(d.quarantine);
    EXPECT_EQ(d.formal, FormalCode::recipients_extra);
    EXPECT_FALSE(d.transport);
    EXPECT_TRUE(d.tracked_recipients.empty());
    auto v = expect_kind(d.receipt, MessageKind::non_accettazione);
    EXPECT_EQ(d.receipt.rcpt_to, std::vector<std::string>{kSender});
    ASSERT_TRUE(v.daticert);
    EXPECT_EQ(v.daticert->errore, DaticertErrore::altro);
    ASSERT_TRUE(v.daticert->errore_esteso);
    EXPECT_FALSE(v.daticert->errore_esteso->empty());
    EXPECT_EQ(d.log.event, "non-accettazione");
    EXPECT_EQ(d.log.reason.rfind("recipients-extra", 0), 0u) << d.log.reason;
    EXPECT_EQ(d.log.generated_ids, std::vector<std::string>{d.receipt.message_id});
}

TEST_F(Points, AccessNotifiesTheAuthenticatedUserNotAForgedSender) {
    auto env = submission_envelope();
    auto d = accept_submission(env, "luigi@pec.test.example", original(), access_ctx());
    EXPECT_FALSE(d.accepted);
    EXPECT_EQ(d.formal, FormalCode::auth_mismatch);
    expect_kind(d.receipt, MessageKind::non_accettazione);
    EXPECT_EQ(d.receipt.rcpt_to, std::vector<std::string>{"luigi@pec.test.example"});
}

TEST_F(Points, AccessRefusesVirusAndQuarantines) {
    auto ctx = access_ctx();
    ctx.scan = ScanVerdict::found("Eicar-Signature");
    auto d = accept_submission(submission_envelope(), kSender, original(), ctx);
    EXPECT_FALSE(d.accepted);
    EXPECT_TRUE(d.quarantine);
    EXPECT_EQ(d.formal, FormalCode::ok);
    EXPECT_FALSE(d.transport);
    auto v = expect_kind(d.receipt, MessageKind::non_accettazione_virus);
    EXPECT_EQ(v.facts.headers.x_verifica_sicurezza.value_or(""), "errore");
    ASSERT_TRUE(v.daticert);
    EXPECT_EQ(v.daticert->errore, DaticertErrore::virus);
    EXPECT_NE(v.daticert->errore_esteso.value_or("").find("Eicar-Signature"), std::string::npos);
    EXPECT_EQ(d.log.event, "non-accettazione-virus");
    EXPECT_EQ(d.log.reason, "Eicar-Signature");
}

TEST_F(Points, AccessRefusesHostileBytesWithAValidNotice) {
    const std::vector<std::string> inputs = {
        "", "\r\n\r\n", std::string("From: \0\xff\r\n\r\n", 12), "garbage without header\r\n",
        "From: " + kSender + "\r\nTo: =?x?Q?\r\nSubject: \x01\x7f\r\n\r\n"};
    for (const auto& msg : inputs) {
        SCOPED_TRACE(::testing::PrintToString(msg));
        auto d = accept_submission(submission_envelope(), kSender, msg, access_ctx());
        EXPECT_FALSE(d.accepted);
        EXPECT_NE(d.formal, FormalCode::ok);
        EXPECT_FALSE(d.transport);
        expect_kind(d.receipt, MessageKind::non_accettazione);
        EXPECT_EQ(d.receipt.rcpt_to, std::vector<std::string>{kSender});
    }
    Envelope nobody;
    EXPECT_THROW(accept_submission(nobody, "", "", access_ctx()), Error);
}

TEST_F(Points, RecipientClassificationIsCaseInsensitiveAndNullIndexMeansEsterno) {
    EXPECT_EQ(classify_recipient("X@PEC.ALTRO.EXAMPLE", index_.get()), RecipientType::certificato);
    EXPECT_EQ(classify_recipient("x@example.com", index_.get()), RecipientType::esterno);
    EXPECT_EQ(classify_recipient("x@pec.altro.example", nullptr), RecipientType::esterno);
    EXPECT_EQ(classify_recipient("no-at-sign", index_.get()), RecipientType::esterno);
}

// ---------------------------------------------------------------- reception point

TEST_F(Points, ReceptionTakesCleanEnvelopeInCharge) {
    auto t = transport();
    auto env = hop_envelope(kSender, {kAnna, kCarlo});
    auto v = verify(t.data);
    ASSERT_TRUE(v.valid());
    auto d = receive_message(t.data, env, v, reception_ctx());
    EXPECT_EQ(d.action, ReceptionAction::take_in_charge);
    EXPECT_FALSE(d.quarantine);
    ASSERT_EQ(d.notices.size(), 1u);
    auto n = expect_kind(d.notices[0], MessageKind::presa_in_carico);
    EXPECT_EQ(d.notices[0].rcpt_to, std::vector<std::string>{kServiceBox});  // the mailReceipt
    EXPECT_EQ(d.notices[0].mail_from, kServiceBox);
    ASSERT_TRUE(n.daticert);
    EXPECT_EQ(n.daticert->ricezione, (std::vector<std::string>{kAnna, kCarlo}));
    EXPECT_EQ(n.daticert->identificativo, "pecd.1.node.1.1.aa@pec.test.example");
    EXPECT_EQ(n.daticert->msgid.value_or(""), "<client-123@mua.test.example>");
    EXPECT_EQ(n.daticert->mittente, kSender);
    EXPECT_EQ(n.daticert->oggetto.value_or(""), "Fattura n.1");
    EXPECT_EQ(n.daticert->data, daticert_date(reception_ctx().time));
    ASSERT_TRUE(d.delivery);
    EXPECT_EQ(d.delivery->data, t.data);  // delivered unmodified
    EXPECT_EQ(d.delivery->recipients, (std::vector<std::string>{kAnna, kCarlo}));
    EXPECT_TRUE(d.delivery->transport_envelope);
    EXPECT_FALSE(d.delivery->service_mailbox);
    EXPECT_TRUE(d.tracking.empty());
}

TEST_F(Points, ReceptionEnvelopeWithVirusNotifiesPerRecipientAndDoesNotDeliver) {
    auto t = transport();
    auto ctx = reception_ctx();
    ctx.scan = ScanVerdict::found("Eicar-Signature");
    auto d = receive_message(t.data, hop_envelope(kSender, {kAnna, kCarlo}), verify(t.data), ctx);
    EXPECT_EQ(d.action, ReceptionAction::virus);
    EXPECT_TRUE(d.quarantine);
    EXPECT_FALSE(d.delivery);
    ASSERT_EQ(d.notices.size(), 2u);
    std::vector<std::string> named;
    for (const auto& m : d.notices) {
        auto v = expect_kind(m, MessageKind::rilevazione_virus);
        EXPECT_EQ(m.rcpt_to, std::vector<std::string>{kServiceBox});
        EXPECT_EQ(v.facts.headers.x_mittente.value_or(""), kSender);
        ASSERT_TRUE(v.daticert);
        EXPECT_EQ(v.daticert->errore, DaticertErrore::virus);
        named.push_back(v.daticert->consegna.value_or(""));
    }
    EXPECT_EQ(named, (std::vector<std::string>{kAnna, kCarlo}));
}

TEST_F(Points, ReceptionForwardsPresaInCaricoToServiceMailboxWithTrackingEvents) {
    auto t = transport();
    auto taken =
        receive_message(t.data, hop_envelope(kSender, {kAnna, kCarlo}), verify(t.data), reception_ctx());
    ASSERT_EQ(taken.notices.size(), 1u);
    const auto& pic = taken.notices[0];
    auto d = receive_message(pic.data, hop_envelope(pic.mail_from, pic.rcpt_to), verify(pic.data),
                             reception_ctx());
    EXPECT_EQ(d.action, ReceptionAction::forward_receipt);
    ASSERT_TRUE(d.delivery);
    EXPECT_TRUE(d.delivery->service_mailbox);
    EXPECT_EQ(d.delivery->data, pic.data);
    EXPECT_TRUE(d.notices.empty());
    ASSERT_EQ(d.tracking.size(), 2u);
    for (const auto& f : d.tracking) {
        EXPECT_EQ(f.event, tracking::EventType::presa_in_carico);
        EXPECT_EQ(f.pec_msgid, "pecd.1.node.1.1.aa@pec.test.example");
    }
    EXPECT_EQ(d.tracking[0].recipient, kAnna);
    EXPECT_EQ(d.tracking[1].recipient, kCarlo);
}

TEST_F(Points, ReceptionForwardsDeliveryReceiptToTheUserWithTrackingEvent) {
    auto t = transport();
    auto notice = delivery_notice(t.data, verify(t.data), kAnna, StoreOutcome::ok(), delivery_ctx());
    ASSERT_TRUE(notice);
    const auto& m = notice->message;
    auto d = receive_message(m.data, hop_envelope(m.mail_from, m.rcpt_to), verify(m.data), reception_ctx());
    EXPECT_EQ(d.action, ReceptionAction::forward_receipt);
    ASSERT_TRUE(d.delivery);
    EXPECT_FALSE(d.delivery->service_mailbox);
    EXPECT_FALSE(d.delivery->transport_envelope);
    EXPECT_EQ(d.delivery->recipients, std::vector<std::string>{kSender});
    ASSERT_EQ(d.tracking.size(), 1u);
    EXPECT_EQ(d.tracking[0].event, tracking::EventType::delivered);
    EXPECT_EQ(d.tracking[0].recipient, kAnna);
    EXPECT_EQ(d.tracking[0].pec_msgid, "pecd.1.node.1.1.aa@pec.test.example");

    auto failed = delivery_notice(t.data, verify(t.data), kCarlo,
                                  {false, true, "5.1.1", "casella inesistente"}, delivery_ctx());
    ASSERT_TRUE(failed);
    const auto& f = failed->message;
    auto df = receive_message(f.data, hop_envelope(f.mail_from, f.rcpt_to), verify(f.data), reception_ctx());
    ASSERT_EQ(df.tracking.size(), 1u);
    EXPECT_EQ(df.tracking[0].event, tracking::EventType::non_delivery);
    EXPECT_EQ(df.tracking[0].recipient, kCarlo);
}

TEST_F(Points, ReceptionWrapsProviderSignedButInconsistentMessageInAnomaly) {
    auto t = transport();
    // The top-level X-Riferimento-Message-ID is not signed: changing it keeps the
    // signature intact but contradicts daticert msgid.
    auto tampered = t.data;
    auto pos = tampered.find("X-Riferimento-Message-ID: <client-123@mua.test.example>");
    ASSERT_NE(pos, std::string::npos);
    tampered.replace(pos, 55, "X-Riferimento-Message-ID: <altro-999@mua.test.example>");
    auto v = verify(tampered);
    ASSERT_FALSE(v.valid());
    ASSERT_EQ(v.provider_check.verdict, Verdict::pass);
    auto ctx = reception_ctx();
    ctx.accepts_ordinary = [](std::string_view) { return false; };  // irrelevant for provider-signed mail
    auto d = receive_message(tampered, hop_envelope(kSender, {kAnna}), v, ctx);
    EXPECT_EQ(d.action, ReceptionAction::anomaly);
    EXPECT_TRUE(d.notices.empty());
    EXPECT_TRUE(d.rejected.empty());
    ASSERT_TRUE(d.delivery);
    EXPECT_EQ(d.delivery->recipients, std::vector<std::string>{kAnna});
    EXPECT_FALSE(d.delivery->transport_envelope);
    auto a = verify(d.delivery->data);
    ASSERT_TRUE(a.classification.kind);
    EXPECT_EQ(*a.classification.kind, MessageKind::anomaly_envelope);
    EXPECT_TRUE(a.valid());
    EXPECT_EQ(a.facts.headers.x_trasporto.value_or(""), "errore");
}

TEST_F(Points, ReceptionOrdinaryMailFollowsMailboxPolicy) {
    std::string plain =
        "From: someone@example.com\r\nTo: anna@pec.test.example, bruno@pec.test.example\r\n"
        "Subject: ciao\r\nMessage-ID: <plain-1@example.com>\r\nDate: Mon, 3 Feb 2025 10:15:00 "
        "+0100\r\n\r\nciao\r\n";
    auto env = hop_envelope("someone@example.com", {"anna@pec.test.example", "bruno@pec.test.example"});
    auto v = verify(plain);
    ASSERT_FALSE(v.valid());

    auto all = receive_message(plain, env, v, reception_ctx());
    EXPECT_EQ(all.action, ReceptionAction::anomaly);
    ASSERT_TRUE(all.delivery);
    EXPECT_EQ(all.delivery->recipients.size(), 2u);
    auto a = verify(all.delivery->data);
    ASSERT_TRUE(a.classification.kind);
    EXPECT_EQ(*a.classification.kind, MessageKind::anomaly_envelope);
    EXPECT_TRUE(a.valid());

    auto ctx = reception_ctx();
    ctx.accepts_ordinary = [](std::string_view r) { return r == "anna@pec.test.example"; };
    auto some = receive_message(plain, env, v, ctx);
    EXPECT_EQ(some.action, ReceptionAction::anomaly);
    ASSERT_TRUE(some.delivery);
    EXPECT_EQ(some.delivery->recipients, std::vector<std::string>{"anna@pec.test.example"});
    ASSERT_EQ(some.rejected.size(), 1u);
    EXPECT_EQ(some.rejected[0].address, "bruno@pec.test.example");
    EXPECT_EQ(some.rejected[0].smtp_code, 550);
    EXPECT_EQ(some.rejected[0].enhanced_status, "5.7.1");

    ctx.accepts_ordinary = [](std::string_view) { return false; };
    auto none = receive_message(plain, env, v, ctx);
    EXPECT_EQ(none.action, ReceptionAction::reject);
    EXPECT_FALSE(none.delivery);
    EXPECT_EQ(none.rejected.size(), 2u);
}

TEST_F(Points, ReceptionWrapsHostileBytesInAValidAnomaly) {
    const std::vector<std::string> inputs = {
        "", "\r\n\r\n", std::string("X-Trasporto: posta-certificata\r\n\0\xff\r\n\r\n", 39),
        "Content-Type: multipart/signed; boundary=\"b\"\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n",
        // A bare CR inside a field the anomaly envelope copies (To) must not end its header.
        "From: someone@example.com\r\nTo: anna@pec.altro.example\r\rSubject: ciao\r\n\r\nciao\r\n"};
    for (const auto& msg : inputs) {
        SCOPED_TRACE(::testing::PrintToString(msg));
        auto v = verify(msg);
        EXPECT_FALSE(v.valid());
        auto d = receive_message(msg, hop_envelope("x@example.com", {kAnna}), v, reception_ctx());
        EXPECT_EQ(d.action, ReceptionAction::anomaly);
        ASSERT_TRUE(d.delivery);
        auto a = verify(d.delivery->data);
        ASSERT_TRUE(a.classification.kind);
        EXPECT_EQ(*a.classification.kind, MessageKind::anomaly_envelope);
        EXPECT_TRUE(a.valid());
        EXPECT_FALSE(delivery_notice(msg, v, kAnna, StoreOutcome::ok(), delivery_ctx()));
    }
}

// Bounded, seeded mutations (the fuzz targets' mutator): the same inputs every run.
constexpr int kHostileCases = 5000;
constexpr auto kHostileBudget = std::chrono::seconds(90);

const std::vector<std::string> kHeaderTokens = {"\r\n",
                                                "\n",
                                                "\r\n\r\n",
                                                "\r\n\t",
                                                ":",
                                                ",",
                                                ";",
                                                "<",
                                                ">",
                                                "\"",
                                                "(",
                                                ")",
                                                "@",
                                                "=?utf-8?q?caff=C3=A8?=",
                                                "=?x?b?",
                                                "From: ",
                                                "To: ",
                                                "Cc: ",
                                                "Bcc: x@y.example\r\n",
                                                "Subject: ",
                                                "Message-ID: ",
                                                "X-Riferimento-Message-ID: ",
                                                "Content-Type: multipart/mixed; boundary=\"",
                                                "\xff",
                                                std::string(1, '\0'),
                                                std::string(2000, 's'),
                                                kAnna,
                                                kSender};

// Whatever a client submits, every message the access point builds and signs (receipt,
// notice, transport envelope) passes the verifier as the kind it claims to be.
TEST_F(Points, HostileSubmissionsYieldVerifiableMessages) {
    const std::string bases[] = {
        original(), original("Reply-To: <r@pec.test.example>\r\nX-Tag: " + std::string(300, 'x') + "\r\n")};
    std::mt19937 rng(20261206u);
    const auto deadline = std::chrono::steady_clock::now() + kHostileBudget;
    int accepted = 0, refused = 0;
    for (int i = 0; i < kHostileCases && std::chrono::steady_clock::now() < deadline; ++i) {
        auto msg = fuzz::mutate(bases[i % 2], bases[(i + 1) % 2], rng, kHeaderTokens);
        SCOPED_TRACE("mutation " + std::to_string(i) + ": " + ::testing::PrintToString(msg.substr(0, 600)));
        AccessDecision d;
        try {
            d = accept_submission(submission_envelope(), kSender, msg,
                                  access_ctx("pecd.1.node.1." + std::to_string(i) + ".aa@pec.test.example"));
        } catch (const std::exception& e) {
            FAIL() << "the access point threw instead of deciding: " << e.what();
        }
        if (d.transport) {
            ++accepted;
            expect_kind(d.receipt, MessageKind::accettazione);
            expect_kind(*d.transport, MessageKind::transport_envelope);
        } else {
            ++refused;
            expect_kind(d.receipt, MessageKind::non_accettazione);
        }
        if (HasFailure()) break;
    }
    EXPECT_GT(accepted, 0);
    EXPECT_GT(refused, 0);
}

// Whatever arrives at the reception point for a local mailbox, ordinary mail or a
// provider's signed message damaged on the way, the anomaly envelope wrapping it passes the
// verifier, and a message that still verifies is taken in charge.
TEST_F(Points, HostileArrivalsYieldVerifiableAnomalies) {
    const std::string plain = "From: someone@example.com\r\nTo: " + kAnna +
                              "\r\nSubject: ciao\r\nMessage-ID: <plain-1@example.com>\r\nDate: Mon, 3 Feb "
                              "2025 10:15:00 +0100\r\n\r\nciao\r\n";
    const std::string bases[] = {plain, transport().data};
    std::mt19937 rng(20261207u);
    const auto deadline = std::chrono::steady_clock::now() + kHostileBudget;
    int anomalies = 0;
    for (int i = 0; i < kHostileCases && std::chrono::steady_clock::now() < deadline; ++i) {
        auto msg = fuzz::mutate(bases[i % 2], bases[(i + 1) % 2], rng, kHeaderTokens);
        SCOPED_TRACE("mutation " + std::to_string(i) + ": " + ::testing::PrintToString(msg.substr(0, 600)));
        auto v = verify(msg);
        ReceptionDecision d;
        try {
            d = receive_message(msg, hop_envelope(i % 2 ? kSender : "someone@example.com", {kAnna}), v,
                                reception_ctx());
        } catch (const std::exception& e) {
            FAIL() << "the reception point threw instead of deciding: " << e.what();
        }
        if (d.action == ReceptionAction::anomaly) {
            ++anomalies;
            ASSERT_TRUE(d.delivery);
            BuiltMessage anomaly;
            anomaly.data = d.delivery->data;
            expect_kind(anomaly, MessageKind::anomaly_envelope);
        } else if (v.valid()) {
            EXPECT_TRUE(d.action == ReceptionAction::take_in_charge ||
                        d.action == ReceptionAction::forward_receipt)
                << to_string(d.action);
        } else {
            ADD_FAILURE() << "an invalid message got " << to_string(d.action) << " instead of an anomaly";
        }
        if (HasFailure()) break;
    }
    EXPECT_GT(anomalies, kHostileCases / 4);
}

TEST_F(Points, ExtractPostacertFindsTheCarriedOriginal) {
    auto t = transport();
    auto p = extract_postacert(t.data);
    ASSERT_TRUE(p);
    EXPECT_NE(p->find("Subject: Fattura n.1"), std::string::npos);
    EXPECT_NE(p->find("Message-ID: <pecd.1.node.1.1.aa@pec.test.example>"), std::string::npos);
    EXPECT_FALSE(extract_postacert("From: a@b\r\n\r\nbody\r\n"));
    EXPECT_FALSE(extract_postacert(""));
}

// ---------------------------------------------------------------- delivery point

TEST_F(Points, DeliveryReceiptKindFollowsRequestAndToCcRule) {
    auto completa = transport();
    auto vc = verify(completa.data);
    auto to = delivery_notice(completa.data, vc, kAnna, StoreOutcome::ok(), delivery_ctx());
    ASSERT_TRUE(to);
    EXPECT_EQ(to->kind, MessageKind::consegna_completa);
    auto r = expect_kind(to->message, MessageKind::consegna_completa);
    EXPECT_EQ(to->message.mail_from, kServiceBox);
    EXPECT_EQ(to->message.rcpt_to, std::vector<std::string>{kSender});
    ASSERT_TRUE(r.daticert);
    EXPECT_EQ(r.daticert->consegna.value_or(""), kAnna);
    EXPECT_EQ(r.daticert->identificativo, "pecd.1.node.1.1.aa@pec.test.example");
    EXPECT_EQ(r.daticert->data, daticert_date(delivery_ctx().time));
    EXPECT_TRUE(r.facts.content.has_postacert);

    auto cc = delivery_notice(completa.data, vc, kCarlo, StoreOutcome::ok(), delivery_ctx());
    ASSERT_TRUE(cc);
    EXPECT_EQ(cc->kind, MessageKind::consegna_sintetica);
    auto rc = expect_kind(cc->message, MessageKind::consegna_sintetica);
    EXPECT_FALSE(rc.facts.content.has_postacert);

    auto breve = transport("X-TipoRicevuta: breve\r\n");
    auto vb = verify(breve.data);
    auto b = delivery_notice(breve.data, vb, kAnna, StoreOutcome::ok(), delivery_ctx());
    ASSERT_TRUE(b);
    EXPECT_EQ(b->kind, MessageKind::consegna_breve);
    expect_kind(b->message, MessageKind::consegna_breve);
    auto bc = delivery_notice(breve.data, vb, kCarlo, StoreOutcome::ok(), delivery_ctx());
    ASSERT_TRUE(bc);
    EXPECT_EQ(bc->kind, MessageKind::consegna_sintetica);

    // Not listed at all (ambiguous): primary.
    auto odd =
        delivery_notice(completa.data, vc, "terzo@pec.altro.example", StoreOutcome::ok(), delivery_ctx());
    ASSERT_TRUE(odd);
    EXPECT_EQ(odd->kind, MessageKind::consegna_completa);

    EXPECT_EQ(receipt_kind_for(ReceiptType::sintetica, false), MessageKind::consegna_sintetica);
    EXPECT_EQ(receipt_kind_for(ReceiptType::completa, true), MessageKind::consegna_sintetica);
}

TEST_F(Points, DeliveryFailureBuildsNonDeliveryNotice) {
    auto t = transport();
    auto v = verify(t.data);
    auto unknown =
        delivery_notice(t.data, v, kAnna, {false, true, "5.1.1", "casella inesistente"}, delivery_ctx());
    ASSERT_TRUE(unknown);
    EXPECT_EQ(unknown->kind, MessageKind::mancata_consegna);
    auto n = expect_kind(unknown->message, MessageKind::mancata_consegna);
    EXPECT_EQ(unknown->message.rcpt_to, std::vector<std::string>{kSender});
    ASSERT_TRUE(n.daticert);
    EXPECT_EQ(n.daticert->errore, DaticertErrore::no_dest);
    EXPECT_EQ(n.daticert->errore_esteso.value_or(""), "5.1.1 - casella inesistente");
    EXPECT_EQ(n.daticert->consegna.value_or(""), kAnna);

    auto full = delivery_notice(t.data, v, kCarlo, {false, false, "4.2.2", "casella piena"}, delivery_ctx());
    ASSERT_TRUE(full);
    auto nf = expect_kind(full->message, MessageKind::mancata_consegna);
    ASSERT_TRUE(nf.daticert);
    EXPECT_EQ(nf.daticert->errore, DaticertErrore::altro);
    EXPECT_EQ(nf.daticert->errore_esteso.value_or(""), "4.2.2 - casella piena");
}

TEST_F(Points, DeliveryOwesNothingForReceiptsAnomaliesAndOrdinaryMail) {
    auto t = transport();
    auto taken = receive_message(t.data, hop_envelope(kSender, {kAnna}), verify(t.data), reception_ctx());
    ASSERT_EQ(taken.notices.size(), 1u);
    const auto& pic = taken.notices[0].data;
    EXPECT_FALSE(delivery_notice(pic, verify(pic), kServiceBox, StoreOutcome::ok(), delivery_ctx()));
    EXPECT_FALSE(delivery_notice(pic, verify(pic), kServiceBox, {false, true, "5.1.1", "x"}, delivery_ctx()));

    std::string plain = "From: someone@example.com\r\nTo: " + kAnna +
                        "\r\nSubject: x\r\nDate: Mon, 3 Feb 2025 10:15:00 +0100\r\n\r\nciao\r\n";
    auto an =
        receive_message(plain, hop_envelope("someone@example.com", {kAnna}), verify(plain), reception_ctx());
    ASSERT_TRUE(an.delivery);
    const auto& anomaly = an.delivery->data;
    EXPECT_FALSE(delivery_notice(anomaly, verify(anomaly), kAnna, StoreOutcome::ok(), delivery_ctx()));
    EXPECT_FALSE(delivery_notice(plain, verify(plain), kAnna, {false, true, "5.1.1", "x"}, delivery_ctx()));
}

}  // namespace
}  // namespace pecd::pec
