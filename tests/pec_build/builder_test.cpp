// builder_test.cpp - every PEC message kind built, signed, verified by `openssl cms -verify`,
// and checked header by header and part by part against pec.md sections 2-4
#include "pec/builder.hpp"

#include <gtest/gtest.h>

#include <regex>

#include "core/error.hpp"
#include "crypto/identity.hpp"
#include "pec/message_id.hpp"
#include "support.hpp"

using namespace pecd;
using namespace pecd::pec;
using namespace pectest;

namespace {

constexpr const char* kSender = "mario.rossi@pec.test.it";
constexpr const char* kDomain = "pec.test.it";
constexpr const char* kClientId = "<client-123@mua.test.it>";

const std::string kPdfBase64 =
    "JVBERi0xLjQKJcOkw7zDtsOfCjIgMCBvYmoKPDwvTGVuZ3RoIDMgMCBSL0ZpbHRlci9GbGF0ZURl\r\n"
    "Y29kZT4+CnN0cmVhbQp4nDPQM1Qo5ypUMFAwALJMLU31jBQsTAz1LBSKUrnCtRTyuAIVAAAAAP//\r\n";

std::string original_message(const std::string& extra_headers = "") {
    return "Received: from mua.test.it (mua.test.it [192.0.2.10])\r\n"
           "\tby smtp.pec.test.it with ESMTPSA; Mon, 3 Feb 2025 10:15:06 +0100\r\n"
           "From: Mario Rossi <mario.rossi@pec.test.it>\r\n"
           "To: anna@pec.altro.it, ufficio@example.com\r\n"
           "Cc: carlo@pec.altro.it\r\n"
           "Subject: =?UTF-8?Q?Fattura_n.1_caff=C3=A8?=\r\n"
           "Message-ID: <client-123@mua.test.it>\r\n"
           "Date: Mon, 3 Feb 2025 10:15:00 +0100\r\n" +
           extra_headers +
           "MIME-Version: 1.0\r\n"
           "Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
           "\r\n"
           "--b1\r\n"
           "Content-Type: text/plain; charset=utf-8\r\n"
           "\r\n"
           "Testo del messaggio.\r\n"
           "--b1\r\n"
           "Content-Type: application/pdf; name=\"fattura.pdf\"\r\n"
           "Content-Disposition: attachment; filename=\"fattura.pdf\"\r\n"
           "Content-Transfer-Encoding: base64\r\n"
           "\r\n" +
           kPdfBase64 + "--b1--\r\n";
}

Envelope make_envelope() {
    Envelope e;
    e.mail_from = kSender;
    e.recipients = {
        {"anna@pec.altro.it", {}, {}}, {"ufficio@example.com", {}, {}}, {"carlo@pec.altro.it", {}, {}}};
    return e;
}

TimePoint fixed_time() {
    using namespace std::chrono;
    return sys_days(year(2025) / February / 3) + hours(9) + minutes(15) + seconds(7);  // 10:15:07 +0100
}

TransactionContext make_context(const std::string& pec_msgid) {
    TransactionContext tx;
    tx.time = fixed_time();
    tx.provider_domain = kDomain;
    tx.provider_name = "Test PEC S.p.A.";
    tx.pec_msgid = pec_msgid;
    tx.recipients = {{"anna@pec.altro.it", RecipientType::certificato},
                     {"ufficio@example.com", RecipientType::esterno},
                     {"carlo@pec.altro.it", RecipientType::certificato}};
    return tx;
}

class PecBuild : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir_ = new TempDir;
        pki_ = new TestPki;
        pki_->make_ca(dir_->path);
        pki_->make_leaf();
        crypto::KeySource src;
        src.certificate = pki_->cert;
        src.key = pki_->key;
        id_ = new crypto::SigningIdentity(crypto::load_identity(src));
    }
    static void TearDownTestSuite() {
        delete id_;
        delete pki_;
        delete dir_;
    }

    MessageIdGenerator ids_{kDomain, "node-a"};
    std::string pec_msgid_ = ids_.next(fixed_time());

    BuiltMessage build(MessageKind kind, TransactionContext tx,
                       const std::string& original = original_message()) {
        return build_message(kind, original, make_envelope(), tx, *id_);
    }

    // Everything pec.md requires of every message of this kind; returns the view.
    MessageView check_common(MessageKind kind, const BuiltMessage& b, const std::string& original,
                             const std::string& expected_to) {
        auto v = view_message(b.data);
        // PEC header and the absence of the other one.
        EXPECT_EQ(v.header(lower(std::string(pec_header_name(kind)))), pec_header_value(kind));
        EXPECT_FALSE(v.has(is_envelope(kind) ? "x-ricevuta" : "x-trasporto"));
        if (auto vs = verifica_sicurezza(kind))
            EXPECT_EQ(v.header("x-verificasicurezza"), *vs);
        else
            EXPECT_FALSE(v.has("x-verificasicurezza"));
        EXPECT_EQ(v.has("x-mittente"), kind == MessageKind::rilevazione_virus);
        // Subject, Date, From, To.
        EXPECT_EQ(v.header("subject"),
                  std::string(subject_prefix(kind)) + "=?UTF-8?Q?Fattura_n.1_caff=C3=A8?=");
        EXPECT_EQ(v.header("date"), "Mon, 3 Feb 2025 10:15:07 +0100");
        if (is_envelope(kind)) {
            EXPECT_EQ(v.header("from"),
                      "\"Per conto di: mario.rossi@pec.test.it\" <posta-certificata@pec.test.it>");
            EXPECT_EQ(v.header("to"), "anna@pec.altro.it, ufficio@example.com");
            EXPECT_EQ(v.header("cc"), "carlo@pec.altro.it");
            EXPECT_EQ(v.header("received").substr(0, 16), "from mua.test.it");
            EXPECT_EQ(b.mail_from, kSender);
            EXPECT_EQ(b.rcpt_to.size(), 3u);
        } else {
            EXPECT_EQ(v.header("from"), "posta-certificata@pec.test.it");
            EXPECT_EQ(v.header("to"), expected_to);
            EXPECT_FALSE(v.has("reply-to"));
            EXPECT_FALSE(v.has("received"));
            EXPECT_EQ(b.mail_from, "posta-certificata@pec.test.it");
            EXPECT_EQ(b.rcpt_to, std::vector<std::string>{expected_to});
            // A receipt's own Message-ID is distinct from the PEC msgid, at the provider domain.
            EXPECT_NE(b.message_id, pec_msgid_);
            EXPECT_EQ(v.header("message-id"), "<" + b.message_id + ">");
            EXPECT_NE(b.message_id.find("@pec.test.it"), std::string::npos);
        }
        if (kind != MessageKind::anomaly_envelope) {
            EXPECT_EQ(v.header("x-riferimento-message-id"), kClientId);
        }
        // multipart/signed with the S/MIME parameters.
        EXPECT_EQ(v.top_type, "multipart/signed");
        // GMime files Content-* under the MIME part: read the raw top-level header.
        auto ct = header_block(b.data);
        ct = ct.substr(ct.find("\r\nContent-Type: multipart/signed;"));
        EXPECT_NE(ct.find("protocol=\"application/pkcs7-signature\""), std::string::npos) << ct;
        EXPECT_NE(ct.find("micalg=sha-256"), std::string::npos) << ct;
        // Structure: text first, daticert before postacert, signature last.
        std::vector<std::string> expected = {"0:multipart/signed", "1:multipart/mixed",
                                             "2:multipart/alternative", "3:text/plain", "3:text/html"};
        if (daticert_tipo(kind)) expected.push_back("2:application/xml:daticert.xml");
        if (carries_original(kind)) expected.push_back("2:message/rfc822:postacert.eml");
        expected.push_back("1:application/pkcs7-signature:smime.p7s");
        EXPECT_EQ(v.structure, expected);
        // Texts: Italian and English, the PEC msgid, HTML without any reference.
        const PartInfo* plain = nullptr;
        const PartInfo* html = nullptr;
        for (const auto& p : v.parts) {
            if (p.content_type == "text/plain" && !plain) plain = &p;
            if (p.content_type == "text/html" && !html) html = &p;
        }
        EXPECT_TRUE(plain && html);
        if (plain && html) {
            EXPECT_EQ(plain->charset, "iso-8859-1");
            if (kind != MessageKind::anomaly_envelope) {
                EXPECT_NE(plain->decoded.find("Identificativo del messaggio: " + pec_msgid_),
                          std::string::npos);
                EXPECT_NE(plain->decoded.find("Message identifier: " + pec_msgid_), std::string::npos);
            }
            EXPECT_NE(plain->decoded.find("caff\xe8"), std::string::npos);  // Latin-1 subject in the text
            auto h = lower(html->decoded);
            for (const char* bad : {"src=", "href=", "url(", "<img", "<script", "<link", "<style", "@import",
                                    "<object", "<iframe", "onload="})
                EXPECT_EQ(h.find(bad), std::string::npos) << bad;
            EXPECT_NE(html->decoded.find("<h3>"), std::string::npos);
        }
        // The signature verifies with the openssl binary against the test CA.
        TempDir work;
        auto r = openssl_verify(b.data, pki_->ca_cert, work.path);
        EXPECT_EQ(r.status, 0) << r.output;
        // daticert parses back to the same model.
        if (daticert_tipo(kind)) {
            const PartInfo* dc = v.part("daticert.xml");
            EXPECT_TRUE(dc);
            if (dc) {
                auto parsed = parse_daticert(dc->decoded);
                EXPECT_TRUE(b.daticert);
                if (b.daticert) {
                    EXPECT_EQ(parsed, *b.daticert);
                }
                EXPECT_EQ(parsed.tipo, *daticert_tipo(kind));
                EXPECT_EQ(parsed.mittente, kSender);
                EXPECT_EQ(parsed.destinatari.size(), 3u);
                EXPECT_EQ(parsed.destinatari.at(1).type, RecipientType::esterno);
                EXPECT_EQ(parsed.risposte, kSender);
                EXPECT_EQ(parsed.oggetto, "Fattura n.1 caff\xc3\xa8");
                EXPECT_EQ(parsed.gestore_emittente, "Test PEC S.p.A.");
                EXPECT_EQ(parsed.data, (DaticertDate{"+0100", "03/02/2025", "10:15:07"}));
                EXPECT_EQ(parsed.identificativo, pec_msgid_);
                EXPECT_EQ(parsed.msgid, kClientId);
                EXPECT_EQ(parsed.ricevuta.has_value(), carries_receipt_type(kind));
                EXPECT_EQ(parsed.consegna.has_value(), names_consegna(kind));
            }
        } else {
            EXPECT_FALSE(b.daticert);
        }
        (void)original;
        return v;
    }

    // postacert.eml: the original with Message-ID = PEC msgid and X-Riferimento-Message-ID.
    void check_postacert(const MessageView& v) {
        const PartInfo* p = v.part("postacert.eml");
        ASSERT_TRUE(p);
        auto inner = view_message(p->decoded);
        EXPECT_EQ(inner.header("message-id"), "<" + pec_msgid_ + ">");
        EXPECT_EQ(inner.headers.at("message-id").size(), 1u);
        EXPECT_EQ(inner.header("x-riferimento-message-id"), kClientId);
        EXPECT_EQ(inner.header("subject"), "=?UTF-8?Q?Fattura_n.1_caff=C3=A8?=");
        const PartInfo* pdf = inner.part("fattura.pdf");
        ASSERT_TRUE(pdf);
        EXPECT_EQ(pdf->decoded.substr(0, 8), "%PDF-1.4");
    }

    static TempDir* dir_;
    static TestPki* pki_;
    static crypto::SigningIdentity* id_;
};

