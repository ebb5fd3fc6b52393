// index_service.hpp - keeps the provider index current: sources, schedule, last good index
//
// The service owns a LiveIndex that the PEC engine reads (ProviderLookup). A refresh
// fetches from the configured source (a local file, an HTTPS URL with conditional
// requests, or an LDAP server), verifies and indexes the document aside, and only then
// swaps it in. Refreshes run on the service's own thread, never on the message path.
//
// Contract:
// - refresh() is synchronous and never throws: replaced (a new index is in use),
//   not_modified (304, or the same bytes: the index stays), or failed (the last good index
//   stays in use; message says why: signature, expired signer, malformed file, network).
//   Concurrent refresh() calls are serialised.
// - start() loads the local copy (cache_file) when present so lookups work at once, then
//   refreshes in the background: at once, then every refresh_interval (retry_interval
//   after a failure). stop() (and the destructor) ends the thread promptly.
// - With a trust anchor, file and HTTPS documents must be signed by a certificate chaining
//   to it and valid at the clock's time.
#pragma once

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.hpp"
#include "crypto/trust_files.hpp"
#include "index/provider_index.hpp"

namespace pecd::config {
struct Index;
}

namespace pecd::index {

enum class SourceKind { none, file, https, ldap };

struct IndexSettings {
    SourceKind source = SourceKind::none;
    std::filesystem::path file;
    std::string url;
    std::string ldap_uri;
    std::string ldap_base = "o=postacert";
    std::string ldap_bind_dn;
    std::string ldap_password;           // never logged
    std::filesystem::path trust_anchor;  // PEM; signed LDIF required when set
    std::filesystem::path ca_file;       // HTTPS / LDAPS server verification
    std::filesystem::path cache_file;    // local copy of the last good document
    std::chrono::seconds refresh_interval{86400};
    std::chrono::seconds retry_interval{300};
    std::chrono::seconds timeout{60};
};

IndexSettings settings_from_config(const config::Index& c);

struct RefreshOutcome {
    enum class Kind { replaced, not_modified, failed };
    Kind kind = Kind::failed;
    std::string message;
    std::vector<Problem> problems;  // of the new index (replaced)
};

struct IndexStatus {
    std::optional<TimePoint> last_attempt;
    std::optional<TimePoint> last_success;  // replaced or not_modified
    std::string last_error;                 // empty after a success
    std::string etag, last_modified;
    std::string signer;
    std::size_t refreshes = 0, failures = 0, not_modified = 0;
    IndexCounts counts;
};

class IndexService {
public:
    // Throws Error when the trust anchor file cannot be read.
    explicit IndexService(IndexSettings settings, const Clock& clock = SystemClock::instance());
    ~IndexService();
    IndexService(const IndexService&) = delete;
    IndexService& operator=(const IndexService&) = delete;

    const ProviderLookup& lookup() const { return *live_; }
    std::shared_ptr<const LiveIndex> live() const { return live_; }
    IndexPtr current() const { return live_->current(); }
    // Waits until an index is loaded (the local copy or the source) or the timeout.
    bool wait_ready(std::chrono::milliseconds timeout) const { return live_->wait_ready(timeout); }

    RefreshOutcome refresh();
    void start();
    void stop();
    IndexStatus status() const;

private:
    struct Fetched;
    Fetched fetch();
    bool load_cache();
    void run(std::stop_token stop);

    IndexSettings settings_;
    const Clock& clock_;
    std::shared_ptr<const crypto::TrustStore> current_trust();
    std::optional<crypto::TrustFiles> trust_;  // re-read, when its file changed, before each verification
    std::shared_ptr<LiveIndex> live_;
    std::mutex refresh_mutex_;
    mutable std::mutex status_mutex_;
    IndexStatus status_;
    std::string last_bytes_;  // of the last good document (file source: unchanged = no swap)
    std::condition_variable_any wake_;
    std::mutex wake_mutex_;
    std::jthread thread_;
};

}  // namespace pecd::index
