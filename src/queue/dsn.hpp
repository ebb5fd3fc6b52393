// dsn.hpp - delivery status notifications (RFC 3464) for recipients that failed
//
// build_dsn() returns a complete message (CRLF line ends) to the original sender:
//   multipart/report; report-type=delivery-status
//     1. text/plain          what happened, for a person
//     2. message/delivery-status
//          Reporting-MTA, Original-Envelope-Id (ENVID), Arrival-Date, then per recipient
//          Original-Recipient (ORCPT), Final-Recipient, Action, Status, Remote-MTA,
//          Diagnostic-Code, Last-Attempt-Date
//     3. text/rfc822-headers (RET=HDRS, or the message is larger than full_limit)
//        or message/rfc822 (RET=FULL or no RET): the original
// When every recipient's action is "delayed" the report is a delay notice (subject and
// text say the message is still being retried, Will-Retry-Until per RFC 3464 2.3.9).
// wants_failure_dsn() applies the rules of who gets one: never for the null sender (RFC
// 5321 4.5.5, no bounce loops), never for a DSN, never when NOTIFY excludes FAILURE.
// Pure: the caller passes the time and the identifiers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"

namespace pecd::queue {

struct DsnRecipient {
    std::string address;
    std::string orcpt;       // as given with RCPT ORCPT= ("rfc822;addr"), may be empty
    std::string action;      // "failed" (or "delayed")
    std::string status;      // "5.1.1"
    std::string diagnostic;  // the remote reply, e.g. "550 5.1.1 unknown user"; empty if none
    std::string remote_mta;  // host name of the peer that answered, empty if none
};

struct DsnInput {
    std::string reporting_mta;  // our host name
    std::string sender;         // the original reverse path (the DSN goes there)
    std::string envid;
    std::string ret;  // "FULL", "HDRS" or empty
    std::string queue_id;
    TimePoint arrival{};
    TimePoint now{};
    std::string message_id;  // for the DSN itself, without angle brackets
    std::string original;    // the original message bytes
    std::uint64_t full_limit = 10ull << 20;
    TimePoint will_retry_until{};  // delay notices: when the queue gives up
    std::vector<DsnRecipient> recipients;
};

std::string build_dsn(const DsnInput& in);
bool wants_failure_dsn(std::string_view mail_from, std::string_view notify, bool is_dsn);
// Delay notices: same rules, with DELAY; without NOTIFY the MTA may choose (RFC 3461 4.1),
// and pecd warns.
bool wants_delay_dsn(std::string_view mail_from, std::string_view notify, bool is_dsn);
// RFC 5322 date-time in UTC, e.g. "Tue, 14 Nov 2023 22:13:20 +0000".
std::string rfc5322_date(TimePoint t);
// The status code inside a reply ("550 5.1.1 ..." → "5.1.1"); from the reply code when
// the reply has none ("550 ..." → "5.0.0").
std::string status_of_reply(std::string_view reply);

}  // namespace pecd::queue