TempDir* PecBuild::dir_ = nullptr;
TestPki* PecBuild::pki_ = nullptr;
crypto::SigningIdentity* PecBuild::id_ = nullptr;

}  // namespace

TEST_F(PecBuild, TransportEnvelope) {
    auto original = original_message("X-TipoRicevuta: breve\r\n");
    auto b = build(MessageKind::transport_envelope, make_context(pec_msgid_), original);
    auto v = check_common(MessageKind::transport_envelope, b, original, "");
    EXPECT_EQ(b.message_id, pec_msgid_);
    EXPECT_EQ(v.header("message-id"), "<" + pec_msgid_ + ">");
    // No Reply-To in the original: the original From: address is inserted.
    EXPECT_EQ(v.header("reply-to"), kSender);
    EXPECT_EQ(v.header("x-tiporicevuta"), "breve");
    EXPECT_EQ(b.daticert->ricevuta, ReceiptType::breve);
    EXPECT_EQ(b.daticert->errore, DaticertErrore::nessuno);
    check_postacert(v);
}

TEST_F(PecBuild, TransportEnvelopeKeepsTheOriginalReplyTo) {
    auto original =
        original_message("Reply-To: Segreteria <segreteria@pec.test.it>\r\nX-Tiporicevuta: sintetica\r\n");
    auto b = build(MessageKind::transport_envelope, make_context(pec_msgid_), original);
    auto v = view_message(b.data);
    EXPECT_EQ(v.header("reply-to"), "Segreteria <segreteria@pec.test.it>");
    EXPECT_EQ(v.headers.at("reply-to").size(), 1u);
    EXPECT_EQ(v.header("x-tiporicevuta"), "sintetica");  // header name matched case-insensitively
    EXPECT_EQ(b.daticert->risposte, "segreteria@pec.test.it");
    EXPECT_EQ(b.daticert->ricevuta, ReceiptType::sintetica);
}

