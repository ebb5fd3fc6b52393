// bench_message.hpp - signed PEC transport envelopes of a chosen size, for the benchmarks
//
// make_identity() creates an RSA-2048 provider key and self-signed certificate with the
// OpenSSL API. make_envelope() builds a complete busta di trasporto (pec.md 3.1): PEC
// headers, multipart/signed over multipart/mixed (text, daticert.xml, postacert.eml with
// an attachment of `attachment_bytes` pseudo-random bytes, base64), detached CMS
// SHA-256 signature from crypto::cms_sign_detached. CRLF line ends throughout. The result
// verifies as a valid, consistent transport envelope.
#pragma once

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <random>
#include <string>

#include "crypto/cms.hpp"
#include "pec/daticert.hpp"

namespace pecd::bench {

inline crypto::SigningIdentity make_identity() {
    crypto::SigningIdentity id;
    id.key = crypto::PkeyPtr(EVP_RSA_gen(2048), crypto::PkeyFree{});
    X509* x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 365);
    X509_set_pubkey(x, id.key.get());
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("Posta Certificata Bench"), -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509_sign(x, id.key.get(), EVP_sha256());
    id.certificate = crypto::X509Ptr(x, crypto::X509Free{});
    return id;
}

// Base64 in 76-character CRLF lines (RFC 2045).
inline void append_base64_lines(std::string& out, std::string_view bytes) {
    unsigned char line[80];
    for (std::size_t off = 0; off < bytes.size(); off += 57) {
        auto chunk = bytes.substr(off, 57);
        int n = EVP_EncodeBlock(line, reinterpret_cast<const unsigned char*>(chunk.data()),
                                static_cast<int>(chunk.size()));
        out.append(reinterpret_cast<char*>(line), static_cast<std::size_t>(n));
        out += "\r\n";
    }
}

inline std::string make_envelope(const crypto::SigningIdentity& id, std::size_t attachment_bytes) {
    const std::string pec_id = "opec1.20251125101500.4242.1.1@pec.bench.example";
    const std::string client_id = "<client-0001@mail.bench.example>";

    pec::Daticert d;
    d.tipo = pec::DaticertTipo::posta_certificata;
    d.mittente = "mittente@pec.bench.example";
    d.destinatari = {{"destinatario@pec.altro.example", pec::RecipientType::certificato}};
    d.risposte = d.mittente;
    d.oggetto = "Fattura 2025/0042";
    d.gestore_emittente = "Bench PEC S.p.A.";
    d.data = {"+0100", "25/11/2025", "10:15:00"};
    d.identificativo = pec_id;
    d.msgid = client_id;
    d.ricevuta = pec::ReceiptType::completa;

    std::string attachment(attachment_bytes, '\0');
    std::mt19937_64 rng(7);
    for (std::size_t i = 0; i < attachment.size(); i += 8) {
        auto v = rng();
        for (std::size_t k = 0; k < 8 && i + k < attachment.size(); ++k)
            attachment[i + k] = static_cast<char>(v >> (k * 8));
    }

    std::string signed_part;
    signed_part.reserve(attachment_bytes * 4 / 3 + attachment_bytes / 25 + 4096);
    signed_part +=
        "Content-Type: multipart/mixed; boundary=\"----------=_mixed\"\r\n"
        "MIME-Version: 1.0\r\n\r\n"
        "------------=_mixed\r\n"
        "Content-Type: text/plain; charset=\"iso-8859-1\"\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        "Messaggio di posta certificata\r\n\r\n"
        "Il giorno 25/11/2025 alle ore 10:15:00 (+0100) il messaggio\r\n"
        "\"Fattura 2025/0042\" =E8 stato inviato da \"mittente@pec.bench.example\"\r\n"
        "indirizzato a:\r\ndestinatario@pec.altro.example\r\n"
        "Il messaggio originale =E8 incluso in allegato.\r\n"
        "Identificativo messaggio: " +
        pec_id +
        "\r\n\r\n"
        "------------=_mixed\r\n"
        "Content-Type: application/xml; name=\"daticert.xml\"\r\n"
        "Content-Disposition: inline; filename=\"daticert.xml\"\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n";
    append_base64_lines(signed_part, pec::write_daticert(d));
    signed_part +=
        "\r\n------------=_mixed\r\n"
        "Content-Type: message/rfc822; name=\"postacert.eml\"\r\n"
        "Content-Disposition: inline; filename=\"postacert.eml\"\r\n\r\n"
        "Date: Tue, 25 Nov 2025 10:14:58 +0100\r\n"
        "From: mittente@pec.bench.example\r\nTo: destinatario@pec.altro.example\r\n"
        "Subject: Fattura 2025/0042\r\nMessage-ID: <" +
        pec_id +
        ">\r\n"
        "X-Riferimento-Message-ID: " +
        client_id +
        "\r\nX-TipoRicevuta: completa\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"orig\"\r\n\r\n"
        "--orig\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nIn allegato la fattura.\r\n\r\n"
        "--orig\r\nContent-Type: application/octet-stream; name=\"fattura.bin\"\r\n"
        "Content-Disposition: attachment; filename=\"fattura.bin\"\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n";
    append_base64_lines(signed_part, attachment);
    attachment = std::string();
    signed_part += "--orig--\r\n\r\n------------=_mixed--\r\n";

    auto cms = crypto::cms_sign_detached(id, signed_part, crypto::Digest::sha256);
    std::string msg;
    msg.reserve(signed_part.size() + cms.size() * 2 + 2048);
    msg +=
        "Return-Path: <mittente@pec.bench.example>\r\n"
        "Date: Tue, 25 Nov 2025 10:15:00 +0100\r\n"
        "X-Trasporto: posta-certificata\r\n"
        "X-Riferimento-Message-ID: " +
        client_id +
        "\r\n"
        "X-TipoRicevuta: completa\r\n"
        "Subject: POSTA CERTIFICATA: Fattura 2025/0042\r\n"
        "From: \"Per conto di: mittente@pec.bench.example\" <posta-certificata@pec.bench.example>\r\n"
        "To: destinatario@pec.altro.example\r\n"
        "Reply-To: mittente@pec.bench.example\r\n"
        "Message-ID: <" +
        pec_id +
        ">\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=\"sha-256\"; "
        "boundary=\"----SIGNED\"\r\n\r\n"
        "This is an S/MIME signed message\r\n\r\n------SIGNED\r\n";
    msg += signed_part;
    signed_part = std::string();
    msg +=
        "\r\n------SIGNED\r\n"
        "Content-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        "Content-Disposition: attachment; filename=\"smime.p7s\"\r\n\r\n";
    append_base64_lines(msg, cms);
    msg += "\r\n------SIGNED--\r\n";
    return msg;
}

}  // namespace pecd::bench
