// daticert_test.cpp - daticert.xml parser and writer against real samples and hostile input
#include "pec/daticert.hpp"

#include <gmime/gmime.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.hpp"

using namespace pecd;
using namespace pecd::pec;

namespace {

std::string read_all(const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

// The decoded daticert.xml attachment of a sample message (GMime directly, so this test
// does not depend on the code under test to find it).
std::string sample_daticert(const std::string& file) {
    g_mime_init();
    auto bytes = read_all(std::filesystem::path(PECD_SAMPLES_DIR) / file);
    GMimeStream* stream = g_mime_stream_mem_new_with_buffer(bytes.data(), bytes.size());
    GMimeParser* parser = g_mime_parser_new_with_stream(stream);
    GMimeMessage* msg = g_mime_parser_construct_message(parser, nullptr);
    g_object_unref(parser);
    g_object_unref(stream);
    if (!msg) return {};
    std::string out;
    GMimePartIter* it = g_mime_part_iter_new(GMIME_OBJECT(msg));
    do {
        GMimeObject* o = g_mime_part_iter_get_current(it);
        if (!o || !GMIME_IS_PART(o)) continue;
        const char* fn = g_mime_part_get_filename(GMIME_PART(o));
        if (!fn || std::string(fn) != "daticert.xml") continue;
        GMimeStream* mem = g_mime_stream_mem_new();
        g_mime_data_wrapper_write_to_stream(g_mime_part_get_content(GMIME_PART(o)), mem);
        GByteArray* a = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
        out.assign(reinterpret_cast<const char*>(a->data), a->len);
        g_object_unref(mem);
        break;
    } while (g_mime_part_iter_next(it));
    g_mime_part_iter_free(it);
    g_object_unref(msg);
    return out;
}

Daticert example() {
    Daticert d;
    d.tipo = DaticertTipo::avvenuta_consegna;
    d.mittente = "ufficio.acquisti@pec.esempio-spa.it";
    d.destinatari = {{"fornitore@pec.altro-gestore.it", RecipientType::certificato},
                     {"contabilita@esempio-spa.it", RecipientType::esterno}};
    d.risposte = "ufficio.acquisti@pec.esempio-spa.it";
    d.oggetto = "Ordine 2025/0042";
    d.gestore_emittente = "Altro Gestore PEC S.p.A.";
    d.data = {"+0100", "03/02/2025", "10:15:07"};
    d.identificativo = "pec7f3a.20250203101502.4411.1.1@pec.mio-gestore.it";
    d.msgid = "<a1b2c3d4@client.esempio-spa.it>";
    d.ricevuta = ReceiptType::completa;
    d.consegna = "fornitore@pec.altro-gestore.it";
    return d;
}

// pec.md section 4's example, byte for byte.
constexpr const char* spec_example = R"(<?xml version="1.0" encoding="UTF-8"?>
<postacert tipo="avvenuta-consegna" errore="nessuno">
    <intestazione>
        <mittente>ufficio.acquisti@pec.esempio-spa.it</mittente>
        <destinatari tipo="certificato">fornitore@pec.altro-gestore.it</destinatari>
        <destinatari tipo="esterno">contabilita@esempio-spa.it</destinatari>
        <risposte>ufficio.acquisti@pec.esempio-spa.it</risposte>
        <oggetto>Ordine 2025/0042</oggetto>
    </intestazione>
    <dati>
        <gestore-emittente>Altro Gestore PEC S.p.A.</gestore-emittente>
        <data zona="+0100">
            <giorno>03/02/2025</giorno>
            <ora>10:15:07</ora>
        </data>
        <identificativo>pec7f3a.20250203101502.4411.1.1@pec.mio-gestore.it</identificativo>
        <msgid>&lt;a1b2c3d4@client.esempio-spa.it&gt;</msgid>
        <ricevuta tipo="completa" />
        <consegna>fornitore@pec.altro-gestore.it</consegna>
    </dati>
</postacert>
)";

ParseError parse_error(std::string_view xml) {
    try {
        parse_daticert(xml);
    } catch (const ParseError& e) {
        return e;
    }
    ADD_FAILURE() << "no ParseError for:\n" << xml;
    return ParseError("none");
}

}  // namespace

TEST(Daticert, WriterReproducesTheSpecExampleByteForByte) {
    EXPECT_EQ(write_daticert(example()), spec_example);
}

