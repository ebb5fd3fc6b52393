// builder.cpp - assembling and signing PEC envelopes, receipts and notices (see builder.hpp)
//
// The message is written into one std::string: top-level headers, then the signed
// multipart/mixed (CRLF canonical as it is written, so the bytes signed are the bytes
// sent), then the detached signature computed over a view of that range.
#include "pec/builder.hpp"

#include <openssl/rand.h>

#include <algorithm>

#include "core/error.hpp"
#include "core/strings.hpp"
#include "crypto/cms.hpp"
#include "mime/mime.hpp"
#include "pec/brief_receipt.hpp"
#include "pec/texts.hpp"

namespace pecd::pec {
namespace {

std::string bracketed(std::string_view id) {
    return "<" + std::string(id) + ">";
}

std::string random_local_part() {
    unsigned char r[12];
    if (RAND_bytes(r, sizeof r) != 1) throw Error("no random bytes for a Message-ID");
    return "pecd.r" + to_hex(std::string_view(reinterpret_cast<char*>(r), sizeof r));
}

std::string provider_address(const TransactionContext& tx) {
    return "posta-certificata@" + tx.provider_domain;
}

std::vector<DaticertRecipient> recipients_of(const Envelope& env, const TransactionContext& tx) {
    if (!tx.recipients.empty()) return tx.recipients;
    std::vector<DaticertRecipient> out;
    for (const auto& r : env.recipients) out.push_back({r.address, RecipientType::certificato});
    return out;
}

ReceiptType requested_type(const OriginalFacts& o, const TransactionContext& tx) {
    if (tx.requested_receipt) return *tx.requested_receipt;
    return o.receipt_type.value_or(ReceiptType::completa);
}

// A header field copied from the original stays one field of ours whatever line ends it
// carries: a bare CR or LF ends a line as CRLF does, but a line that is empty or blank
// (which would end our header block) is dropped and every further line is made a
// continuation, so a copied field can neither end the header nor add a field of its own.
void append_copied_field(std::string& out, std::string_view raw) {
    bool first = true;
    std::size_t pos = 0;
    for (;;) {
        auto end = raw.find_first_of("\r\n", pos);
        auto line = raw.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
        if (line.find_first_not_of(" \t") != std::string_view::npos) {
            if (!first && line.front() != ' ' && line.front() != '\t') out += '\t';
            out.append(line);
            out += "\r\n";
            first = false;
        }
        if (end == std::string_view::npos) break;
        pos = end + 1;
    }
}

std::string client_msgid(const OriginalFacts& o, const TransactionContext& tx) {
    return tx.client_msgid ? *tx.client_msgid : o.message_id;
}

void check_context(MessageKind kind, const TransactionContext& tx) {
    if (tx.provider_domain.empty()) throw Error("PEC message: the provider mail domain is missing");
    if (kind != MessageKind::anomaly_envelope && tx.pec_msgid.empty())
        throw Error("PEC message " + std::string(kind_name(kind)) + ": the PEC msgid is missing");
    if (names_consegna(kind) && tx.recipient.empty())
        throw Error("PEC message " + std::string(kind_name(kind)) + ": the recipient concerned is missing");
    if (addressed_to_provider(kind) && tx.notify_address.empty())
        throw Error("PEC message " + std::string(kind_name(kind)) +
                    ": the sender provider's receipt address (mailReceipt) is missing");
}

Daticert make_daticert(MessageKind kind, const OriginalFacts& o, const Envelope& env,
                       const TransactionContext& tx) {
    Daticert d;
    d.tipo = *daticert_tipo(kind);
    d.errore = tx.errore.value_or(default_errore(kind));
    d.mittente = env.mail_from;
    d.destinatari = recipients_of(env, tx);
    d.risposte = o.reply_to_address.empty() ? env.mail_from : o.reply_to_address;
    if (!o.subject_raw.empty()) d.oggetto = o.subject;
    d.gestore_emittente = tx.provider_name;
    d.data = daticert_date(tx.time);
    d.identificativo = tx.pec_msgid;
    if (auto m = client_msgid(o, tx); !m.empty()) d.msgid = m;
    if (kind == MessageKind::transport_envelope)
        d.ricevuta = requested_type(o, tx);
    else if (auto t = consegna_receipt_type(kind))
        d.ricevuta = *t;
    if (names_consegna(kind)) d.consegna = tx.recipient;
    if (kind == MessageKind::presa_in_carico) {
        if (!tx.covered.empty())
            d.ricezione = tx.covered;
        else
            for (const auto& r : d.destinatari) d.ricezione.push_back(r.address);
    }
    bool has_error = d.errore != DaticertErrore::nessuno ||
                     kind == MessageKind::mancata_consegna_timeout_12h ||
                     kind == MessageKind::mancata_consegna_timeout_24h;
    if (has_error && !tx.error_text.empty()) d.errore_esteso = tx.error_text;
    return d;
}

// A text body in the charset real providers use (ISO-8859-1) when it can say everything,
// UTF-8 otherwise; quoted-printable either way.
void append_text_part(std::string& out, std::string_view subtype, const std::string& utf8) {
    auto latin1 = mime::utf8_to_latin1(utf8);
    bool lossless =
        std::count(latin1.begin(), latin1.end(), '?') == std::count(utf8.begin(), utf8.end(), '?');
    out += "Content-Type: text/";
    out += subtype;
    out += lossless ? "; charset=\"iso-8859-1\"\r\n" : "; charset=\"utf-8\"\r\n";
    out += "Content-Disposition: inline\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n";
    out += mime::quoted_printable(lossless ? latin1 : utf8);
}

// The original as postacert.eml carries it: Message-ID replaced by the PEC msgid and
// X-Riferimento-Message-ID added right after it (pec.md 2.5); everything else unchanged.
void append_postacert(std::string& out, std::string_view original, const std::string& pec_msgid,
                      const std::string& client_id) {
    auto s = mime::split_message(original);
    bool inserted = false;
    auto insert_ids = [&] {
        out += "Message-ID: " + bracketed(pec_msgid) + "\r\n";
        if (!client_id.empty()) out += "X-Riferimento-Message-ID: " + client_id + "\r\n";
        inserted = true;
    };
    for (const auto& f : s.fields) {
        if (iequals(f.name, "Message-ID")) {
            if (!inserted) insert_ids();
            continue;
        }
        if (iequals(f.name, "X-Riferimento-Message-ID")) continue;  // ours is authoritative
        mime::append_crlf(out, f.raw);
        out += "\r\n";
    }
    if (!inserted) insert_ids();
    out += "\r\n";
    mime::append_crlf(out, s.body);
}

struct TopHeaders {
    std::string text;
    std::string message_id;
    std::string mail_from;
    std::vector<std::string> rcpt_to;
};

TopHeaders top_headers(MessageKind kind, std::string_view original, const OriginalFacts& o,
                       const Envelope& env, const TransactionContext& tx) {
    TopHeaders h;
    auto split = mime::split_message(original);
    auto copy_fields = [&](std::string_view name) {
        for (const auto& f : split.fields)
            if (iequals(f.name, name)) append_copied_field(h.text, f.raw);
    };
    std::string subject = std::string(subject_prefix(kind)) + o.subject_raw;
    for (auto& c : subject)  // control bytes of a hostile Subject never reach our header
        if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) c = ' ';
    if (is_envelope(kind)) {
        // Routing data and addressing stay the original's (pec.md 3.1, 3.5).
        copy_fields("Received");
        copy_fields("Return-Path");
        h.text += mime::header_line(pec_header_name(kind), pec_header_value(kind));
        h.text += "Date: " + italian_time(tx.time).rfc5322() + "\r\n";
        h.text += mime::header_line("Subject", trim(subject));
        h.text += "From: " + mime::encode_phrase("Per conto di: " + env.mail_from) + " <" +
                  provider_address(tx) + ">\r\n";
        if (!o.reply_to_raw.empty())
            copy_fields("Reply-To");
        else if (!o.from_address.empty())
            h.text += "Reply-To: " + o.from_address + "\r\n";
        copy_fields("To");
        copy_fields("Cc");
        if (kind == MessageKind::transport_envelope) {
            h.message_id = tx.pec_msgid;
            h.text += "Message-ID: " + bracketed(h.message_id) + "\r\n";
            if (auto m = client_msgid(o, tx); !m.empty()) h.text += "X-Riferimento-Message-ID: " + m + "\r\n";
            if (o.receipt_type || tx.requested_receipt)
                h.text += "X-TipoRicevuta: " + std::string(to_string(requested_type(o, tx))) + "\r\n";
        } else if (!o.message_id.empty()) {
            h.message_id = o.message_id.substr(1, o.message_id.size() - 2);
            copy_fields("Message-ID");
        } else {
            h.message_id = random_local_part() + "@" + tx.provider_domain;
            h.text += "Message-ID: " + bracketed(h.message_id) + "\r\n";
        }
        // Envelopes travel with the original SMTP routing data (pec.md 2.2).
        h.mail_from = env.mail_from;
        for (const auto& r : env.recipients) h.rcpt_to.push_back(r.address);
        return h;
    }
    std::string to = addressed_to_provider(kind) ? tx.notify_address : env.mail_from;
    h.text += mime::header_line(pec_header_name(kind), pec_header_value(kind));
    if (auto v = verifica_sicurezza(kind)) h.text += "X-VerificaSicurezza: " + std::string(*v) + "\r\n";
    if (kind == MessageKind::rilevazione_virus) h.text += "X-Mittente: " + env.mail_from + "\r\n";
    h.text += "Date: " + italian_time(tx.time).rfc5322() + "\r\n";
    h.text += mime::header_line("Subject", trim(subject));
    h.text += "From: " + provider_address(tx) + "\r\n";
    h.text += "To: " + to + "\r\n";
    h.message_id = tx.message_id.empty() ? random_local_part() + "@" + tx.provider_domain : tx.message_id;
    h.text += "Message-ID: " + bracketed(h.message_id) + "\r\n";
    if (auto m = client_msgid(o, tx); !m.empty()) h.text += "X-Riferimento-Message-ID: " + m + "\r\n";
    h.mail_from = provider_address(tx);
    h.rcpt_to = {to};
    return h;
}

}  // namespace

