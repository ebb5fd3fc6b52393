// reception_point.hpp - the reception point's decision on one incoming message (pec.md 5.2)
//
// receive_message() is pure given its inputs: the raw message, its SMTP envelope, the
// PecVerification the caller obtained with pec::verify_message (with index and trust
// store), the caller's antivirus verdict (only consulted for valid transport envelopes)
// and the context (time reference, signer, ordinary-mail policy). It applies the
// decision table of pec.md 5.2:
//   valid transport envelope, clean  -> take_in_charge: one presa in carico to the
//                                       sender provider's mailReceipt, <ricezione> = the
//                                       RCPT TO of this transaction; deliver the raw
//                                       message unmodified to every RCPT TO
//   valid transport envelope, virus  -> virus: one rilevazione-virus per RCPT TO to the
//                                       mailReceipt, quarantine, no delivery
//   valid receipt/notice             -> forward_receipt: deliver the raw message unmodified
//                                       (presa-in-carico / rilevazione-virus: to the service
//                                       mailbox) and one tracking event per recipient named
//                                       by daticert (<consegna>, or <ricezione>)
//   signed by a provider certificate (provider verdict pass) but not valid
//                                    -> anomaly: busta di anomalia to every RCPT TO
//   anything else = ordinary mail    -> anomaly for the RCPT TO whose mailbox accepts
//                                       ordinary mail; refused ones listed in `rejected`
//                                       with the SMTP reply to give (action reject when
//                                       none accepts)
// Every built message uses the one context time. BuiltMessage::mail_from/rcpt_to is the
// SMTP envelope to send it with. Throws only what build_message throws, and Error when a
// valid envelope's provider has no mailReceipt to notify.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"
#include "core/envelope.hpp"
#include "crypto/identity.hpp"
#include "pec/builder.hpp"
#include "pec/points/access_point.hpp"
#include "pec/tracking.hpp"
#include "pec/verify.hpp"

namespace pecd::pec {

struct ReceptionContext {
    std::string provider_domain;
    std::string provider_name;
    const crypto::SigningIdentity* signer = nullptr;
    TimePoint time{};  // the transaction's single time reference
    ScanVerdict scan;  // the caller's antivirus verdict on the message
    // Whether a mailbox accepts ordinary (non-PEC) mail as an anomaly envelope
    // (pec.md 5.5). Empty: every mailbox accepts it.
    std::function<bool(std::string_view recipient)> accepts_ordinary;
};

enum class ReceptionAction { take_in_charge, virus, forward_receipt, anomaly, reject };
std::string_view to_string(ReceptionAction a) noexcept;

// One message to place in local mailboxes.
struct LocalDelivery {
    std::string data;                     // the bytes to store (raw message or anomaly envelope)
    std::vector<std::string> recipients;  // mailboxes (RCPT TO of this transaction)
    bool service_mailbox = false;         // presa-in-carico / rilevazione-virus for the service box
    bool transport_envelope = false;      // a correct busta di trasporto: the delivery point owes a receipt
};

struct TrackingFact {
    tracking::EventType event;
    std::string pec_msgid;  // daticert identificativo
    std::string recipient;
};

struct RejectedRecipient {
    std::string address;
    int smtp_code = 550;
    std::string enhanced_status;  // "5.7.1"
    std::string text;
};

struct ReceptionDecision {
    ReceptionAction action = ReceptionAction::reject;
    std::vector<BuiltMessage> notices;  // presa in carico / rilevazione virus to the sender provider
    std::optional<LocalDelivery> delivery;
    std::vector<TrackingFact> tracking;
    std::vector<RejectedRecipient> rejected;
    bool quarantine = false;
    std::string reason;  // for the log: why this action (kind, problems, virus name)
};

ReceptionDecision receive_message(std::string_view raw, const Envelope& envelope,
                                  const PecVerification& verification, const ReceptionContext& ctx);

// The bytes of the postacert.eml part (message/rfc822) inside a PEC message's signed
// content, or nullopt when there is none. Pure; never throws on hostile input.
std::optional<std::string> extract_postacert(std::string_view raw);

}  // namespace pecd::pec
