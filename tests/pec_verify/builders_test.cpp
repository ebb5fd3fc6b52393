// builders_test.cpp - every message kind the producing side builds (pec::build_message)
// passes the reading side: intact signature, chain to the test CA, signer and From domain
// in the index, the same kind back from classification, headers consistent with daticert.
#include <gtest/gtest.h>

#include "crypto/identity.hpp"
#include "pec/builder.hpp"
#include "pec/verify.hpp"
#include "test_index.hpp"
#include "test_pki.hpp"

namespace pecd::pec {
namespace {

const std::string kOriginal =
    "From: Mario Rossi <mario.rossi@pec.test.example>\r\n"
    "To: anna@pec.altro.example, ufficio@example.com\r\n"
    "Cc: carlo@pec.altro.example\r\n"
    "Subject: =?UTF-8?Q?Fattura_n.1_caff=C3=A8?=\r\n"
    "Message-ID: <client-123@mua.test.example>\r\n"
    "Date: Mon, 3 Feb 2025 10:15:00 +0100\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
    "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nTesto del messaggio.\r\n"
    "--b1\r\nContent-Type: application/pdf; name=\"fattura.pdf\"\r\n"
    "Content-Disposition: attachment; filename=\"fattura.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    "JVBERi0xLjQKJcOkw7zDtsOfCjIgMCBvYmoKPDwvTGVuZ3RoIDMgMCBSL0ZpbHRlci9GbGF0ZURl\r\n"
    "--b1--\r\n";

TEST(BuiltMessages, EveryKindPassesTheVerifier) {
    test::TestPki pki;
    crypto::KeySource src;
    src.certificate = pki.path("signer.pem");
    src.key = pki.path("signer.key");
    auto id = crypto::load_identity(src);
    auto trust = crypto::TrustStore::from_pem_file(pki.path("ca.pem"));
    test::TestIndex index;
    index.add("providerName=Test PEC,o=postacert", "Test PEC S.p.A.", {"pec.test.example"},
              {id.certificate.get()});
    index.add("providerName=Altro,o=postacert", "Altro PEC", {"pec.altro.example"}, {});
    VerifyOptions o;
    o.trust = &trust;
    o.index = &index;

    Envelope env;
    env.mail_from = "mario.rossi@pec.test.example";
    env.recipients = {{"anna@pec.altro.example", {}, {}},
                      {"ufficio@example.com", {}, {}},
                      {"carlo@pec.altro.example", {}, {}}};
    int checked = 0;
    for (auto kind : all_message_kinds) {
        TransactionContext tx;
        tx.time = std::chrono::system_clock::now();
        tx.provider_domain = "pec.test.example";
        tx.provider_name = "Test PEC S.p.A.";
        tx.pec_msgid = "opec1.20250203101507.1.1." + std::to_string(checked) + "@pec.test.example";
        tx.recipients = {{"anna@pec.altro.example", RecipientType::certificato},
                         {"ufficio@example.com", RecipientType::esterno},
                         {"carlo@pec.altro.example", RecipientType::certificato}};
        tx.recipient = "anna@pec.altro.example";
        tx.covered = {"anna@pec.altro.example"};
        tx.notify_address = "posta-certificata@pec.test.example";
        tx.error_text = "5.1.1 - indirizzo non valido";
        if (kind == MessageKind::mancata_consegna) tx.errore = DaticertErrore::no_dest;
        BuiltMessage built;
        try {
            built = build_message(kind, kOriginal, env, tx, id);
        } catch (const std::exception& e) {
            ADD_FAILURE() << kind_name(kind) << ": the builder refused: " << e.what();
            continue;
        }
        auto r = verify_message(built.data, o);
        SCOPED_TRACE(std::string(kind_name(kind)));
        EXPECT_EQ(r.signature.verdict, Verdict::pass) << r.signature.detail;
        EXPECT_EQ(r.chain.verdict, Verdict::pass) << r.chain.detail;
        EXPECT_EQ(r.provider_check.verdict, Verdict::pass) << r.provider_check.detail;
        EXPECT_EQ(r.from_domain.verdict, Verdict::pass) << r.from_domain.detail;
        EXPECT_EQ(r.consistency.verdict, Verdict::pass) << ::testing::PrintToString(r.inconsistencies);
        EXPECT_TRUE(r.classification.problems.empty()) << ::testing::PrintToString(r.classification.problems);
        ASSERT_TRUE(r.classification.kind.has_value());
        EXPECT_EQ(kind_name(*r.classification.kind), kind_name(kind));
        EXPECT_TRUE(r.warnings.empty()) << ::testing::PrintToString(r.warnings);
        EXPECT_TRUE(r.valid());
        ++checked;
    }
    EXPECT_EQ(checked, static_cast<int>(all_message_kinds.size()));
}

}  // namespace
}  // namespace pecd::pec