TEST_F(PecBuild, AnomalyEnvelope) {
    auto tx = make_context("");
    tx.error_text = "firma non valida";
    auto original = original_message();
    auto b = build(MessageKind::anomaly_envelope, tx, original);
    auto v = check_common(MessageKind::anomaly_envelope, b, original, "");
    // Message-ID unchanged from the received message; no daticert; the message as received.
    EXPECT_EQ(v.header("message-id"), kClientId);
    EXPECT_EQ(v.header("reply-to"), kSender);
    EXPECT_FALSE(v.part("daticert.xml"));
    const PartInfo* p = v.part("postacert.eml");
    ASSERT_TRUE(p);
    EXPECT_EQ(view_message(p->decoded).header("message-id"), kClientId);
    EXPECT_NE(v.parts.at(0).decoded.find("firma non valida"), std::string::npos);
}

TEST_F(PecBuild, Accettazione) {
    auto b = build(MessageKind::accettazione, make_context(pec_msgid_));
    auto v = check_common(MessageKind::accettazione, b, original_message(), kSender);
    EXPECT_EQ(b.daticert->errore, DaticertErrore::nessuno);
    EXPECT_FALSE(b.daticert->ricevuta);
    // Each recipient marked certified or ordinary mail.
    auto& text = v.parts.at(0).decoded;
    EXPECT_NE(text.find("anna@pec.altro.it (\"posta certificata\")"), std::string::npos) << text;
    EXPECT_NE(text.find("ufficio@example.com (\"posta ordinaria\")"), std::string::npos);
}

