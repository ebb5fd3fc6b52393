// event.hpp - one legal-log event and its canonical serialization
//
// Every PEC event of pec.md 7 (and every mailbox-API audit event) is one Event. The PEC
// engine fills it and calls LegalLog::append() inside the transaction of the state
// change it records; the log turns it into one record.
//
// Canonical record form (what the hash chain covers; stable, documented in
// docs of the export bundle and in log/chain.hpp):
//   a JSON object, keys sorted by byte value, no white space, every non-ASCII character
//   escaped as \uXXXX (so the record is pure ASCII and one line), strings for every
//   field (empty when unknown), times as "YYYY-MM-DDThh:mm:ss.ffffffZ" (UTC) plus the
//   local offset "+hh:mm" of the single time reference of the transaction (pec.md 2.6).
//   Keys: v (format version, 1), seq, kind, time, utc_offset, pec_msgid, client_msgid,
//   sender, recipients [{address, type: "certified"|"external"}], subject,
//   generated_ids [..], peer_provider, peer_host, tls {protocol, cipher, peer},
//   outcome, actor, details {..}.
// parse_record() reads a record back and rejects (ParseError naming the field) anything
// that is not in that form.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"

namespace pecd::log {

enum class EventKind {
    acceptance,            // ricevuta di accettazione issued (pec.md 3.2)
    non_acceptance,        // avviso di non accettazione (3.3)
    non_acceptance_virus,  // non accettazione per virus (3.3)
    transport_envelope,    // busta di trasporto sent (3.1)
    take_in_charge,        // ricevuta di presa in carico (3.4)
    anomaly,               // busta di anomalia (3.5)
    virus_detected,        // avviso di rilevazione virus (3.6)
    non_delivery_virus,    // avviso di mancata consegna per virus (3.7)
    delivery,              // ricevuta di avvenuta consegna (3.8)
    non_delivery,          // avviso di mancata consegna (3.9)
    timeout_12h,           // preavviso di mancata consegna, 12 h (3.10)
    timeout_24h,           // avviso di mancata consegna, 24 h (3.10)
    receipt_received,      // a receipt from another provider reached us
    api_audit,             // mailbox API: a read or a lifecycle change (audit trail)
    purge,                 // retention: older segments removed (written by the log itself)
};

std::string_view to_string(EventKind kind);
std::optional<EventKind> event_kind_from_string(std::string_view name);

struct LoggedRecipient {
    std::string address;
    bool certified = true;  // false = external (ordinary e-mail) recipient
};

struct TlsDetails {
    std::string protocol;  // "TLSv1.3"; empty = no TLS on that connection
    std::string cipher;
    std::string peer;  // peer certificate subject (or its verification verdict)
};

struct Event {
    EventKind kind = EventKind::acceptance;
    std::string pec_msgid;       // the PEC message id (X-Riferimento-Message-ID family)
    std::string client_msgid;    // the Message-ID the client gave the original
    TimePoint time{};            // the single time reference of the transaction, UTC
    int utc_offset_minutes = 0;  // local legal-time offset at `time` (Italy: +60/+120)
    std::string sender;
    std::vector<LoggedRecipient> recipients;
    std::string subject;
    std::vector<std::string> generated_ids;  // ids of the messages this event generated
    std::string peer_provider;               // the other provider (index name), when one is involved
    std::string peer_host;                   // host name / address of the connection, when one is
    TlsDetails tls;
    std::string outcome;                         // "ok", or the error / reason
    std::string actor;                           // API audit: the authenticated client; empty for PEC events
    std::map<std::string, std::string> details;  // kind-specific facts (virus name, error code ...)
};

// The canonical record of `event` at position `seq` (see the header comment).
std::string canonical_record(const Event& event, std::int64_t seq);

struct ParsedRecord {
    std::int64_t seq = 0;
    Event event;
};
// Throws ParseError (field named) when `record` is not a canonical record.
ParsedRecord parse_record(std::string_view record);

// "2026-03-29T01:00:00.000000Z"; and back (ParseError on a bad form).
std::string format_utc(TimePoint t);
TimePoint parse_utc(std::string_view text);
// The same form as a search bound: a time the clock cannot hold (before 1677-09-21 or
// after 2262-04-11) saturates at its end instead of being refused.
TimePoint parse_utc_bound(std::string_view text);
// "+01:00" from minutes; and back.
std::string format_offset(int minutes);

// Italian legal time offset (CET/CEST) at t, in minutes: +120 from the last Sunday of
// March 01:00 UTC to the last Sunday of October 01:00 UTC, +60 otherwise (EU rule).
// Written out because GCC 12's library has no time-zone database support.
int italy_utc_offset_minutes(TimePoint t);

}  // namespace pecd::log