TEST(Daticert, ParsesTheSpecExample) {
    EXPECT_EQ(parse_daticert(spec_example), example());
}

TEST(Daticert, ArubaAcceptanceSample) {
    auto xml = sample_daticert(
        "OCA_l10n-italy@16.0__l10n_it_fatturapa_pec_tests_data_ACCETTAZIONE_IT03339130126_00009.xml.eml");
    ASSERT_FALSE(xml.empty());
    auto d = parse_daticert(xml);
    EXPECT_EQ(d.tipo, DaticertTipo::accettazione);
    EXPECT_EQ(d.errore, DaticertErrore::nessuno);
    EXPECT_EQ(d.mittente, "l.battistini@pec.it");
    ASSERT_EQ(d.destinatari.size(), 1u);
    EXPECT_EQ(d.destinatari[0].type, RecipientType::certificato);
    EXPECT_EQ(d.oggetto, "IT03339130126_00009.xml");
    EXPECT_EQ(d.gestore_emittente, "ARUBA PEC S.p.A.");
    EXPECT_EQ(d.data, (DaticertDate{"+0100", "13/11/2018", "16:39:26"}));
    EXPECT_EQ(d.identificativo, "opec288.20181113163926.01838.310.1.63@pec.aruba.it");
    EXPECT_EQ(
        d.msgid,
        "<1542123565.921546936035156.464602125997431-openerp-8-fatturapa.attachment.out@elbati-Vostro-3550>");
    EXPECT_FALSE(d.ricevuta);
    EXPECT_FALSE(d.consegna);
    // Our writer gives back Aruba's exact bytes.
    EXPECT_EQ(write_daticert(d), xml);
}

TEST(Daticert, ArubaDeliverySample) {
    auto xml = sample_daticert(
        "OCA_l10n-italy@16.0__l10n_it_fatturapa_pec_tests_data_CONSEGNA_IT03339130126_00009.xml.eml");
    auto d = parse_daticert(xml);
    EXPECT_EQ(d.tipo, DaticertTipo::avvenuta_consegna);
    EXPECT_EQ(d.ricevuta, ReceiptType::completa);
    EXPECT_EQ(d.consegna, "l.battistini@pec.it");
    EXPECT_EQ(d.data.ora, "16:39:27");
    EXPECT_EQ(write_daticert(d), xml);
}

TEST(Daticert, AnonymisedAcceptanceSample) {
    auto xml = sample_daticert("biagioT_java-pec-parser__src_test_resources_accettazione.eml");
    auto d = parse_daticert(xml);
    EXPECT_EQ(d.tipo, DaticertTipo::accettazione);
    EXPECT_EQ(d.msgid, "<SN05IE$951DEC16C1CFD3E4FD8FF1B1D24A99AE@fakepec.it>");
    EXPECT_EQ(write_daticert(d), xml);
}

// This anonymised sample has a stray "a" after </risposte> (hand editing): mixed content
// the DTD forbids inside intestazione. Strict validation reports where.
TEST(Daticert, AnonymisedNonDeliverySampleIsInvalidAndSaysWhere) {
    auto xml = sample_daticert("biagioT_java-pec-parser__src_test_resources_consegna.eml");
    ASSERT_NE(xml.find("</risposte>a"), std::string::npos);
    auto e = parse_error(xml);
    EXPECT_EQ(e.field(), "intestazione");
    EXPECT_EQ(e.line(), 3u);
    // With the stray character removed, it is a valid errore-consegna notice.
    auto fixed = xml;
    fixed.erase(fixed.find("</risposte>a") + 11, 1);
    auto d = parse_daticert(fixed);
    EXPECT_EQ(d.tipo, DaticertTipo::errore_consegna);
    EXPECT_EQ(d.errore, DaticertErrore::no_dest);
    EXPECT_EQ(d.consegna, "rec@fakepec.it");
    EXPECT_EQ(d.errore_esteso, "5.1.1 - FAKE Pec S.p.A. - indirizzo non valido");
}

