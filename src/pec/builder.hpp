// builder.hpp - building the signed PEC messages: envelopes, receipts and notices
//
// build_message() produces one complete message of any MessageKind (pec.md 2-3):
//   top-level headers   X-Trasporto / X-Ricevuta (+ X-VerificaSicurezza, X-Mittente),
//                       Date (the transaction's single time reference, Italian time),
//                       Subject = prefix + original subject, From, To, Reply-To rule,
//                       Message-ID, X-Riferimento-Message-ID, X-TipoRicevuta (envelope)
//   multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256
//     multipart/mixed                      <- signed, in CRLF canonical form
//       multipart/alternative (text/plain + text/html, Italian then English)
//       daticert.xml  application/xml, base64          (not in the anomaly envelope)
//       postacert.eml message/rfc822, 7bit/8bit         (kinds with carries_original())
//     smime.p7s     application/pkcs7-signature, detached CMS over the signed part
//
// Inputs: the original message bytes (at the access point: the client's message; at the
// reception/delivery point: the original as carried in postacert.eml; for the anomaly
// envelope: the message as received), its SMTP envelope (MAIL FROM = certified sender,
// RCPT TO = certified recipients), and the transaction context.
//
// Memory: the output is assembled in one buffer reserved up front; the original is
// appended once (CRLF-canonicalised, never base64-encoded) and signed in place, so a
// 100 MB original costs about its size once more, not several times.
//
// Throws pecd::Error when the context lacks what the kind needs (a consegna recipient,
// a provider notification address); crypto failures propagate from crypto::cms_*.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"
#include "core/envelope.hpp"
#include "crypto/identity.hpp"
#include "pec/daticert.hpp"
#include "pec/types.hpp"

namespace pecd::pec {

struct TransactionContext {
    // The single time reference of the transaction (pec.md 2.6): Date, daticert, texts.
    TimePoint time{};
    std::string provider_domain;  // this provider's mail domain: posta-certificata@<domain>
    std::string provider_name;    // daticert gestore-emittente, e.g. "Esempio PEC S.p.A."
    std::string pec_msgid;        // the PEC msgid (identificativo), without angle brackets
    // The client's Message-ID with angle brackets. nullopt: read from the original's
    // Message-ID (access point). Empty: the client gave none.
    std::optional<std::string> client_msgid;
    // Every original recipient with certificato/esterno. Empty: the envelope's RCPT TO,
    // all "certificato".
    std::vector<DaticertRecipient> recipients;
    // The receipt kind asked for. nullopt: the original's X-TipoRicevuta (default completa).
    std::optional<ReceiptType> requested_receipt;
    std::string recipient;                 // <consegna>: the recipient a per-recipient message is about
    std::vector<std::string> covered;      // <ricezione> (presa in carico); empty: all recipients
    std::optional<DaticertErrore> errore;  // overrides default_errore(kind)
    std::string error_text;                // <errore-esteso>; for the anomaly envelope, the error in its text
    std::string notify_address;            // To: of presa-in-carico / rilevazione-virus (mailReceipt)
    // Message-ID of a receipt/notice (no brackets). Empty: a fresh random id at
    // provider_domain. Envelopes ignore it (transport: pec_msgid; anomaly: the original's).
    std::string message_id;
};

struct BuiltMessage {
    std::string data;                  // the complete message, CRLF line ends
    std::string message_id;            // its Message-ID without brackets
    std::string mail_from;             // SMTP reverse path to send it with
    std::vector<std::string> rcpt_to;  // SMTP forward paths
    std::optional<Daticert> daticert;  // what daticert.xml says (absent for the anomaly envelope)
};

BuiltMessage build_message(MessageKind kind, std::string_view original, const Envelope& envelope,
                           const TransactionContext& tx, const crypto::SigningIdentity& signer);

// The header facts of an original message the builders use (exposed for tests and the
// engine). All values decoded to UTF-8 except the raw ones.
struct OriginalFacts {
    std::string subject;                      // decoded
    std::string subject_raw;                  // as written (unfolded), for the prefixed Subject
    std::string message_id;                   // "<...>" or empty
    std::string from_address;                 // first From: address
    std::string reply_to_raw;                 // Reply-To as written (unfolded), empty when absent
    std::string reply_to_address;             // first Reply-To address
    std::optional<ReceiptType> receipt_type;  // X-TipoRicevuta (any case), when valid
};
OriginalFacts read_original(std::string_view original);

}  // namespace pecd::pec
