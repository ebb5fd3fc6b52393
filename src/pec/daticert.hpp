// daticert.hpp - the certification data of a PEC message (daticert.xml): model, parser, writer
//
// Daticert mirrors pec.md section 4 element by element. Text values are stored decoded
// (entities resolved, UTF-8) and trimmed of surrounding white space; msgid keeps its
// angle brackets ("<id@host>"), as the XML carries them.
//
// parse_daticert() validates against the DTD pecd ships (src/pec/daticert.dtd, compiled
// in; daticert_dtd() returns it). The document's own DOCTYPE is never honoured: a
// document that carries one is refused, nothing is fetched from the network, no external
// entity is loaded. Any malformed or invalid input throws pecd::ParseError with the
// 1-based line and the element concerned; it never crashes, whatever the bytes.
//
// write_daticert() produces the shape real providers send: UTF-8 declaration, no
// DOCTYPE, 4-space indentation, `<ricevuta tipo="completa" />`, `&lt;msgid&gt;`, one
// trailing newline. Invalid UTF-8 or XML-forbidden control characters in values are
// replaced by U+FFFD so the output always parses. parse(write(d)) == d for any d whose
// values are valid, trimmed UTF-8.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"
#include "pec/types.hpp"

namespace pecd::pec {

struct DaticertRecipient {
    std::string address;
    RecipientType type = RecipientType::certificato;
    bool operator==(const DaticertRecipient&) const = default;
};

// <data zona="+0100"><giorno>dd/mm/yyyy</giorno><ora>hh:mm:ss</ora></data>, as text.
struct DaticertDate {
    std::string zona;    // "+0100" / "+0200"
    std::string giorno;  // "03/02/2025"
    std::string ora;     // "10:15:07"
    bool operator==(const DaticertDate&) const = default;
};

struct Daticert {
    DaticertTipo tipo = DaticertTipo::posta_certificata;
    DaticertErrore errore = DaticertErrore::nessuno;
    // intestazione: data of the original message
    std::string mittente;
    std::vector<DaticertRecipient> destinatari;
    std::string risposte;
    std::optional<std::string> oggetto;
    // dati: data of this PEC event
    std::string gestore_emittente;
    DaticertDate data;
    std::string identificativo;
    std::optional<std::string> msgid;
    std::optional<ReceiptType> ricevuta;
    std::optional<std::string> consegna;
    std::vector<std::string> ricezione;
    std::optional<std::string> errore_esteso;

    bool operator==(const Daticert&) const = default;
};

// Throws ParseError (line, element) on malformed XML or a document the DTD rejects.
Daticert parse_daticert(std::string_view xml);

std::string write_daticert(const Daticert& d);

// The DTD text every daticert.xml is validated against.
std::string_view daticert_dtd() noexcept;

// Italian legal time (Europe/Rome: CET, CEST between the last Sundays of March and
// October at 01:00 UTC - the EU rule of Directive 2000/84/EC) of an instant.
struct ItalianTime {
    int year, month, day, hour, minute, second;
    int offset_minutes;           // +60 or +120
    std::string zona() const;     // "+0100"
    std::string giorno() const;   // "dd/mm/yyyy"
    std::string ora() const;      // "hh:mm:ss"
    std::string rfc5322() const;  // "Tue, 13 Nov 2018 16:39:26 +0100" (Date: header)
};
ItalianTime italian_time(TimePoint t);
DaticertDate daticert_date(TimePoint t);

}  // namespace pecd::pec
