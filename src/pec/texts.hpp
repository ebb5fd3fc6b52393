// texts.hpp - the human-readable part of every PEC message (Italian, then English)
//
// render_texts() gives the text/plain and text/html bodies of a message kind from the
// facts of the transaction. Both carry the same information (pec.md 2.1): Italian first,
// an English version after it. The HTML is self-contained: no images, fonts, style
// sheets, links or scripts; every value is HTML-escaped. Every receipt/notice ends its
// Italian text with "Identificativo del messaggio: <PEC msgid>" (pec.md 2.5).
// Output is UTF-8 with LF line ends; the builder chooses the charset and encoding.
#pragma once

#include <string>
#include <vector>

#include "pec/daticert.hpp"
#include "pec/types.hpp"

namespace pecd::pec {

struct TextFacts {
    MessageKind kind = MessageKind::transport_envelope;
    ItalianTime time{};
    std::string subject;  // decoded original subject
    std::string sender;   // certified sender
    std::vector<DaticertRecipient> recipients;
    std::string pec_msgid;
    std::string recipient;             // the recipient a per-recipient notice is about
    std::vector<std::string> covered;  // presa in carico: recipients covered
    std::string error_text;            // reason (non-acceptance, non-delivery, anomaly)
};

struct Texts {
    std::string title;  // Italian title, e.g. "Ricevuta di accettazione"
    std::string plain;
    std::string html;
};

Texts render_texts(const TextFacts& f);

}  // namespace pecd::pec
