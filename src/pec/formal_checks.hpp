// formal_checks.hpp - the access point's formal checks on a submitted message (pec.md 5.1.2)
//
// check_submission() is pure (no I/O, no clock): given the SMTP envelope, the
// authenticated user and the message bytes it decides whether the message may be
// accepted and extracts what the transport-envelope builder needs. Checks, in this
// order (the first failure is reported):
//   1. syntax: the message is valid RFC 5322 (header lines "name: value" with folding,
//      lines <= 998 octets (body lines too), no NUL, no bare CR in the header, 8-bit
//      header text only as valid UTF-8 (RFC 6532), exactly one Date (parsable) and
//      one From, at most one Sender /
//      Reply-To / To / Cc / Bcc / Message-ID / Subject / X-TipoRicevuta, address
//      headers strictly RFC 5322 address lists, Message-ID "<left@right>")  -> syntax
//   2. From present with exactly one valid mailbox (no group)   -> from_missing / from_invalid
//   3. To present with one or more valid mailboxes              -> to_missing / to_invalid
//      (group members count; "undisclosed-recipients:;" alone is no recipient)
//   4. Bcc absent or empty (an empty group is empty)             -> bcc_present
//   5. an authenticated user exists                             -> not_authenticated
//   6. MAIL FROM equals the From address (case-insensitive)     -> sender_mismatch
//   7. the authenticated user equals the From address           -> auth_mismatch
//   8. the set of RCPT TO equals the set To + Cc (case-insensitive; duplicates in
//      either collapse: sets are compared)                      -> recipients_extra / recipients_missing
//   9. distinct recipients <= FormalLimits::max_recipients      -> too_many_recipients
//  10. size x distinct recipients <= FormalLimits::max_volume   -> too_large
// Addresses are compared whole and case-insensitively (pec.md 2.2 leaves the local part's
// case to the provider; every Italian provider folds it).
//
// Every failure carries a code and a reason in Italian with an English gloss in
// parentheses, ASCII only, suitable for daticert <errore-esteso> of the avviso di non
// accettazione (errore="altro").
//
// X-TipoRicevuta (header name case-insensitive, value trimmed and case-insensitive):
// "completa", "breve" or "sintetica"; absent -> completa. An invalid value (or two
// conflicting headers) is NOT a formal error - pec.md 5.1.2 lists the formal checks
// exhaustively and this is not one of them - so it falls back to completa (the default
// of pec.md 3.8) and receipt_type_valid is false; the envelope builder then writes the
// normalized value "completa".
//
// GMime (3.x) decodes RFC 2047 words, dates and display names; the strict syntax
// checks are written here because GMime is deliberately lenient (it silently drops
// address-list garbage and accepts "a@b c@d" without a comma).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/envelope.hpp"
#include "pec/types.hpp"

namespace pecd::pec {

enum class FormalCode {
    ok,
    syntax,
    from_missing,
    from_invalid,
    to_missing,
    to_invalid,
    bcc_present,
    not_authenticated,
    sender_mismatch,
    auth_mismatch,
    recipients_extra,
    recipients_missing,
    too_many_recipients,
    too_large,
};

// Stable names: "ok", "syntax", "from-missing", ... (logs, tests, the legal log).
std::string_view to_string(FormalCode c) noexcept;

struct FormalLimits {
    // DM 2 Nov 2005 art. 12: a provider must allow at least 50 recipients and messages
    // whose size x recipients is up to 30 MB; these are floors, not caps.
    static constexpr std::size_t kMinRecipients = 50;
    static constexpr std::uint64_t kMinVolume = 30ull * 1024 * 1024;

    std::size_t max_recipients = 500;
    std::uint64_t max_volume = 100ull * 1024 * 1024;  // bytes x recipients
    // Throws Error naming the setting when below a floor.
    void validate() const;
};

struct MailboxAddress {
    std::string name;     // display name, RFC 2047-decoded (UTF-8); empty if none
    std::string address;  // local@domain as written (quoted local parts keep quotes)
};

// What the transport-envelope builder needs (pec.md 3.1), as far as parsing got.
struct SubmissionInfo {
    std::string client_msgid;  // Message-ID with angle brackets, trimmed; "" if absent
    std::string subject;       // decoded (UTF-8), unfolded; "" if absent
    MailboxAddress from;
    std::vector<MailboxAddress> to;  // group members flattened, header order, duplicates kept
    std::vector<MailboxAddress> cc;
    std::vector<MailboxAddress> reply_to;  // empty when the header is absent
    bool has_reply_to = false;
    ReceiptType receipt_type = ReceiptType::completa;
    bool receipt_type_given = false;  // an X-TipoRicevuta header was present
    bool receipt_type_valid = true;   // false: present but invalid/conflicting -> completa
    std::size_t size = 0;             // message bytes
};

struct FormalResult {
    FormalCode code = FormalCode::ok;
    std::string reason;  // Italian (English gloss); empty when ok
    std::string field;   // the header or envelope field concerned ("From", "RCPT TO", ...)
    SubmissionInfo info;
    bool ok() const { return code == FormalCode::ok; }
};

FormalResult check_submission(const Envelope& envelope, std::string_view auth_user, std::string_view message,
                              const FormalLimits& limits);

// Strict RFC 5322 address-list parser used by the checks (exposed for tests and the
// other points): returns false with *error set on any syntax error. Groups are
// flattened into `out`; *groups counts them.
bool parse_address_list(std::string_view value, std::vector<MailboxAddress>& out, std::string* error,
                        bool allow_groups = true, int* groups = nullptr);

}  // namespace pecd::pec
