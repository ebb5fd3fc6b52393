// types.hpp - the PEC message kinds and the fixed values each kind carries
//
// One enumerator per message a provider emits (pec.md 3.1-3.10). For each kind the
// functions below give the values pec.md 2.3, 2.4 and 3.11 fix: the top-level header
// (X-Trasporto or X-Ricevuta) and its value, X-VerificaSicurezza, the daticert.xml
// tipo/errore, the Subject prefix and whether the original travels in postacert.eml.
// The tables are the single source of those strings for the builders and the readers.
//
// Contract: every function is total over the enumerators (no UB for any value), the
// returned string_views point to static storage, parse_* functions are exact-match on
// the wire spelling (the daticert values are lower case by the DTD) and return nullopt
// for anything else. Enumerators are only ever appended (stable numbering).
#pragma once

#include <array>
#include <optional>
#include <string_view>

namespace pecd::pec {

enum class MessageKind {
    transport_envelope,            // busta di trasporto (3.1)
    anomaly_envelope,              // busta di anomalia (3.5)
    accettazione,                  // ricevuta di accettazione (3.2)
    non_accettazione,              // avviso di non accettazione, formal exception (3.3)
    non_accettazione_virus,        // avviso di non accettazione per virus (3.3)
    presa_in_carico,               // ricevuta di presa in carico (3.4)
    rilevazione_virus,             // avviso di rilevazione virus (3.6)
    mancata_consegna,              // avviso di mancata consegna (3.9)
    mancata_consegna_virus,        // avviso di mancata consegna per virus (3.7)
    mancata_consegna_timeout_12h,  // preavviso: not delivered within 12 hours (3.10)
    mancata_consegna_timeout_24h,  // not delivered within 24 hours (3.10)
    consegna_completa,             // ricevuta di avvenuta consegna, completa (3.8)
    consegna_breve,                // ricevuta di avvenuta consegna, breve (3.8)
    consegna_sintetica,            // ricevuta di avvenuta consegna, sintetica (3.8)
};

inline constexpr std::array<MessageKind, 14> all_message_kinds = {
    MessageKind::transport_envelope,
    MessageKind::anomaly_envelope,
    MessageKind::accettazione,
    MessageKind::non_accettazione,
    MessageKind::non_accettazione_virus,
    MessageKind::presa_in_carico,
    MessageKind::rilevazione_virus,
    MessageKind::mancata_consegna,
    MessageKind::mancata_consegna_virus,
    MessageKind::mancata_consegna_timeout_12h,
    MessageKind::mancata_consegna_timeout_24h,
    MessageKind::consegna_completa,
    MessageKind::consegna_breve,
    MessageKind::consegna_sintetica,
};

// X-TipoRicevuta values and daticert <ricevuta tipo=...>.
enum class ReceiptType { completa, breve, sintetica };

// daticert postacert@tipo.
enum class DaticertTipo {
    accettazione,
    non_accettazione,
    presa_in_carico,
    avvenuta_consegna,
    posta_certificata,
    errore_consegna,
    preavviso_errore_consegna,
    rilevazione_virus,
};

// daticert postacert@errore (DTD default "nessuno").
enum class DaticertErrore { nessuno, no_dest, no_dominio, virus, altro };

// daticert destinatari@tipo (DTD default "certificato"): PEC mailbox or ordinary mail.
enum class RecipientType { certificato, esterno };

// --- wire spellings ---

constexpr std::string_view to_string(ReceiptType t) noexcept {
    switch (t) {
        case ReceiptType::breve:
            return "breve";
        case ReceiptType::sintetica:
            return "sintetica";
        default:
            return "completa";
    }
}

constexpr std::string_view to_string(DaticertTipo t) noexcept {
    switch (t) {
        case DaticertTipo::accettazione:
            return "accettazione";
        case DaticertTipo::non_accettazione:
            return "non-accettazione";
        case DaticertTipo::presa_in_carico:
            return "presa-in-carico";
        case DaticertTipo::avvenuta_consegna:
            return "avvenuta-consegna";
        case DaticertTipo::posta_certificata:
            return "posta-certificata";
        case DaticertTipo::errore_consegna:
            return "errore-consegna";
        case DaticertTipo::preavviso_errore_consegna:
            return "preavviso-errore-consegna";
        default:
            return "rilevazione-virus";
    }
}

constexpr std::string_view to_string(DaticertErrore e) noexcept {
    switch (e) {
        case DaticertErrore::no_dest:
            return "no-dest";
        case DaticertErrore::no_dominio:
            return "no-dominio";
        case DaticertErrore::virus:
            return "virus";
        case DaticertErrore::altro:
            return "altro";
        default:
            return "nessuno";
    }
}

constexpr std::string_view to_string(RecipientType t) noexcept {
    return t == RecipientType::esterno ? "esterno" : "certificato";
}

constexpr std::optional<ReceiptType> parse_receipt_type(std::string_view s) noexcept {
    for (auto t : {ReceiptType::completa, ReceiptType::breve, ReceiptType::sintetica})
        if (to_string(t) == s) return t;
    return std::nullopt;
}

constexpr std::optional<DaticertTipo> parse_daticert_tipo(std::string_view s) noexcept {
    for (auto t :
         {DaticertTipo::accettazione, DaticertTipo::non_accettazione, DaticertTipo::presa_in_carico,
          DaticertTipo::avvenuta_consegna, DaticertTipo::posta_certificata, DaticertTipo::errore_consegna,
          DaticertTipo::preavviso_errore_consegna, DaticertTipo::rilevazione_virus})
        if (to_string(t) == s) return t;
    return std::nullopt;
}

constexpr std::optional<DaticertErrore> parse_daticert_errore(std::string_view s) noexcept {
    for (auto e : {DaticertErrore::nessuno, DaticertErrore::no_dest, DaticertErrore::no_dominio,
                   DaticertErrore::virus, DaticertErrore::altro})
        if (to_string(e) == s) return e;
    return std::nullopt;
}

constexpr std::optional<RecipientType> parse_recipient_type(std::string_view s) noexcept {
    if (s == "certificato") return RecipientType::certificato;
    if (s == "esterno") return RecipientType::esterno;
    return std::nullopt;
}

// --- per-kind facts ---

// Envelopes carry X-Trasporto; every other kind is a receipt/notice with X-Ricevuta.
constexpr bool is_envelope(MessageKind k) noexcept {
    return k == MessageKind::transport_envelope || k == MessageKind::anomaly_envelope;
}

// "X-Trasporto" for envelopes, "X-Ricevuta" for receipts and notices.
constexpr std::string_view pec_header_name(MessageKind k) noexcept {
    return is_envelope(k) ? "X-Trasporto" : "X-Ricevuta";
}

// The value of pec_header_name(k) (pec.md 2.3, 3.11).
constexpr std::string_view pec_header_value(MessageKind k) noexcept {
    switch (k) {
        case MessageKind::transport_envelope:
            return "posta-certificata";
        case MessageKind::anomaly_envelope:
            return "errore";
        case MessageKind::accettazione:
            return "accettazione";
        case MessageKind::non_accettazione:
        case MessageKind::non_accettazione_virus:
            return "non-accettazione";
        case MessageKind::presa_in_carico:
            return "presa-in-carico";
        case MessageKind::rilevazione_virus:
            return "rilevazione-virus";
        case MessageKind::mancata_consegna:
        case MessageKind::mancata_consegna_virus:
            return "errore-consegna";
        case MessageKind::mancata_consegna_timeout_12h:
        case MessageKind::mancata_consegna_timeout_24h:
            return "preavviso-errore-consegna";
        default:
            return "avvenuta-consegna";
    }
}

// X-VerificaSicurezza value ("errore") for the two virus notices sent to the user
// (3.3 virus, 3.7); nullopt when the header is absent.
constexpr std::optional<std::string_view> verifica_sicurezza(MessageKind k) noexcept {
    if (k == MessageKind::non_accettazione_virus || k == MessageKind::mancata_consegna_virus)
        return std::string_view("errore");
    return std::nullopt;
}

// daticert postacert@tipo; nullopt for the anomaly envelope, which has no daticert (3.5).
constexpr std::optional<DaticertTipo> daticert_tipo(MessageKind k) noexcept {
    switch (k) {
        case MessageKind::transport_envelope:
            return DaticertTipo::posta_certificata;
        case MessageKind::anomaly_envelope:
            return std::nullopt;
        case MessageKind::accettazione:
            return DaticertTipo::accettazione;
        case MessageKind::non_accettazione:
        case MessageKind::non_accettazione_virus:
            return DaticertTipo::non_accettazione;
        case MessageKind::presa_in_carico:
            return DaticertTipo::presa_in_carico;
        case MessageKind::rilevazione_virus:
            return DaticertTipo::rilevazione_virus;
        case MessageKind::mancata_consegna:
        case MessageKind::mancata_consegna_virus:
            return DaticertTipo::errore_consegna;
        case MessageKind::mancata_consegna_timeout_12h:
        case MessageKind::mancata_consegna_timeout_24h:
            return DaticertTipo::preavviso_errore_consegna;
        default:
            return DaticertTipo::avvenuta_consegna;
    }
}

// The daticert errore a kind carries unless the caller knows better: virus kinds say
// "virus", the formal non-acceptance "altro"; a plain non-delivery defaults to "altro"
// (callers pass no-dest / no-dominio when they know, pec.md 3.9); the rest "nessuno".
constexpr DaticertErrore default_errore(MessageKind k) noexcept {
    switch (k) {
        case MessageKind::non_accettazione_virus:
        case MessageKind::rilevazione_virus:
        case MessageKind::mancata_consegna_virus:
            return DaticertErrore::virus;
        case MessageKind::non_accettazione:
        case MessageKind::mancata_consegna:
            return DaticertErrore::altro;
        default:
            return DaticertErrore::nessuno;
    }
}

// The Subject prefix including the colon and the single space that follows it
// (pec.md 2.4): Subject = subject_prefix(k) + original subject.
constexpr std::string_view subject_prefix(MessageKind k) noexcept {
    switch (k) {
        case MessageKind::transport_envelope:
            return "POSTA CERTIFICATA: ";
        case MessageKind::anomaly_envelope:
            return "ANOMALIA MESSAGGIO: ";
        case MessageKind::accettazione:
            return "ACCETTAZIONE: ";
        case MessageKind::non_accettazione:
            return "AVVISO DI NON ACCETTAZIONE: ";
        case MessageKind::non_accettazione_virus:
            return "AVVISO DI NON ACCETTAZIONE PER VIRUS: ";
        case MessageKind::presa_in_carico:
            return "PRESA IN CARICO: ";
        case MessageKind::rilevazione_virus:
            return "PROBLEMA DI SICUREZZA: ";
        case MessageKind::mancata_consegna:
            return "AVVISO DI MANCATA CONSEGNA: ";
        case MessageKind::mancata_consegna_virus:
            return "AVVISO DI MANCATA CONSEGNA PER VIRUS: ";
        case MessageKind::mancata_consegna_timeout_12h:
        case MessageKind::mancata_consegna_timeout_24h:
            return "AVVISO DI MANCATA CONSEGNA PER SUP. TEMPO MASSIMO: ";
        default:
            return "CONSEGNA: ";
    }
}

// The delivery-receipt kind for a requested receipt type, and back.
constexpr MessageKind consegna_kind(ReceiptType t) noexcept {
    switch (t) {
        case ReceiptType::breve:
            return MessageKind::consegna_breve;
        case ReceiptType::sintetica:
            return MessageKind::consegna_sintetica;
        default:
            return MessageKind::consegna_completa;
    }
}
constexpr std::optional<ReceiptType> consegna_receipt_type(MessageKind k) noexcept {
    switch (k) {
        case MessageKind::consegna_completa:
            return ReceiptType::completa;
        case MessageKind::consegna_breve:
            return ReceiptType::breve;
        case MessageKind::consegna_sintetica:
            return ReceiptType::sintetica;
        default:
            return std::nullopt;
    }
}

// Whether the message carries the original as message/rfc822 "postacert.eml" (for the
// brief receipt: the original with its named parts replaced by hashes).
constexpr bool carries_original(MessageKind k) noexcept {
    return k == MessageKind::transport_envelope || k == MessageKind::anomaly_envelope ||
           k == MessageKind::consegna_completa || k == MessageKind::consegna_breve;
}

// Whether daticert <ricevuta tipo=.../> is present (envelope and delivery receipts).
constexpr bool carries_receipt_type(MessageKind k) noexcept {
    return k == MessageKind::transport_envelope || consegna_receipt_type(k).has_value();
}

// Whether daticert <consegna> names the recipient concerned (per-recipient notices).
constexpr bool names_consegna(MessageKind k) noexcept {
    switch (k) {
        case MessageKind::rilevazione_virus:
        case MessageKind::mancata_consegna:
        case MessageKind::mancata_consegna_virus:
        case MessageKind::mancata_consegna_timeout_12h:
        case MessageKind::mancata_consegna_timeout_24h:
        case MessageKind::consegna_completa:
        case MessageKind::consegna_breve:
        case MessageKind::consegna_sintetica:
            return true;
        default:
            return false;
    }
}

// Provider-to-provider notices go to the sender provider's service mailbox (mailReceipt
// of the index), not to the user (3.4, 3.6).
constexpr bool addressed_to_provider(MessageKind k) noexcept {
    return k == MessageKind::presa_in_carico || k == MessageKind::rilevazione_virus;
}

// Stable short names (CLI, logs): "busta-trasporto", "accettazione", ...
constexpr std::string_view kind_name(MessageKind k) noexcept {
    switch (k) {
        case MessageKind::transport_envelope:
            return "busta-trasporto";
        case MessageKind::anomaly_envelope:
            return "busta-anomalia";
        case MessageKind::accettazione:
            return "accettazione";
        case MessageKind::non_accettazione:
            return "non-accettazione";
        case MessageKind::non_accettazione_virus:
            return "non-accettazione-virus";
        case MessageKind::presa_in_carico:
            return "presa-in-carico";
        case MessageKind::rilevazione_virus:
            return "rilevazione-virus";
        case MessageKind::mancata_consegna:
            return "mancata-consegna";
        case MessageKind::mancata_consegna_virus:
            return "mancata-consegna-virus";
        case MessageKind::mancata_consegna_timeout_12h:
            return "mancata-consegna-12h";
        case MessageKind::mancata_consegna_timeout_24h:
            return "mancata-consegna-24h";
        case MessageKind::consegna_completa:
            return "consegna-completa";
        case MessageKind::consegna_breve:
            return "consegna-breve";
        default:
            return "consegna-sintetica";
    }
}

constexpr std::optional<MessageKind> parse_kind_name(std::string_view s) noexcept {
    for (auto k : all_message_kinds)
        if (kind_name(k) == s) return k;
    return std::nullopt;
}

}  // namespace pecd::pec
