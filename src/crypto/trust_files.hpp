// trust_files.hpp - trust anchors and CRLs read from files, kept fresh
//
// The PEC trust ([pec] trust_anchors, crl_file), the provider index's anchor and the
// roots of an external time-stamping authority ([log] tsa_anchors). pec.md 5.2 asks that
// cached CRLs be refreshed "often enough to minimise the gap between a revocation and its
// effect"; operators refresh the CRL file (and, rarely, the anchors) with a scheduled job
// while pecd runs. A TrustFiles holds what its files said last and
// re-reads them when they change:
//   - current() is a snapshot for one verification: a reload never changes the trust
//     under a verification already running;
//   - reload_if_changed() takes new files only when both parse (a broken replacement is
//     logged once and the trust in use stays, since refusing every signature would stop
//     the provider);
//   - a CRL past its nextUpdate makes OpenSSL fail every chain it covers ("CRL has
//     expired"): that moment is logged as an error once, and the CRLs' next updates are
//     in the log at start, after each reload and daily (log_status()).
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "core/file_watch.hpp"
#include "crypto/cms.hpp"

namespace pecd::crypto {

struct CrlInfo {
    std::string issuer;                                   // RFC 2253 one-line form
    std::optional<std::chrono::sys_seconds> next_update;  // none: the CRL names no next update
    // Past its next update: OpenSSL fails every chain it covers ("CRL has expired").
    bool lapsed(TimePoint now) const {
        return next_update && *next_update <= std::chrono::floor<std::chrono::seconds>(now);
    }
};

// The CRLs of a trust store, in its order; a CRL that does not parse is left out.
std::vector<CrlInfo> describe_crls(const TrustStore& trust);

class TrustFiles {
public:
    // who: the module its log lines start with ("pec", "index", "log: TSA"). crls may be empty (no CRL
    // checking). Throws Error naming the file that cannot be used.
    TrustFiles(std::string who, std::filesystem::path anchors, std::filesystem::path crls,
               const Clock& clock = SystemClock::instance());
    std::shared_ptr<const TrustStore> current() const;
    // True when new files are in use. Never throws. Also reports, once, a CRL whose next
    // update has passed since the last call.
    bool reload_if_changed();
    // Anchors and CRLs in use, each CRL's next update (an error once it has passed).
    void log_status() const;

private:
    static TrustStore read(const std::filesystem::path& anchors, const std::filesystem::path& crls);
    void report_stale_crls(TimePoint now);
    const std::string who_;
    const std::filesystem::path anchors_, crls_;
    const Clock& clock_;
    mutable std::mutex mutex_;
    std::shared_ptr<const TrustStore> current_;
    std::vector<CrlInfo> crl_info_;                           // of current_
    std::optional<std::chrono::sys_seconds> stale_reported_;  // the next update already reported as passed
    fs::FileWatch watch_;
};

}  // namespace pecd::crypto
