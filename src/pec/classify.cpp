// classify.cpp - PEC message kind from headers + daticert, with every structural problem
#include "pec/classify.hpp"

#include "core/strings.hpp"

namespace pecd::pec {
namespace {

std::string norm(const std::optional<std::string>& v) {
    return v ? to_lower(trim(*v)) : std::string{};
}

// The 12 h and 24 h timeout notices share every header and daticert value (pec.md 3.10);
// only the signed text tells them apart ("... entro 24 ore" / "within 24 hours").
MessageKind timeout_kind(const std::string& text) {
    std::string flat;
    flat.reserve(text.size());
    for (char c : text) {
        bool ws = c == ' ' || c == '\t' || c == '\r' || c == '\n';
        if (ws && (flat.empty() || flat.back() == ' ')) continue;
        flat += ws ? ' ' : ascii_lower(c);
    }
    bool day = flat.find("24 ore") != std::string::npos || flat.find("24 hours") != std::string::npos;
    return day ? MessageKind::mancata_consegna_timeout_24h : MessageKind::mancata_consegna_timeout_12h;
}

MessageKind kind_from_daticert(const Daticert& d, const ClassifyInput& in, Classification& c) {
    switch (d.tipo) {
        case DaticertTipo::posta_certificata:
            return MessageKind::transport_envelope;
        case DaticertTipo::accettazione:
            return MessageKind::accettazione;
        case DaticertTipo::non_accettazione:
            return d.errore == DaticertErrore::virus ? MessageKind::non_accettazione_virus
                                                     : MessageKind::non_accettazione;
        case DaticertTipo::presa_in_carico:
            return MessageKind::presa_in_carico;
        case DaticertTipo::rilevazione_virus:
            return MessageKind::rilevazione_virus;
        case DaticertTipo::errore_consegna:
            return d.errore == DaticertErrore::virus ? MessageKind::mancata_consegna_virus
                                                     : MessageKind::mancata_consegna;
        case DaticertTipo::preavviso_errore_consegna:
            return timeout_kind(in.text);
        case DaticertTipo::avvenuta_consegna:
            if (d.ricevuta) return consegna_kind(*d.ricevuta);
            c.problems.push_back("delivery receipt whose daticert.xml has no <ricevuta tipo=...>");
            return in.has_postacert ? MessageKind::consegna_completa : MessageKind::consegna_sintetica;
    }
    return MessageKind::accettazione;  // unreachable: every DaticertTipo is handled above
}

std::optional<MessageKind> kind_from_header(const std::string& ricevuta, const ClassifyInput& in) {
    bool virus = norm(in.x_verifica_sicurezza) == "errore";
    if (ricevuta == "accettazione") return MessageKind::accettazione;
    if (ricevuta == "non-accettazione")
        return virus ? MessageKind::non_accettazione_virus : MessageKind::non_accettazione;
    if (ricevuta == "presa-in-carico") return MessageKind::presa_in_carico;
    if (ricevuta == "rilevazione-virus") return MessageKind::rilevazione_virus;
    if (ricevuta == "errore-consegna")
        return virus ? MessageKind::mancata_consegna_virus : MessageKind::mancata_consegna;
    if (ricevuta == "preavviso-errore-consegna") return timeout_kind(in.text);
    if (ricevuta == "avvenuta-consegna")
        return in.has_postacert ? MessageKind::consegna_completa : MessageKind::consegna_sintetica;
    return std::nullopt;
}

void need_daticert(const ClassifyInput& in, Classification& c) {
    if (!in.has_daticert)
        c.problems.push_back("no daticert.xml part in the signed content");
    else if (!in.daticert)
        c.problems.push_back("daticert.xml does not parse: " + in.daticert_error);
}

// The per-kind content matrix of pec.md 3.11 and 4.
void check_shape(MessageKind k, const ClassifyInput& in, Classification& c) {
    std::string name(kind_name(k));
    if (k == MessageKind::anomaly_envelope) {
        if (!in.has_postacert)
            c.problems.push_back("anomaly envelope without the received message (message/rfc822)");
        if (in.has_daticert)
            c.problems.push_back("anomaly envelope carries daticert.xml (pec.md 3.5: no other parts)");
        return;
    }
    if (carries_original(k) && !in.has_postacert)
        c.problems.push_back(name + " without postacert.eml (the original message)");
    if (!carries_original(k) && in.has_postacert)
        c.problems.push_back(name + " carries postacert.eml, which this kind must not attach");
    if (!in.daticert) return;
    const Daticert& d = *in.daticert;
    if (carries_receipt_type(k) && !d.ricevuta)
        c.problems.push_back("daticert.xml lacks <ricevuta tipo=...>");
    if (names_consegna(k) && !d.consegna)
        c.problems.push_back("daticert.xml lacks <consegna> (recipient concerned)");
    if (k == MessageKind::presa_in_carico && d.ricezione.empty())
        c.problems.push_back("presa-in-carico whose daticert.xml lists no <ricezione>");
    if (d.tipo == DaticertTipo::errore_consegna && d.errore == DaticertErrore::nessuno)
        c.problems.push_back("errore-consegna with errore=\"nessuno\"");
    if (d.tipo == DaticertTipo::non_accettazione && d.errore == DaticertErrore::nessuno)
        c.problems.push_back("non-accettazione with errore=\"nessuno\"");
    if (d.identificativo.empty()) c.problems.push_back("daticert.xml has an empty <identificativo>");
}

}  // namespace

Classification classify(const ClassifyInput& in) {
    Classification c;
    c.claims_pec = in.x_trasporto.has_value() || in.x_ricevuta.has_value();
    const auto trasporto = norm(in.x_trasporto);
    const auto ricevuta = norm(in.x_ricevuta);

    if (in.x_trasporto) {
        if (in.x_ricevuta) c.problems.push_back("both X-Trasporto and X-Ricevuta are present");
        if (trasporto == "posta-certificata") {
            c.kind = MessageKind::transport_envelope;
            need_daticert(in, c);
        } else if (trasporto == "errore") {
            c.kind = MessageKind::anomaly_envelope;
        } else {
            c.problems.push_back("X-Trasporto is \"" + trasporto +
                                 "\", neither posta-certificata nor errore");
        }
    } else if (in.x_ricevuta) {
        need_daticert(in, c);
        if (in.daticert) {
            c.kind = kind_from_daticert(*in.daticert, in, c);
        } else {
            c.kind = kind_from_header(ricevuta, in);
            if (!c.kind)
                c.problems.push_back("X-Ricevuta is \"" + ricevuta + "\", not a PEC receipt or notice");
        }
    } else {
        if (in.has_daticert)
            c.problems.push_back(
                "carries daticert.xml but neither X-Trasporto nor X-Ricevuta: a PEC message "
                "whose headers were removed");
        return c;
    }
    if (!in.multipart_signed)
        c.problems.push_back("a PEC message must be S/MIME multipart/signed; this one is not");
    if (c.kind) check_shape(*c.kind, in, c);
    return c;
}

std::string classification_name(const Classification& c) {
    if (c.kind) return std::string(kind_name(*c.kind));
    return c.claims_pec || c.malformed() ? "non-riconosciuto" : "posta-ordinaria";
}

}  // namespace pecd::pec
