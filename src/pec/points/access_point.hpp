// access_point.hpp - the access point's decision on one submitted message (pec.md 5.1)
//
// accept_submission() is pure given its inputs: no sockets, no queue, no clock reading
// (the caller passes the single time reference of the transaction, from a pecd::Clock,
// and the PEC msgid, from a pec::MessageIdGenerator). It runs the formal checks
// (pec::check_submission), applies the caller's antivirus verdict, classifies each To/Cc
// recipient as certificato/esterno through the provider index (domain, case-insensitive)
// and builds every message the access point emits, all stamped with that one time:
//   - not accepted (formal reason or virus): the avviso di non accettazione to the
//     sender; `quarantine` says the message must go to the special virus storage
//     (pec.md 5.1.3, 30 months);
//   - accepted: the ricevuta di accettazione (to the sender) and the busta di
//     trasporto (MAIL FROM the original sender, RCPT TO the original recipients), the
//     certified recipients the tracker must follow (pec.md 5.4) and the log facts.
// The caller persists and sends the built messages (BuiltMessage::mail_from/rcpt_to are
// the SMTP envelope to use) and writes `log` to the legal log.
//
// Formal checks come first, then the scan verdict (a malformed message is refused as
// malformed even if infected: the check is cheaper and the reason is the first one
// pec.md lists). Throws only what build_message throws (context or crypto failures).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"
#include "core/envelope.hpp"
#include "crypto/identity.hpp"
#include "index/lookup.hpp"
#include "pec/builder.hpp"
#include "pec/formal_checks.hpp"

namespace pecd::pec {

// The antivirus verdict the caller obtained (e.g. from av::ClamdClient). A scanner
// failure is not a verdict: the caller defers the message instead (never unscanned).
struct ScanVerdict {
    bool infected = false;
    std::string virus;  // signature name when infected
    static ScanVerdict clean() { return {}; }
    static ScanVerdict found(std::string name) { return {true, std::move(name)}; }
};

struct AccessPointContext {
    std::string provider_domain;  // posta-certificata@<domain>
    std::string provider_name;    // daticert gestore-emittente
    const crypto::SigningIdentity* signer = nullptr;
    TimePoint time{};       // the transaction's single time reference
    std::string pec_msgid;  // from MessageIdGenerator::next(time), no angle brackets
    FormalLimits limits;
    const index::ProviderLookup* index = nullptr;  // null: every recipient is esterno
    ScanVerdict scan;                              // the caller's antivirus verdict
};

// What the legal log records for this access-point event (pec.md 7).
struct AccessLogFacts {
    std::string event;         // "accettazione", "non-accettazione", "non-accettazione-virus"
    std::string pec_msgid;     // identificativo
    std::string client_msgid;  // with angle brackets, "" when the client gave none
    std::string sender;
    std::vector<DaticertRecipient> recipients;  // To + Cc, certificato/esterno
    std::string subject;                        // decoded
    std::string reason;                         // formal reason / virus name; "" when accepted
    std::vector<std::string> generated_ids;     // Message-IDs of the built messages
};

struct AccessDecision {
    bool accepted = false;
    FormalCode formal = FormalCode::ok;           // why not accepted (ok when accepted or virus)
    bool quarantine = false;                      // virus: keep the original in the special storage
    BuiltMessage receipt;                         // accettazione or non accettazione, to the sender
    std::optional<BuiltMessage> transport;        // the busta di trasporto (accepted only)
    std::vector<std::string> tracked_recipients;  // certificato recipients to track
    AccessLogFacts log;
};

AccessDecision accept_submission(const Envelope& envelope, std::string_view auth_user,
                                 std::string_view message, const AccessPointContext& ctx);

// certificato when the address's domain is a PEC domain of the index (case-insensitive).
RecipientType classify_recipient(std::string_view address, const index::ProviderLookup* index);

}  // namespace pecd::pec