TEST(Daticert, GoPecSamplesWithoutTrailingNewline) {
    auto xml2 = sample_daticert("danzipie_go-pec__pec_test_resources_email_2.eml");
    auto d2 = parse_daticert(xml2);
    EXPECT_EQ(d2.tipo, DaticertTipo::avvenuta_consegna);
    EXPECT_EQ(d2.data.zona, "+0200");
    EXPECT_EQ(write_daticert(d2), xml2 + "\n");
    auto xml3 = sample_daticert("danzipie_go-pec__pec_test_resources_email_3.eml");
    auto d3 = parse_daticert(xml3);
    EXPECT_EQ(d3.tipo, DaticertTipo::posta_certificata);
    EXPECT_EQ(d3.ricevuta, ReceiptType::completa);
    EXPECT_EQ(d3.oggetto, "POSTA CERTIFICATA: SUBJECT");
}

TEST(Daticert, DefaultsOfTheDtdApply) {
    auto d = parse_daticert(R"(<?xml version="1.0" encoding="UTF-8"?>
<postacert tipo="presa-in-carico"><intestazione><mittente>a@b.it</mittente><destinatari>c@d.it</destinatari>
<risposte>a@b.it</risposte></intestazione><dati><gestore-emittente>G</gestore-emittente>
<data zona="+0100"><giorno>01/01/2025</giorno><ora>00:00:00</ora></data><identificativo>x@b.it</identificativo>
<ricezione>c@d.it</ricezione><ricezione>e@d.it</ricezione></dati></postacert>)");
    EXPECT_EQ(d.errore, DaticertErrore::nessuno);
    EXPECT_EQ(d.destinatari.at(0).type, RecipientType::certificato);
    EXPECT_EQ(d.ricezione, (std::vector<std::string>{"c@d.it", "e@d.it"}));
    EXPECT_FALSE(d.oggetto);
}

TEST(Daticert, MalformedXmlGivesLineAndElement) {
    auto e = parse_error(
        "<?xml version=\"1.0\"?>\n<postacert tipo=\"accettazione\">\n  <intestazione>\n  </dati>\n");
    EXPECT_EQ(e.line(), 4u);
    EXPECT_EQ(e.field(), "intestazione");
}

TEST(Daticert, DtdViolationsAreRejected) {
    std::string good = spec_example;
    auto replace = [&](std::string_view from, std::string_view to) {
        auto s = good;
        s.replace(s.find(from), from.size(), to);
        return s;
    };
    auto e1 = parse_error(replace("avvenuta-consegna\"", "consegnata\""));
    EXPECT_EQ(e1.field(), "postacert");
    EXPECT_EQ(e1.line(), 2u);
    auto e2 = parse_error(replace("<ricevuta tipo=\"completa\" />", "<ricevuta tipo=\"lunga\" />"));
    EXPECT_EQ(e2.field(), "ricevuta");
    EXPECT_EQ(e2.line(), 18u);
    // Element order inside dati is fixed.
    auto e3 = parse_error(replace("<identificativo>", "<consegna>x</consegna><identificativo>"));
    EXPECT_EQ(e3.field(), "dati");
    // risposte is mandatory.
    auto e4 = parse_error(replace("<risposte>ufficio.acquisti@pec.esempio-spa.it</risposte>", ""));
    EXPECT_EQ(e4.field(), "intestazione");
    // An unknown element.
    auto e5 = parse_error(replace("<oggetto>", "<extra/><oggetto>"));
    EXPECT_EQ(e5.field(), "intestazione");
    // Blank identificativo.
    auto e6 = parse_error(replace("pec7f3a.20250203101502.4411.1.1@pec.mio-gestore.it", " "));
    EXPECT_EQ(e6.field(), "identificativo");
    EXPECT_EQ(e6.line(), 16u);
}

