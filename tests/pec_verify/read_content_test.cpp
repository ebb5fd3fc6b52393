// read_content_test.cpp - pec::read_content, which cuts parts at their delimiter lines,
// agrees with GMime's own object tree of the same bytes on what a PEC reader takes from
// them: the real providers' messages, every kind pecd builds, hand-made edge cases, and a
// fixed set of mutations of all of them.
#include <gmime/gmime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <memory>
#include <random>

#include "core/strings.hpp"
#include "crypto/identity.hpp"
#include "crypto/smime.hpp"
#include "mime/mime.hpp"
#include "mutate.hpp"
#include "pec/builder.hpp"
#include "pec/signed_message.hpp"
#include "test_pki.hpp"

namespace pecd::pec {
namespace {

// The reference: GMime's parser builds the whole tree, and the facts are read from it.
namespace reference {

struct Unref {
    void operator()(void* p) const noexcept {
        if (p) g_object_unref(p);
    }
};

std::string type_of(GMimeObject* o) {
    GMimeContentType* ct = g_mime_object_get_content_type(o);
    std::unique_ptr<char, decltype(&g_free)> mt(ct ? g_mime_content_type_get_mime_type(ct) : nullptr, g_free);
    return to_lower(mt ? mt.get() : "text/plain");
}

std::string name_of(GMimeObject* o) {
    const char* n = g_mime_object_get_content_disposition_parameter(o, "filename");
    if (!n || !*n) n = g_mime_object_get_content_type_parameter(o, "name");
    return to_lower(trim(n ? n : ""));
}

std::string decoded(GMimePart* part) {
    GMimeDataWrapper* w = g_mime_part_get_content(part);
    if (!w) return {};
    std::unique_ptr<GMimeStream, Unref> out(g_mime_stream_mem_new());
    g_mime_data_wrapper_write_to_stream(w, out.get());
    GByteArray* a = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(out.get()));
    return a ? std::string(reinterpret_cast<const char*>(a->data), a->len) : std::string{};
}

void find_text(GMimeObject* o, MessageContent& c, int depth) {
    if (!c.text.empty() || depth > 4) return;
    if (GMIME_IS_MULTIPART(o)) {
        auto* mp = GMIME_MULTIPART(o);
        for (int i = 0; i < g_mime_multipart_get_count(mp) && c.text.empty(); ++i)
            find_text(g_mime_multipart_get_part(mp, i), c, depth + 1);
    } else if (GMIME_IS_PART(o) && type_of(o) == "text/plain") {
        c.text = decoded(GMIME_PART(o));
    }
}

MessageContent read(const std::string& entity) {
    MessageContent c;
    std::unique_ptr<GMimeStream, Unref> stream(
        g_mime_stream_mem_new_with_buffer(entity.data(), entity.size()));
    std::unique_ptr<GMimeParser, Unref> parser(g_mime_parser_new_with_stream(stream.get()));
    std::unique_ptr<GMimeObject, Unref> root(
        g_mime_parser_construct_part(parser.get(), g_mime_parser_options_get_default()));
    if (!root) return c;
    c.root_type = type_of(root.get());
    if (!GMIME_IS_MULTIPART(root.get())) {
        find_text(root.get(), c, 0);
        return c;
    }
    c.found_multipart = true;
    auto* mp = GMIME_MULTIPART(root.get());
    c.parts = static_cast<std::size_t>(std::max(0, g_mime_multipart_get_count(mp)));
    for (int i = 0; i < g_mime_multipart_get_count(mp); ++i) {
        GMimeObject* child = g_mime_multipart_get_part(mp, i);
        auto name = name_of(child);
        if (GMIME_IS_MESSAGE_PART(child)) {
            if (c.has_postacert && name != "postacert.eml") continue;
            c.has_postacert = true;
            c.postacert_message_id.clear();
            if (GMimeMessage* m = g_mime_message_part_get_message(GMIME_MESSAGE_PART(child)))
                if (const char* id = g_mime_message_get_message_id(m)) c.postacert_message_id = id;
        } else if (GMIME_IS_PART(child) && name == "daticert.xml" && !c.has_daticert) {
            c.has_daticert = true;
            c.daticert_xml = decoded(GMIME_PART(child));
        } else {
            find_text(child, c, 0);
        }
    }
    return c;
}

}  // namespace reference

std::string describe(const MessageContent& c) {
    return "multipart=" + std::to_string(c.found_multipart) + " root=" + c.root_type +
           " parts=" + std::to_string(c.parts) + " daticert=" + std::to_string(c.has_daticert) + "/" +
           std::to_string(c.daticert_xml.size()) + " postacert=" + std::to_string(c.has_postacert) + "<" +
           c.postacert_message_id + "> text=" + std::to_string(c.text.size()) + ":" + c.text.substr(0, 40);
}

bool same(const MessageContent& a, const MessageContent& b) {
    // GMime builds no root from bytes it cannot read as an entity (no header, or none at all);
    // nothing then differs but the root's type, which no check uses.
    bool roots_agree = b.root_type.empty() ? a.root_type == "text/plain" : a.root_type == b.root_type;
    return a.found_multipart == b.found_multipart && roots_agree && a.parts == b.parts &&
           a.has_daticert == b.has_daticert && a.daticert_xml == b.daticert_xml &&
           a.has_postacert == b.has_postacert && a.postacert_message_id == b.postacert_message_id &&
           a.text == b.text;
}

// The entity a reader looks into: the signed part of a multipart/signed, else the message.
std::string content_entity(const std::string& raw) {
    auto p = crypto::smime_locate(raw);
    return p.signed_part.empty() ? raw : std::string(p.signed_part);
}

std::vector<std::string> sample_messages() {
    return fuzz::load_dir(PECD_SAMPLES_DIR, ".eml");
}

const std::string kOriginal =
    "From: Mario Rossi <mario.rossi@pec.test.example>\r\n"
    "To: anna@pec.altro.example\r\n"
    "Subject: prova\r\n"
    "Message-ID: <client-123@mua.test.example>\r\n"
    "Date: Mon, 3 Feb 2025 10:15:00 +0100\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
    "--b1\r\nContent-Type: multipart/alternative; boundary=b2\r\n\r\n"
    "--b2\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    "Testo del messaggio con caff=C3=A8 e una riga lunga=\r\n spezzata.\r\n"
    "--b2\r\nContent-Type: text/html\r\n\r\n<p>Testo</p>\r\n--b2--\r\n"
    "--b1\r\nContent-Type: application/pdf; name=\"fattura.pdf\"\r\n"
    "Content-Disposition: attachment; filename=\"fattura.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    "JVBERi0xLjQKJcOkw7zDtsOfCjIgMCBvYmoKPDwvTGVuZ3RoIDMgMCBSL0ZpbHRlci9GbGF0ZURl\r\n"
    "--b1--\r\n";

std::vector<std::string> built_messages(const crypto::SigningIdentity& id) {
    std::vector<std::string> out;
    Envelope env;
    env.mail_from = "mario.rossi@pec.test.example";
    env.recipients = {{"anna@pec.altro.example", {}, {}}};
    int n = 0;
    for (auto kind : all_message_kinds) {
        TransactionContext tx;
        tx.time = std::chrono::system_clock::now();
        tx.provider_domain = "pec.test.example";
        tx.provider_name = "Test PEC S.p.A.";
        tx.pec_msgid = "opec1.20250203101507.1.1." + std::to_string(n++) + "@pec.test.example";
        tx.recipients = {{"anna@pec.altro.example", RecipientType::certificato}};
        tx.recipient = "anna@pec.altro.example";
        tx.covered = {"anna@pec.altro.example"};
        tx.notify_address = "posta-certificata@pec.test.example";
        tx.error_text = "5.1.1 - indirizzo non valido";
        if (kind == MessageKind::mancata_consegna) tx.errore = DaticertErrore::no_dest;
        out.push_back(build_message(kind, kOriginal, env, tx, id).data);
    }
    return out;
}

// Structures a sender can choose that the corpus above does not show.
std::vector<std::string> edge_cases() {
    const std::string dati =
        "Content-Type: application/xml; name=\"daticert.xml\"\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\nPHBvc3RhY2VydC8+\r\n";
    return {
        "",
        "no header at all",
        "Content-Type: text/plain\r\n\r\nsolo testo\r\n",
        "Content-Type: TEXT/Plain; charset=us-ascii\r\nContent-Transfer-Encoding: Base64\r\n\r\nY2lhbw==\r\n",
        "Subject: nothing else\r\n\r\nbody without a content type\r\n",
        "Content-Type: multipart/mixed\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nno "
        "boundary\r\n--x--\r\n",
        // preamble, epilogue, LF line ends, transport padding, no close delimiter
        "Content-Type: multipart/mixed; boundary=\"q\"\r\n\r\npreamble\r\n--q  \r\n\r\ndefault "
        "text\r\n--q\r\n" +
            dati + "--q--\r\nepilogue\r\n",
        "Content-Type: multipart/mixed; boundary=q\n\n--q\nContent-Type: text/plain\n\nLF text\n--q\n"
        "Content-Type: message/rfc822; name=postacert.eml\n\nMessage-ID: <lf@x>\n\nbody\n",
        // a line that only starts with the delimiter is content
        "Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n\r\nline\r\n--qq\r\nstill text\r\n--q--\r\n",
        // two messages: postacert.eml wins over an earlier one; a later other one does not replace it
        "Content-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\nContent-Type: message/rfc822\r\n\r\n"
        "Message-ID: <first@x>\r\n\r\na\r\n--m\r\nContent-Type: message/rfc822; "
        "name=\"postacert.eml\"\r\n\r\n"
        "Message-ID:\r\n <second@x>\r\n\r\nb\r\n--m\r\nContent-Type: message/rfc822\r\n\r\n"
        "Message-ID: <third@x>\r\n\r\nc\r\n--m--\r\n",
        "Content-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\nContent-Type: message/news\r\n\r\n"
        "Message-ID: <news@x>\r\n\r\nn\r\n--m\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: "
        "x\r\n"
        "--m\r\nContent-Type: message/rfc822\r\n\r\nno message id\r\n--m--\r\n",
        // daticert by Content-Disposition filename, quoted-printable, upper case name; a second one ignored
        "Content-Type: multipart/mixed; boundary=d\r\n\r\n--d\r\nContent-Type: application/xml\r\n"
        "Content-Disposition: attachment; filename=\"DatiCert.XML\"\r\nContent-Transfer-Encoding: "
        "quoted-printable"
        "\r\n\r\n<postacert tipo=3D\"accettazione\"/>=\r\n\r\n--d\r\n" +
            dati + "--d--\r\n",
        // RFC 2231 name, nested text three levels down, text/html before it
        "Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: multipart/related; "
        "boundary=b\r\n\r\n"
        "--b\r\nContent-Type: multipart/alternative; boundary=c\r\n\r\n--c\r\nContent-Type: "
        "text/html\r\n\r\n<b>x</b>"
        "\r\n--c\r\nContent-Type: text/plain\r\n\r\ndeep text\r\n--c--\r\n--b--\r\n--a\r\nContent-Type: "
        "application/xml;"
        "\r\n name*=utf-8''daticert.xml\r\n\r\n<postacert/>\r\n--a--\r\n",
        // uuencoded text
        "Content-Type: text/plain\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 t.txt\r\n"
        "#8V%T\r\n`\r\nend\r\n",
    };
}

crypto::SigningIdentity signing_identity(const test::TestPki& pki) {
    crypto::KeySource src;
    src.certificate = pki.path("signer.pem");
    src.key = pki.path("signer.key");
    return crypto::load_identity(src);
}

void expect_agreement(const std::string& entity, const std::string& what) {
    auto ours = read_content(entity);
    auto gmime = reference::read(entity);
    EXPECT_TRUE(same(ours, gmime)) << what << "\n  ours:  " << describe(ours)
                                   << "\n  gmime: " << describe(gmime);
}

TEST(ReadContent, AgreesWithGMimesTreeOnSamplesBuiltKindsAndEdgeCases) {
    g_mime_init();
    test::TestPki pki;
    auto id = signing_identity(pki);

    auto samples = sample_messages();
    ASSERT_GE(samples.size(), 6u);
    auto built = built_messages(id);
    ASSERT_EQ(built.size(), all_message_kinds.size());
    std::size_t with_daticert = 0, with_postacert = 0;
    for (std::size_t i = 0; i < samples.size(); ++i) {
        auto e = content_entity(samples[i]);
        expect_agreement(e, "sample " + std::to_string(i));
        with_daticert += read_content(e).has_daticert;
    }
    for (std::size_t i = 0; i < built.size(); ++i) {
        auto e = content_entity(built[i]);
        expect_agreement(e, "built kind " + std::string(kind_name(all_message_kinds[i])));
        with_postacert += read_content(e).has_postacert;
    }
    auto edges = edge_cases();
    for (std::size_t i = 0; i < edges.size(); ++i)
        expect_agreement(edges[i], "edge case " + std::to_string(i));
    // The corpus exercises what it is meant to.
    EXPECT_GE(with_daticert, 6u);
    EXPECT_GE(with_postacert, 3u);
    EXPECT_EQ(read_content(edges[12]).text, "deep text");
    EXPECT_EQ(read_content(edges[9]).postacert_message_id, "second@x");
}

// Mutations make malformed input, where the two readings may part: GMime's header parser
// and its delimiter handling have quirks of their own (a bare CR inside a field, a delimiter
// as the last line with nothing after it, a part between two adjacent delimiters, one byte
// too many cut before a delimiter after an LF-only line). On such bytes the signature no
// longer holds, so which part a reader then calls daticert.xml decides nothing. What this
// guards is that the two still agree on nearly every input, so that a broken cut shows.
TEST(ReadContent, AgreesWithGMimesTreeOnNearlyEveryMutation) {
    g_mime_init();
    test::TestPki pki;
    auto id = signing_identity(pki);
    std::vector<std::string> corpus;
    for (auto& m : sample_messages()) corpus.push_back(content_entity(m));
    for (auto& m : built_messages(id)) corpus.push_back(content_entity(m));
    for (auto& m : edge_cases()) corpus.push_back(m);
    const std::vector<std::string> tokens = {"\r\n--",         "--\r\n",    "\r\n\r\n",
                                             "Content-Type: ", "boundary=", "message/rfc822",
                                             "daticert",       "base64",    "\n"};
    std::mt19937 rng(20261207);
    std::size_t compared = 0, differing = 0;
    for (int round = 0; round < 4000; ++round) {
        const auto& in = corpus[rng() % corpus.size()];
        const auto& other = corpus[rng() % corpus.size()];
        auto m = fuzz::mutate(in, other, rng, tokens);
        auto ours = read_content(m);
        auto gmime = reference::read(m);
        if (gmime.root_type.empty()) continue;  // GMime read no entity from these bytes
        ++compared;
        if (!same(ours, gmime) && ++differing <= 3)
            std::cout << "differs on mutation " << round << "\n  ours:  " << describe(ours)
                      << "\n  gmime: " << describe(gmime) << "\n";
    }
    EXPECT_GE(compared, 3000u);
    EXPECT_LE(differing * 100, compared * 4)
        << differing << " of " << compared << " mutations read differently";
}

// Inserts `part` (a whole MIME part, headers and body) as the first part of the signed
// content's multipart, whose first delimiter line is the first "\r\n--" + boundary.
std::string with_part_added(const std::string& raw, const std::string& part) {
    auto content = crypto::smime_locate(raw).signed_part;
    auto boundary =
        mime::content_type(mime::split_message(content).value("Content-Type").value_or("")).boundary;
    auto delimiter = "\r\n--" + boundary + "\r\n";
    auto at = raw.find(delimiter, static_cast<std::size_t>(content.data() - raw.data()));
    EXPECT_NE(at, std::string::npos);
    auto out = raw;
    out.insert(at + delimiter.size(), part + "\r\n--" + boundary + "\r\n");
    return out;
}

TEST(AntivirusContent, TheOriginalAloneWhenEverythingElseIsTheProvidersTextAndDaticert) {
    g_mime_init();
    test::TestPki pki;
    auto id = signing_identity(pki);
    auto built = built_messages(id);
    auto of_kind = [&](MessageKind k) {
        return built[static_cast<std::size_t>(
            std::find(all_message_kinds.begin(), all_message_kinds.end(), k) - all_message_kinds.begin())];
    };
    auto envelope = of_kind(MessageKind::transport_envelope);
    auto scanned = antivirus_content(read_message(envelope), envelope);
    // postacert.eml: the original's headers (its id rewritten), its text and attachment,
    // none of the envelope's own parts.
    EXPECT_EQ(scanned.substr(0, 6), "From: ");
    EXPECT_NE(scanned.find("Subject: prova"), std::string_view::npos);
    EXPECT_NE(scanned.find("fattura.pdf"), std::string_view::npos);
    EXPECT_EQ(scanned.find("daticert.xml"), std::string_view::npos);
    EXPECT_EQ(scanned.find("smime.p7s"), std::string_view::npos);
    EXPECT_LT(scanned.size(), envelope.size());
    EXPECT_EQ(scanned.data(), envelope.data() + envelope.find(scanned));  // a view, not a copy

    // Anything else in the envelope and it is scanned whole.
    const std::string pdf =
        "Content-Type: application/pdf; name=\"x.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0x";
    const std::string second =
        "Content-Type: message/rfc822; name=\"altro.eml\"\r\n\r\nFrom: x@y\r\nSubject: altro\r\n\r\nz";
    const std::string html_inline =
        "Content-Type: multipart/alternative; boundary=\"in\"\r\n\r\n--in\r\n"
        "Content-Type: text/html\r\n\r\n<p>x</p>\r\n--in\r\n"
        "Content-Type: image/png\r\n\r\nPNG\r\n--in--";
    for (const auto& part : {pdf, second, html_inline}) {
        auto changed = with_part_added(envelope, part);
        EXPECT_EQ(antivirus_content(read_message(changed), changed), changed) << part;
    }
    // The provider's text as such (text only, here an HTML variant more) keeps the original alone.
    auto text_more = with_part_added(envelope, "Content-Type: text/html\r\n\r\n<p>testo</p>");
    EXPECT_EQ(antivirus_content(read_message(text_more), text_more).substr(0, 6), "From: ");

    // An encoded original is not what a reader of postacert.eml sees: scanned whole.
    auto encoded = envelope;
    auto type = encoded.find("name=\"postacert.eml\"\r\n");
    ASSERT_NE(type, std::string::npos);
    const std::string as_is = "Content-Transfer-Encoding: 7bit\r\n";
    auto field = encoded.find(as_is, type);
    ASSERT_NE(field, std::string::npos);
    encoded.replace(field, as_is.size(), "Content-Transfer-Encoding: base64\r\n");
    EXPECT_EQ(antivirus_content(read_message(encoded), encoded), encoded);

    // Messages without an original, and ordinary mail, are scanned whole.
    auto receipt = of_kind(MessageKind::accettazione);
    ASSERT_FALSE(read_message(receipt).content.has_postacert);
    EXPECT_EQ(antivirus_content(read_message(receipt), receipt), receipt);
    EXPECT_EQ(antivirus_content(read_message(kOriginal), kOriginal), kOriginal);
}

}  // namespace
}  // namespace pecd::pec