TEST_F(PecBuild, NonAccettazione) {
    auto tx = make_context(pec_msgid_);
    tx.error_text = "non e' stata utilizzata la cifratura del canale";
    auto b = build(MessageKind::non_accettazione, tx);
    auto v = check_common(MessageKind::non_accettazione, b, original_message(), kSender);
    EXPECT_EQ(b.daticert->errore, DaticertErrore::altro);
    EXPECT_EQ(b.daticert->errore_esteso, tx.error_text);
    EXPECT_FALSE(v.part("postacert.eml"));
}

TEST_F(PecBuild, NonAccettazioneVirus) {
    auto tx = make_context(pec_msgid_);
    tx.error_text = "Eicar-Signature";
    auto b = build(MessageKind::non_accettazione_virus, tx);
    check_common(MessageKind::non_accettazione_virus, b, original_message(), kSender);
    EXPECT_EQ(b.daticert->errore, DaticertErrore::virus);
    EXPECT_EQ(b.daticert->errore_esteso, "Eicar-Signature");
}

TEST_F(PecBuild, PresaInCarico) {
    auto tx = make_context(pec_msgid_);
    tx.notify_address = "ricevute@pec.test.it";
    tx.covered = {"anna@pec.altro.it", "carlo@pec.altro.it"};
    auto b = build(MessageKind::presa_in_carico, tx);
    check_common(MessageKind::presa_in_carico, b, original_message(), "ricevute@pec.test.it");
    EXPECT_EQ(b.daticert->ricezione, tx.covered);
    EXPECT_FALSE(b.daticert->consegna);
    tx.notify_address.clear();
    EXPECT_THROW(build(MessageKind::presa_in_carico, tx), Error);
}

TEST_F(PecBuild, RilevazioneVirus) {
    auto tx = make_context(pec_msgid_);
    tx.notify_address = "ricevute@pec.test.it";
    tx.recipient = "anna@pec.altro.it";
    auto b = build(MessageKind::rilevazione_virus, tx);
    auto v = check_common(MessageKind::rilevazione_virus, b, original_message(), "ricevute@pec.test.it");
    EXPECT_EQ(v.header("x-mittente"), kSender);
    EXPECT_EQ(b.daticert->errore, DaticertErrore::virus);
    EXPECT_EQ(b.daticert->consegna, "anna@pec.altro.it");
}

