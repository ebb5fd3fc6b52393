// quarantine.hpp - the "special storage" for infected messages (pec.md 1, 3.3, 3.6, 7)
//
// A provider keeps every virus-infected message it detected (at the access point or
// the reception point) for 30 months. Contract:
// - store() returns only after the message and its metadata are durable: both files
//   are written and fsynced inside a private temporary directory, which is then renamed
//   to <dir>/<id> and the quarantine directory is fsynced. An entry therefore appears
//   whole or not at all, even across kill -9 or power loss.
// - Entry layout: <dir>/<id>/message.eml (the bytes as scanned, mode 0600) and
//   <dir>/<id>/meta.json (QuarantineEntry as JSON). Ids sort by detection time:
//   "YYYYMMDDThhmmssZ-<16 hex random>".
// - list() returns every complete entry, oldest first; it never changes anything.
// - purge() removes the entries detected before now minus `retention_months` calendar
//   months (default 30, day clamped to the month's end), plus leftovers of interrupted
//   stores/purges; it returns how many entries it removed. Time comes from the Clock.
// - Thread-safe: a Quarantine may be shared by worker threads.
#pragma once

#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"
#include "core/envelope.hpp"

namespace pecd::av {

struct QuarantineEntry {
    std::string id;
    TimePoint detected_at{};
    std::string point;         // where it was detected: "access-point" or "reception-point"
    std::string host;          // the pecd host name that detected it
    std::string scanner;       // e.g. "clamd unix:/run/clamav/clamd.ctl"
    std::string virus;         // signature name reported by the scanner
    std::string pec_msgid;     // PEC message id, if the message had or got one
    std::string client_msgid;  // Message-ID of the message, if any
    // The SMTP envelope and session (pec.md 2.2: what PEC certifies).
    std::string mail_from;
    std::vector<std::string> recipients;
    std::string client_ip;
    std::string helo;
    std::string auth_user;
    std::string listener;
    TimePoint received_at{};
    std::uint64_t size = 0;  // bytes of message.eml
    std::string sha256;      // hex digest of message.eml
};

class Quarantine {
public:
    Quarantine(std::filesystem::path dir, const Clock& clock, int retention_months = 30);

    // Fills id, detected_at (clock), size, sha256 and envelope fields from `envelope`;
    // `meta` supplies point, host, scanner, virus, msgids. Throws TemporaryError when
    // the disk refuses (the caller must then defer the message, not drop it).
    QuarantineEntry store(std::string_view message, const Envelope& envelope, QuarantineEntry meta);

    std::vector<QuarantineEntry> list() const;
    std::optional<QuarantineEntry> find(const std::string& id) const;
    // The stored bytes; throws Error for an unknown id.
    std::string read_message(const std::string& id) const;
    std::size_t purge();

    const std::filesystem::path& dir() const { return dir_; }
    int retention_months() const { return retention_months_; }

private:
    std::filesystem::path dir_;
    const Clock& clock_;
    int retention_months_;
    mutable std::mutex mu_;
};

}  // namespace pecd::av
