// samples_test.cpp - the real and anonymised provider messages of pec-samples through the
// reading side: classification as the samples' README says, signature verdicts on the two
// real Aruba receipts, byte flips inside and outside the signed part, header tampering
// detected against daticert.xml, and the index verdicts through a ProviderLookup.
#include <gtest/gtest.h>
#include <openssl/pem.h>

#include "core/fs.hpp"
#include "core/strings.hpp"
#include "crypto/cms.hpp"
#include "pec/verify.hpp"
#include "test_index.hpp"
#include "test_pki.hpp"

namespace pecd::pec {
namespace {

const std::string kSamples = PECD_SAMPLES_DIR;
const std::string kAccettazione =
    kSamples +
    "/OCA_l10n-italy@16.0__l10n_it_fatturapa_pec_tests_data_ACCETTAZIONE_IT03339130126_00009.xml.eml";
const std::string kConsegna =
    kSamples + "/OCA_l10n-italy@16.0__l10n_it_fatturapa_pec_tests_data_CONSEGNA_IT03339130126_00009.xml.eml";
const std::string kFakeAccettazione =
    kSamples + "/biagioT_java-pec-parser__src_test_resources_accettazione.eml";
const std::string kFakeConsegna = kSamples + "/biagioT_java-pec-parser__src_test_resources_consegna.eml";
const std::string kEmail2 = kSamples + "/danzipie_go-pec__pec_test_resources_email_2.eml";
const std::string kEmail3 = kSamples + "/danzipie_go-pec__pec_test_resources_email_3.eml";

std::string load(const std::string& path) {
    return fs::read_file(path);
}

std::string replace_once(std::string s, const std::string& from, const std::string& to) {
    auto p = s.find(from);
    EXPECT_NE(p, std::string::npos) << from;
    if (p != std::string::npos) s.replace(p, from.size(), to);
    return s;
}

bool has(const std::vector<std::string>& v, const std::string& needle) {
    for (auto& s : v)
        if (s.find(needle) != std::string::npos) return true;
    return false;
}

TEST(PecSamples, EveryFileIsClassifiedAsItsReadmeSays) {
    struct Case {
        std::string file;
        MessageKind kind;
    };
    for (auto& c : std::vector<Case>{{kAccettazione, MessageKind::accettazione},
                                     {kConsegna, MessageKind::consegna_completa},
                                     {kFakeAccettazione, MessageKind::accettazione},
                                     {kFakeConsegna, MessageKind::mancata_consegna},
                                     {kEmail2, MessageKind::consegna_completa},
                                     {kEmail3, MessageKind::transport_envelope}}) {
        auto r = verify_message(load(c.file));
        ASSERT_TRUE(r.classification.kind.has_value()) << c.file;
        EXPECT_EQ(*r.classification.kind, c.kind) << c.file << ": " << classification_name(r.classification);
        EXPECT_TRUE(r.classification.claims_pec);
    }
    // The anonymised non-delivery: X-Ricevuta errore-consegna, daticert errore="no-dest".
    auto nd = verify_message(load(kFakeConsegna));
    EXPECT_EQ(*nd.facts.headers.x_ricevuta, "errore-consegna");
    EXPECT_NE(nd.facts.content.daticert_xml.find("errore=\"no-dest\""), std::string::npos);
}

TEST(PecSamples, RealArubaReceiptsVerify) {
    for (auto& file : {kAccettazione, kConsegna}) {
        auto r = verify_message(load(file));
        EXPECT_EQ(r.signature.verdict, Verdict::pass) << file << ": " << r.signature.detail;
        EXPECT_EQ(r.chain.verdict, Verdict::not_checked) << r.chain.detail;
        EXPECT_EQ(r.provider_check.verdict, Verdict::not_checked);
        EXPECT_EQ(r.consistency.verdict, Verdict::pass) << ::testing::PrintToString(r.inconsistencies);
        EXPECT_FALSE(r.classification.malformed()) << ::testing::PrintToString(r.classification.problems);
        EXPECT_TRUE(r.valid());
        EXPECT_EQ(r.cms.digest_name, "sha1");
        EXPECT_EQ(r.facts.smime.protocol, "application/x-pkcs7-signature");
        EXPECT_NE(r.signer_subject.find("CN=Posta Certificata ARUBA PEC"), std::string::npos)
            << r.signer_subject;
        EXPECT_EQ(r.signer_sha1.size(), 40u);
        ASSERT_TRUE(r.daticert.has_value());
        EXPECT_EQ(r.daticert->identificativo, "opec288.20181113163926.01838.310.1.63@pec.aruba.it");
    }
    auto consegna = verify_message(load(kConsegna));
    EXPECT_TRUE(consegna.facts.content.has_postacert);
    EXPECT_EQ(consegna.daticert->consegna.value_or(""), "l.battistini@pec.it");
}

TEST(PecSamples, OneChangedByteInsideTheSignedPartFailsVerification) {
    const auto raw = load(kConsegna);
    auto parts = crypto::smime_locate(raw);
    ASSERT_EQ(parts.status, crypto::SmimeStatus::ok);
    const auto start = static_cast<std::size_t>(parts.signed_part.data() - raw.data());
    const auto size = parts.signed_part.size();
    int checked = 0;
    for (std::size_t rel :
         {std::size_t{0}, std::size_t{7}, size / 5, size / 3, size / 2, size * 3 / 4, size - 3, size - 1}) {
        auto changed = raw;
        char& c = changed[start + rel];
        if (c == '\n' || c == '\r')
            continue;  // a line-end flip is covered by the CRLF rule, not a byte change
        c = c == 'Q' ? 'R' : 'Q';
        auto r = verify_message(changed);
        EXPECT_EQ(r.signature.verdict, Verdict::fail) << "offset " << rel;
        EXPECT_FALSE(r.valid());
        ++checked;
    }
    EXPECT_GE(checked, 6);
    // A byte outside the signed part (an unsigned header) does not touch the signature.
    auto outside =
        replace_once(raw, "Delivered-To: l.battistini@pec.it", "Delivered-To: x.battistini@pec.it");
    EXPECT_EQ(verify_message(outside).signature.verdict, Verdict::pass);
}

TEST(PecSamples, LfOnlyCopyStillVerifies) {
    auto raw = load(kAccettazione);
    ASSERT_EQ(raw.find('\r'), std::string::npos) << "sample is stored with LF line ends";
    std::string crlf;
    auto canonical = crypto::canonicalize_crlf(raw, crlf);
    EXPECT_EQ(verify_message(canonical).signature.verdict, Verdict::pass);
}

TEST(PecSamples, AnonymisedSamplesReportExactlyWhatIsMissing) {
    for (auto& file : {kFakeAccettazione, kFakeConsegna}) {
        auto r = verify_message(load(file));
        EXPECT_EQ(r.facts.smime.status, crypto::SmimeStatus::missing_signature_part) << file;
        EXPECT_EQ(r.signature.verdict, Verdict::fail);
        EXPECT_NE(r.signature.detail.find("missing-signature-part"), std::string::npos) << r.signature.detail;
        EXPECT_NE(r.signature.detail.find("smime.p7s"), std::string::npos);
        EXPECT_FALSE(r.valid());
    }
    for (auto& file : {kEmail2, kEmail3}) {
        auto r = verify_message(load(file));
        EXPECT_EQ(r.facts.smime.status, crypto::SmimeStatus::unparsable_signature) << file;
        EXPECT_EQ(r.signature.verdict, Verdict::fail);
        EXPECT_NE(r.signature.detail.find("does not parse"), std::string::npos) << r.signature.detail;
        EXPECT_NE(r.signature.detail.find("invalid base64 character '.'"), std::string::npos)
            << r.signature.detail;
        EXPECT_FALSE(r.valid());
    }
    // The anonymised fake accettazione is otherwise well formed and consistent.
    auto fake = verify_message(load(kFakeAccettazione));
    EXPECT_EQ(fake.consistency.verdict, Verdict::pass) << ::testing::PrintToString(fake.inconsistencies);
    // The anonymised non-delivery has stray text in daticert.xml ("</risposte>a"): reported, kind from
    // header.
    auto nd = verify_message(load(kFakeConsegna));
    EXPECT_TRUE(has(nd.classification.problems, "daticert.xml does not parse"))
        << ::testing::PrintToString(nd.classification.problems);
    // email_3's anonymisation changed X-Riferimento-Message-ID but not daticert msgid.
    auto env = verify_message(load(kEmail3));
    EXPECT_TRUE(has(env.inconsistencies, "X-Riferimento-Message-ID"))
        << ::testing::PrintToString(env.inconsistencies);
}

TEST(PecSamples, EditedXRicevutaKeepsTheSignatureButFailsConsistency) {
    auto raw = replace_once(load(kAccettazione), "X-Ricevuta: accettazione", "X-Ricevuta: avvenuta-consegna");
    auto r = verify_message(raw);
    EXPECT_EQ(r.signature.verdict, Verdict::pass) << "the header is outside the signed part";
    EXPECT_EQ(r.consistency.verdict, Verdict::fail);
    EXPECT_TRUE(has(r.inconsistencies,
                    "X-Ricevuta is \"avvenuta-consegna\" but daticert postacert@tipo is "
                    "\"accettazione\""))
        << ::testing::PrintToString(r.inconsistencies);
    EXPECT_EQ(*r.classification.kind, MessageKind::accettazione)
        << "daticert decides the kind, not the header";
    EXPECT_FALSE(r.valid());
}

TEST(PecSamples, OtherHeaderEditsAreDetected) {
    const auto raw = load(kAccettazione);
    auto msgid = verify_message(
        replace_once(raw, "X-Riferimento-Message-ID: <1542123565", "X-Riferimento-Message-ID: <9542123565"));
    EXPECT_EQ(msgid.signature.verdict, Verdict::pass);
    EXPECT_TRUE(has(msgid.inconsistencies, "X-Riferimento-Message-ID is <9542123565"))
        << ::testing::PrintToString(msgid.inconsistencies);

    auto virus = verify_message(replace_once(raw, "X-Ricevuta: accettazione",
                                             "X-Ricevuta: accettazione\nX-VerificaSicurezza: errore"));
    EXPECT_TRUE(has(virus.inconsistencies, "X-VerificaSicurezza: errore but daticert"))
        << ::testing::PrintToString(virus.inconsistencies);

    auto envelope =
        verify_message(replace_once(raw, "X-Ricevuta: accettazione", "X-Trasporto: posta-certificata"));
    EXPECT_EQ(*envelope.classification.kind, MessageKind::transport_envelope)
        << "X-Trasporto is tested first";
    EXPECT_TRUE(has(envelope.inconsistencies,
                    "X-Trasporto is posta-certificata but daticert postacert@tipo is "
                    "\"accettazione\""));
    EXPECT_FALSE(envelope.valid());

    auto stripped = verify_message(replace_once(raw, "X-Ricevuta: accettazione\n", ""));
    EXPECT_FALSE(stripped.classification.kind.has_value());
    EXPECT_TRUE(stripped.classification.malformed());
    EXPECT_FALSE(stripped.valid());
}

TEST(PecSamples, ProviderIndexVerdicts) {
    const auto raw = load(kAccettazione);
    auto plain = verify_message(raw);
    ASSERT_TRUE(plain.cms.signer);
    test::TestIndex index;
    index.add("providerName=ARUBA PEC S.p.A.,o=postacert", "ARUBA PEC S.p.A.", {"pec.aruba.it", "pec.it"},
              {plain.cms.signer.get()});
    index.add("providerName=Other,o=postacert", "Other", {"pec.other.example"}, {});
    VerifyOptions o;
    o.index = &index;
    auto r = verify_message(raw, o);
    EXPECT_EQ(r.provider_check.verdict, Verdict::pass) << r.provider_check.detail;
    ASSERT_TRUE(r.provider);
    EXPECT_EQ(r.provider->name, "ARUBA PEC S.p.A.");
    EXPECT_EQ(r.from_domain.verdict, Verdict::pass) << r.from_domain.detail;
    EXPECT_TRUE(r.valid());

    // From: at a domain another provider manages.
    auto other = verify_message(replace_once(raw, "From: posta-certificata@pec.aruba.it",
                                             "From: posta-certificata@pec.other.example"),
                                o);
    EXPECT_EQ(other.signature.verdict, Verdict::pass);
    EXPECT_EQ(other.from_domain.verdict, Verdict::fail);
    EXPECT_NE(other.from_domain.detail.find("belongs to Other"), std::string::npos)
        << other.from_domain.detail;
    EXPECT_FALSE(other.valid());

    // Signer unknown to the index.
    test::TestIndex empty;
    empty.add("providerName=Other,o=postacert", "Other", {"pec.aruba.it"}, {});
    o.index = &empty;
    auto unknown = verify_message(raw, o);
    EXPECT_EQ(unknown.provider_check.verdict, Verdict::fail);
    EXPECT_NE(unknown.provider_check.detail.find(plain.signer_sha1), std::string::npos);
    EXPECT_FALSE(unknown.valid());
}

TEST(PecSamples, ChainFailsWithAnUnrelatedTrustStore) {
    test::TestPki pki;
    auto trust = crypto::TrustStore::from_pem_file(pki.path("ca.pem"));
    VerifyOptions o;
    o.trust = &trust;
    auto r = verify_message(load(kAccettazione), o);
    EXPECT_EQ(r.signature.verdict, Verdict::pass);
    EXPECT_EQ(r.chain.verdict, Verdict::fail);
    EXPECT_NE(r.chain.detail.find("signer certificate chain"), std::string::npos) << r.chain.detail;
    EXPECT_FALSE(r.valid());
}

}  // namespace
}  // namespace pecd::pec