TEST_F(PecBuild, MancataConsegna) {
    auto tx = make_context(pec_msgid_);
    tx.recipient = "anna@pec.altro.it";
    tx.errore = DaticertErrore::no_dest;
    tx.error_text = "5.1.1 - Test PEC S.p.A. - indirizzo non valido";
    auto b = build(MessageKind::mancata_consegna, tx);
    check_common(MessageKind::mancata_consegna, b, original_message(), kSender);
    EXPECT_EQ(b.daticert->errore, DaticertErrore::no_dest);
    EXPECT_EQ(b.daticert->consegna, "anna@pec.altro.it");
    EXPECT_EQ(b.daticert->errore_esteso, tx.error_text);
    tx.recipient.clear();
    EXPECT_THROW(build(MessageKind::mancata_consegna, tx), Error);
}

TEST_F(PecBuild, MancataConsegnaVirus) {
    auto tx = make_context(pec_msgid_);
    tx.recipient = "anna@pec.altro.it";
    auto b = build(MessageKind::mancata_consegna_virus, tx);
    check_common(MessageKind::mancata_consegna_virus, b, original_message(), kSender);
    EXPECT_EQ(b.daticert->errore, DaticertErrore::virus);
}

TEST_F(PecBuild, MancataConsegnaTimeout12h) {
    auto tx = make_context(pec_msgid_);
    tx.recipient = "anna@pec.altro.it";
    auto b = build(MessageKind::mancata_consegna_timeout_12h, tx);
    auto v = check_common(MessageKind::mancata_consegna_timeout_12h, b, original_message(), kSender);
    EXPECT_NE(v.parts.at(0).decoded.find("12 ore"), std::string::npos);
    EXPECT_EQ(b.daticert->tipo, DaticertTipo::preavviso_errore_consegna);
}

TEST_F(PecBuild, MancataConsegnaTimeout24h) {
    auto tx = make_context(pec_msgid_);
    tx.recipient = "anna@pec.altro.it";
    auto b = build(MessageKind::mancata_consegna_timeout_24h, tx);
    auto v = check_common(MessageKind::mancata_consegna_timeout_24h, b, original_message(), kSender);
    EXPECT_NE(v.parts.at(0).decoded.find("24 ore"), std::string::npos);
    EXPECT_NE(v.parts.at(0).decoded.find("esito negativo"), std::string::npos);
}

TEST_F(PecBuild, ConsegnaCompleta) {
    auto tx = make_context(pec_msgid_);
    tx.recipient = "anna@pec.altro.it";
    auto b = build(MessageKind::consegna_completa, tx);
    auto v = check_common(MessageKind::consegna_completa, b, original_message(), kSender);
    EXPECT_EQ(b.daticert->ricevuta, ReceiptType::completa);
    EXPECT_EQ(b.daticert->consegna, "anna@pec.altro.it");
    check_postacert(v);
}

TEST_F(PecBuild, ConsegnaCompletaFromTheEnvelopesPostacertIsIdempotent) {
    // At the delivery point the original is postacert.eml of the transport envelope.
    auto env = build(MessageKind::transport_envelope, make_context(pec_msgid_));
    auto inner = view_message(env.data).part("postacert.eml")->decoded;
    auto tx = make_context(pec_msgid_);
    tx.recipient = "anna@pec.altro.it";
    tx.client_msgid = kClientId;
    auto b = build(MessageKind::consegna_completa, tx, inner);
    auto v = check_common(MessageKind::consegna_completa, b, inner, kSender);
    check_postacert(v);
}

TEST_F(PecBuild, ConsegnaBreve) {
    auto tx = make_context(pec_msgid_);
    tx.recipient = "anna@pec.altro.it";
    auto b = build(MessageKind::consegna_breve, tx);
    auto v = check_common(MessageKind::consegna_breve, b, original_message(), kSender);
    EXPECT_EQ(b.daticert->ricevuta, ReceiptType::breve);
    auto inner = view_message(v.part("postacert.eml")->decoded);
    EXPECT_EQ(inner.header("message-id"), "<" + pec_msgid_ + ">");
    EXPECT_FALSE(inner.part("fattura.pdf"));
    const PartInfo* h = inner.part("fattura.pdf.hash");
    ASSERT_TRUE(h);
    EXPECT_EQ(h->content_type, "text/plain");
    EXPECT_TRUE(std::regex_match(h->decoded, std::regex("[0-9a-f]{40}"))) << h->decoded;
    EXPECT_EQ(inner.structure, (std::vector<std::string>{"0:multipart/mixed", "1:text/plain",
                                                         "1:text/plain:fattura.pdf.hash"}));
}