OriginalFacts read_original(std::string_view original) {
    auto s = mime::split_message(original);
    OriginalFacts o;
    if (auto v = s.value("Subject")) {
        o.subject_raw = *v;
        o.subject = mime::decode_text(*v);
    }
    if (auto v = s.value("Message-ID")) {
        auto id = trim(*v);
        auto lt = id.find('<'), gt = id.find('>', lt == std::string_view::npos ? 0 : lt);
        if (lt != std::string_view::npos && gt != std::string_view::npos) id = id.substr(lt + 1, gt - lt - 1);
        // The id is repeated in our headers (X-Riferimento-Message-ID) and in daticert.xml:
        // only its printable ASCII goes, so both say the same and neither carries a control
        // byte, a space or a stray bracket from a hostile client.
        std::string clean;
        for (unsigned char c : id)
            if (c > 0x20 && c < 0x7f && c != '<' && c != '>') clean += static_cast<char>(c);
        if (!clean.empty()) o.message_id = "<" + clean + ">";
    }
    if (auto v = s.value("From")) {
        auto a = mime::parse_addresses(*v);
        if (!a.empty()) o.from_address = a.front().address;
    }
    if (auto v = s.value("Reply-To")) {
        o.reply_to_raw = *v;
        auto a = mime::parse_addresses(*v);
        if (!a.empty()) o.reply_to_address = a.front().address;
    }
    if (auto v = s.value("X-TipoRicevuta")) o.receipt_type = parse_receipt_type(to_lower(trim(*v)));
    return o;
}