TEST(Daticert, DoctypeAndEntitiesAreRefused) {
    // External entity (XXE) and a document-supplied DTD that would loosen the grammar.
    auto e1 = parse_error(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE postacert [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>\n"
        "<postacert tipo=\"accettazione\">&x;</postacert>");
    EXPECT_EQ(e1.line(), 2u);
    auto e2 = parse_error(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE postacert SYSTEM \"http://127.0.0.1:1/x.dtd\">\n<postacert/>");
    EXPECT_EQ(e2.line(), 2u);
    // Undeclared entity reference without a DOCTYPE.
    auto e3 =
        parse_error(std::string(spec_example).replace(std::string(spec_example).find("Ordine"), 6, "&lol;"));
    EXPECT_EQ(e3.line(), 8u);
}

TEST(Daticert, HostileBytesNeverCrash) {
    std::string base = spec_example;
    // Every truncation, and single-byte corruption at many positions: either a model or a
    // ParseError, nothing else.
    for (std::size_t n = 0; n < base.size(); n += 3) {
        try {
            parse_daticert(std::string_view(base).substr(0, n));
        } catch (const ParseError&) {
        }
    }
    for (std::size_t i = 0; i < base.size(); i += 5) {
        for (char c : {'\0', '<', '&', '\xff', '"'}) {
            auto s = base;
            s[i] = c;
            try {
                parse_daticert(s);
            } catch (const ParseError&) {
            }
        }
    }
    EXPECT_THROW(parse_daticert(""), ParseError);
    EXPECT_THROW(parse_daticert(std::string(2 << 20, ' ')), ParseError);
}

TEST(Daticert, WriterEscapesAndKeepsOutputValid) {
    auto d = example();
    d.oggetto = std::string("Fattura <n. 1> & \"altro\" \x01 caff\xc3\xa8 \xff end");
    d.errore_esteso = "5.1.1 - riga1\r\nriga2";
    d.tipo = DaticertTipo::errore_consegna;
    d.errore = DaticertErrore::no_dest;
    d.ricevuta.reset();
    auto xml = write_daticert(d);
    EXPECT_NE(xml.find("Fattura &lt;n. 1&gt; &amp; &quot;altro&quot;"), std::string::npos);
    auto back = parse_daticert(xml);
    EXPECT_EQ(*back.oggetto, "Fattura <n. 1> & \"altro\" \xEF\xBF\xBD caff\xc3\xa8 \xEF\xBF\xBD end");
    EXPECT_EQ(*back.errore_esteso, "5.1.1 - riga1\r\nriga2");
}

TEST(Daticert, RoundTripOfEveryTipo) {
    for (auto t :
         {DaticertTipo::accettazione, DaticertTipo::non_accettazione, DaticertTipo::presa_in_carico,
          DaticertTipo::avvenuta_consegna, DaticertTipo::posta_certificata, DaticertTipo::errore_consegna,
          DaticertTipo::preavviso_errore_consegna, DaticertTipo::rilevazione_virus}) {
        auto d = example();
        d.tipo = t;
        d.ricezione = {"a@b.it", "c@d.it"};
        EXPECT_EQ(parse_daticert(write_daticert(d)), d) << to_string(t);
    }
}

TEST(Daticert, ShippedDtdFileIsTheCompiledOne) {
    EXPECT_EQ(read_all(std::filesystem::path(PECD_SOURCE_DIR) / "src/pec/daticert.dtd"), daticert_dtd());
}

TEST(ItalianTimeTest, WinterSummerAndTheSwitchInstants) {
    using namespace std::chrono;
    auto at = [](int y, unsigned m, unsigned d, int h, int mi, int s) {
        return sys_days(year(y) / month(m) / day(d)) + hours(h) + minutes(mi) + seconds(s);
    };
    EXPECT_EQ(daticert_date(at(2018, 11, 13, 15, 39, 26)), (DaticertDate{"+0100", "13/11/2018", "16:39:26"}));
    EXPECT_EQ(daticert_date(at(2021, 5, 13, 12, 35, 30)), (DaticertDate{"+0200", "13/05/2021", "14:35:30"}));
    // 2025: CEST from 30 March 01:00 UTC to 26 October 01:00 UTC.
    EXPECT_EQ(daticert_date(at(2025, 3, 30, 0, 59, 59)).ora, "01:59:59");
    EXPECT_EQ(daticert_date(at(2025, 3, 30, 1, 0, 0)).ora, "03:00:00");
    EXPECT_EQ(daticert_date(at(2025, 10, 26, 0, 59, 59)).ora, "02:59:59");
    EXPECT_EQ(daticert_date(at(2025, 10, 26, 1, 0, 0)).ora, "02:00:00");
    // New Year's Eve crosses the date line in local time.
    EXPECT_EQ(daticert_date(at(2024, 12, 31, 23, 30, 0)), (DaticertDate{"+0100", "01/01/2025", "00:30:00"}));
    EXPECT_EQ(italian_time(at(2018, 11, 13, 15, 39, 26)).rfc5322(), "Tue, 13 Nov 2018 16:39:26 +0100");
}
