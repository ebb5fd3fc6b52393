// classify.hpp - which PEC message (or ordinary mail) an incoming message is
//
// classify() is pure: it looks at facts already extracted from a message (the PEC
// headers, whether it is multipart/signed, the parsed daticert.xml, postacert.eml) and
// says what the message is and, when it claims to be PEC but does not have the shape
// pec.md sections 2-4 require, every reason why it is malformed.
//
// Rules relied on by callers:
// - X-Trasporto is tested first (pec.md 10.3): an envelope also carries
//   X-Riferimento-Message-ID and must not be taken for a receipt.
// - For receipts the kind comes from daticert (postacert@tipo, @errore, <ricevuta tipo>)
//   whenever it parsed; the unsigned X-Ricevuta header only decides when daticert is
//   missing or broken, and that is itself a malformation. Header/daticert disagreements are
//   not judged here but by pec::verify (consistency verdict).
// - A message with neither X-Trasporto nor X-Ricevuta is ordinary mail; if it
//   nevertheless carries daticert.xml it is reported malformed (a PEC message whose
//   headers were stripped), still with no kind.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "pec/daticert.hpp"
#include "pec/types.hpp"

namespace pecd::pec {

struct ClassifyInput {
    std::optional<std::string> x_trasporto;
    std::optional<std::string> x_ricevuta;
    std::optional<std::string> x_verifica_sicurezza;
    bool multipart_signed = false;
    bool has_daticert = false;
    std::optional<Daticert> daticert;  // parsed daticert.xml
    std::string daticert_error;        // why it did not parse (has_daticert && !daticert)
    bool has_postacert = false;
    std::string text;  // the text part (tells the 12 h from the 24 h notice)
};

struct Classification {
    std::optional<MessageKind> kind;    // nullopt: ordinary mail (or unrecognisable)
    bool claims_pec = false;            // X-Trasporto or X-Ricevuta present
    std::vector<std::string> problems;  // empty: well formed
    bool malformed() const noexcept { return !problems.empty(); }
    bool ordinary() const noexcept { return !kind && !claims_pec && problems.empty(); }
};

Classification classify(const ClassifyInput& in);

// "busta-trasporto", ..., or "posta-ordinaria" / "non-riconosciuto" when there is no kind.
std::string classification_name(const Classification& c);

}  // namespace pecd::pec