BuiltMessage build_message(MessageKind kind, std::string_view original, const Envelope& envelope,
                           const TransactionContext& tx, const crypto::SigningIdentity& signer) {
    check_context(kind, tx);
    auto facts = read_original(original);
    BuiltMessage built;
    auto head = top_headers(kind, original, facts, envelope, tx);
    built.message_id = head.message_id;
    built.mail_from = std::move(head.mail_from);
    built.rcpt_to = std::move(head.rcpt_to);

    TextFacts tf;
    tf.kind = kind;
    tf.time = italian_time(tx.time);
    tf.subject = facts.subject;
    tf.sender = envelope.mail_from;
    tf.recipients = recipients_of(envelope, tx);
    tf.pec_msgid = tx.pec_msgid;
    tf.recipient = tx.recipient;
    if (kind == MessageKind::presa_in_carico) {
        tf.covered = tx.covered;
        if (tf.covered.empty())
            for (const auto& r : tf.recipients) tf.covered.push_back(r.address);
    }
    tf.error_text = tx.error_text;
    auto texts = render_texts(tf);

    std::string daticert_xml;
    if (daticert_tipo(kind)) {
        built.daticert = make_daticert(kind, facts, envelope, tx);
        daticert_xml = write_daticert(*built.daticert);
    }

    // The original travels as postacert.eml: rewritten ids (transport, completa), hashed
    // attachments (breve; an opaque S/MIME original is carried whole), as received (anomaly).
    std::string brief;
    std::string_view carried;
    if (kind == MessageKind::consegna_breve) {
        brief = brief_original(original);
        carried = brief;
    } else if (carries_original(kind)) {
        carried = original;
    }

    // One random base absent from the original; the suffixes keep the three distinct
    // without any being a prefix of another.
    const auto base = mime::make_boundary({carried});
    const auto outer = base + "_s", mixed = base + "_m", alternative = base + "_a";

    std::string& out = built.data;
    out.reserve(head.text.size() + carried.size() + carried.size() / 64 + 64 * 1024);
    out += head.text;
    out += "MIME-Version: 1.0\r\n";
    out +=
        "Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256;\r\n"
        " boundary=\"" +
        outer + "\"\r\n\r\n";
    out += "This is an S/MIME signed message\r\n\r\n--" + outer + "\r\n";

    const std::size_t signed_start = out.size();
    out += "Content-Type: multipart/mixed; boundary=\"" + mixed + "\"\r\n";
    out += "Content-Transfer-Encoding: binary\r\n\r\n";
    out += "--" + mixed + "\r\n";
    out += "Content-Type: multipart/alternative; boundary=\"" + alternative + "\"\r\n";
    out += "Content-Transfer-Encoding: binary\r\n\r\n";
    out += "--" + alternative + "\r\n";
    append_text_part(out, "plain", texts.plain);
    out += "\r\n--" + alternative + "\r\n";
    append_text_part(out, "html", texts.html);
    out += "\r\n--" + alternative + "--\r\n";
    if (!daticert_xml.empty()) {
        out += "\r\n--" + mixed + "\r\n";
        out += "Content-Type: application/xml; name=\"daticert.xml\"\r\n";
        out += "Content-Disposition: inline; filename=\"daticert.xml\"\r\n";
        out += "Content-Transfer-Encoding: base64\r\n\r\n";
        out += mime::base64(daticert_xml);
    }
    if (carries_original(kind)) {
        out += "\r\n--" + mixed + "\r\n";
        out += "Content-Type: message/rfc822; name=\"postacert.eml\"\r\n";
        out += "Content-Disposition: inline; filename=\"postacert.eml\"\r\n";
        out += std::string("Content-Transfer-Encoding: ") + (mime::is_7bit(carried) ? "7bit" : "8bit") +
               "\r\n\r\n";
        std::size_t before = out.size();
        if (kind == MessageKind::anomaly_envelope)
            mime::append_crlf(out, carried);
        else
            append_postacert(out, carried, tx.pec_msgid, client_msgid(facts, tx));
        if (out.size() == before || out.compare(out.size() - 2, 2, "\r\n") != 0) out += "\r\n";
    }
    out += "\r\n--" + mixed + "--\r\n";
    const std::size_t signed_end = out.size();

    auto signature = crypto::cms_sign_detached(
        signer, std::string_view(out).substr(signed_start, signed_end - signed_start),
        crypto::Digest::sha256);
    out += "\r\n--" + outer + "\r\n";
    out += "Content-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\n";
    out += "Content-Transfer-Encoding: base64\r\n";
    out += "Content-Disposition: attachment; filename=\"smime.p7s\"\r\n\r\n";
    out += mime::base64(signature);
    out += "\r\n--" + outer + "--\r\n";
    return built;
}

}  // namespace pecd::pec