TEST_F(PecBuild, ConsegnaSintetica) {
    auto tx = make_context(pec_msgid_);
    tx.recipient = "carlo@pec.altro.it";
    auto b = build(MessageKind::consegna_sintetica, tx);
    auto v = check_common(MessageKind::consegna_sintetica, b, original_message(), kSender);
    EXPECT_EQ(b.daticert->ricevuta, ReceiptType::sintetica);
    EXPECT_FALSE(v.part("postacert.eml"));
}

TEST_F(PecBuild, TamperedSignedPartFailsVerification) {
    auto b = build(MessageKind::accettazione, make_context(pec_msgid_));
    auto pos = b.data.find("Content-Type: multipart/mixed");
    ASSERT_NE(pos, std::string::npos);
    auto tampered = b.data;
    tampered.replace(tampered.find("iso-8859-1", pos), 10, "iso-8859-2");
    TempDir work;
    EXPECT_NE(openssl_verify(tampered, pki_->ca_cert, work.path).status, 0);
    EXPECT_EQ(openssl_verify(b.data, pki_->ca_cert, work.path).status, 0);
}

TEST_F(PecBuild, LineFeedOnlyOriginalIsCanonicalisedAndStillVerifies) {
    auto original = original_message();
    std::string lf;
    for (char c : original)
        if (c != '\r') lf += c;
    auto tx = make_context(pec_msgid_);
    auto b = build(MessageKind::transport_envelope, tx, lf);
    EXPECT_EQ(b.data.find("\n"), b.data.find("\r\n") + 1);
    for (std::size_t i = 0; i < b.data.size(); ++i)
        if (b.data[i] == '\n') {
            ASSERT_EQ(b.data[i - 1], '\r') << "bare LF at " << i;
        }
    TempDir work;
    EXPECT_EQ(openssl_verify(b.data, pki_->ca_cert, work.path).status, 0);
}

TEST_F(PecBuild, OriginalWithoutMessageIdOrSubject) {
    std::string original =
        "From: a@pec.test.it\r\nTo: anna@pec.altro.it\r\nContent-Type: text/plain\r\n\r\nciao\r\n";
    auto b = build(MessageKind::transport_envelope, make_context(pec_msgid_), original);
    auto v = view_message(b.data);
    EXPECT_EQ(v.header("subject"), "POSTA CERTIFICATA:");
    EXPECT_FALSE(v.has("x-riferimento-message-id"));
    EXPECT_FALSE(b.daticert->msgid);
    EXPECT_FALSE(b.daticert->oggetto);
    auto inner = view_message(v.part("postacert.eml")->decoded);
    EXPECT_EQ(inner.header("message-id"), "<" + pec_msgid_ + ">");
    TempDir work;
    EXPECT_EQ(openssl_verify(b.data, pki_->ca_cert, work.path).status, 0);
}

TEST_F(PecBuild, HostileOriginalsStillGiveVerifiableMessages) {
    std::string nul_bytes("From: a@b.it\r\nSubject: \x00\xff\xfe\r\n\r\n\x00\x01\x02", 30);
    std::string many_headers;
    for (int i = 0; i < 5000; ++i) many_headers += "X-H" + std::to_string(i) + ": v\r\n";
    many_headers += "\r\nbody";
    std::vector<std::string> originals = {
        "",
        "no header at all, just text",
        "\r\n\r\n",
        nul_bytes,
        many_headers,
        "Subject: =?UTF-8?B?!!!invalid?=\r\nFrom: <<<>>>\r\nReply-To: ,,,\r\n"
        "Message-ID: no-brackets\r\n\r\nx",
        "Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n--\r\n"};
    TempDir work;
    for (const auto& original : originals) {
        for (auto kind :
             {MessageKind::transport_envelope, MessageKind::consegna_breve, MessageKind::anomaly_envelope}) {
            auto tx = make_context(pec_msgid_);
            tx.recipient = "anna@pec.altro.it";
            auto b = build(kind, tx, original);
            EXPECT_EQ(openssl_verify(b.data, pki_->ca_cert, work.path).status, 0) << kind_name(kind);
            auto subject = b.data.find("\r\nSubject:");
            ASSERT_NE(subject, std::string::npos);
            EXPECT_EQ(b.data.substr(subject, b.data.find("\r\n", subject + 2) - subject).find('\0'),
                      std::string::npos);
            if (b.daticert) {
                auto v = view_message(b.data);
                ASSERT_TRUE(v.part("daticert.xml"));
                EXPECT_EQ(parse_daticert(v.part("daticert.xml")->decoded), *b.daticert);
            }
        }
    }
}
