// delivery_point.hpp - the delivery point's notice after storing one message (pec.md 5.3)
//
// delivery_notice() is pure given its inputs: the raw message the reception point
// handed over, its PecVerification, the one recipient mailbox concerned and what the
// mailbox store reported. Only a valid busta di trasporto gets a notice:
//   stored      -> ricevuta di avvenuta consegna of the kind of pec.md 3.8: the daticert
//                  <ricevuta> (X-TipoRicevuta) for a To: recipient, sintetica for a Cc:
//                  recipient; a recipient in both or in neither counts as To: (primary)
//   not stored  -> avviso di mancata consegna, errore "no-dest" for an unknown mailbox,
//                  "altro" otherwise; <errore-esteso> = "<enhanced status> - <text>"
// Anomaly envelopes, receipts and ordinary mail: nullopt (no notice, pec.md 5.3).
// The notice goes to the certified sender (daticert mittente) from
// posta-certificata@<provider_domain>; the certified envelope and ids come from the
// signed daticert.xml. Throws only what build_message throws.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/clock.hpp"
#include "crypto/identity.hpp"
#include "pec/builder.hpp"
#include "pec/verify.hpp"

namespace pecd::pec {

struct DeliveryPointContext {
    std::string provider_domain;
    std::string provider_name;
    const crypto::SigningIdentity* signer = nullptr;
    TimePoint time{};  // delivery (or failure) time: the notice's time reference
};

// What the mailbox store said for one recipient.
struct StoreOutcome {
    bool stored = true;
    bool unknown_mailbox = false;  // the mailbox does not exist -> errore no-dest
    std::string enhanced_status;   // e.g. "5.1.1", "4.2.2"
    std::string text;              // e.g. "casella inesistente (no such mailbox)"
    static StoreOutcome ok() { return {}; }
};

struct DeliveryNotice {
    MessageKind kind;
    BuiltMessage message;
};

std::optional<DeliveryNotice> delivery_notice(std::string_view raw, const PecVerification& verification,
                                              std::string_view recipient, const StoreOutcome& outcome,
                                              const DeliveryPointContext& ctx);

// The receipt kind a recipient gets (pec.md 3.8 table) from the requested type and
// whether the recipient is only a Cc: recipient of the original.
MessageKind receipt_kind_for(ReceiptType requested, bool cc_only) noexcept;

}  // namespace pecd::pec
