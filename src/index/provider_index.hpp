// provider_index.hpp - the in-memory provider index and its lock-free live holder
//
// ProviderIndex is an immutable snapshot built from LDIF entries (a file, a download or an
// LDAP search all end up as entries). LiveIndex holds the current snapshot; a refresh
// builds a new snapshot aside and swaps it in with one atomic store, so a lookup never
// waits for a refresh and always sees one complete index, old or new.
//
// Contract:
// - build_index() indexes every record of object class `provider` (main records
//   providerName=X,o=postacert and providerUnit=Y,providerName=X,o=postacert sub-records).
//   A record missing a MUST attribute (pec.md 6.1) or carrying a certificate that is not
//   DER X.509 is left out; every problem (left-out records, hashes that match none of the
//   record's certificates, a unit carrying LDIFLocationURL, a unit without its main record,
//   a domain or hash claimed by two providers) is reported with the record's line and DN.
//   The first record to claim a domain keeps it.
// - Domains are matched case-insensitively, a trailing '.' ignored; hashes are hex SHA-1
//   matched case-insensitively; by_certificate() also compares the full DER bytes.
// - A provider with several certificate/hash pairs (renewal overlap) is found by each.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "index/ldif.hpp"
#include "index/lookup.hpp"

namespace pecd::index {

struct Problem {
    std::size_t line = 0;  // 0 when the entry did not come from a file (LDAP)
    std::string dn;
    std::string message;
    std::string describe() const;  // "line 12: providerName=X,o=postacert: message"
};

struct IndexCounts {
    std::size_t providers = 0;  // main records
    std::size_t units = 0;      // providerUnit sub-records
    std::size_t domains = 0;
    std::size_t certificates = 0;
};

namespace detail {
// Heterogeneous (string_view) lookups in the index maps, so a lookup allocates nothing.
struct KeyHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
}  // namespace detail
}  // namespace pecd::index

#if defined(__GLIBCXX__)
// libstdc++ caches hash codes in the nodes only for hashes it deems slow; without the cache
// every bucket walk re-hashes the neighbouring keys, which made a lookup ~4x slower.
template <>
struct std::__is_fast_hash<pecd::index::detail::KeyHash> : std::false_type {};
#endif

namespace pecd::index {

class ProviderIndex;
using IndexPtr = std::shared_ptr<const ProviderIndex>;

// problems may be null when the caller does not want them.
IndexPtr build_index(const std::vector<LdifEntry>& entries, std::vector<Problem>* problems = nullptr);
// Parses LDIF text (plain, already verified) and builds the index; ParseError on bad LDIF.
IndexPtr index_from_ldif(std::string_view text, std::vector<Problem>* problems = nullptr);

class ProviderIndex final : public ProviderLookup {
public:
    ProviderPtr by_domain(std::string_view domain) const override;
    ProviderPtr by_certificate(X509* cert) const override;
    // Hash-only lookup (hex SHA-1, any case): for operators' questions, not for trust.
    ProviderPtr by_hash(std::string_view sha1_hex) const;
    // The main record of the provider this record belongs to (itself for a main record).
    ProviderPtr main_record(const Provider& p) const;
    const std::vector<ProviderPtr>& records() const { return records_; }
    const IndexCounts& counts() const { return counts_; }
    // The o=postacert record's LDIFLocationURL (the whole directory's LDIF), if present.
    const std::string& directory_url() const { return directory_url_; }

private:
    friend IndexPtr build_index(const std::vector<LdifEntry>&, std::vector<Problem>*);
    using Hash = detail::KeyHash;
    using Map = std::unordered_map<std::string, ProviderPtr, Hash, std::equal_to<>>;
    std::vector<ProviderPtr> records_;
    Map domains_;
    std::unordered_map<std::string, std::vector<ProviderPtr>, Hash, std::equal_to<>> hashes_;
    // Computed SHA-1 (lower-case hex) of each published certificate whose hash the record
    // lists -> (record, parsed certificate), for by_certificate() without re-encoding.
    std::unordered_map<std::string, std::vector<std::pair<ProviderPtr, std::shared_ptr<X509>>>, Hash,
                       std::equal_to<>>
        certificates_;
    Map main_by_name_;  // lower-case providerName -> main record
    IndexCounts counts_;
    std::string directory_url_;
};

// The current index, swapped atomically; an empty index, and not ready(), until the
// first store().
//
// The pointer sits behind a mutex, not in a std::atomic<shared_ptr>: libstdc++ guards that
// with a spin lock, and every PEC message reads the index from several queue workers, so a
// worker preempted while holding it left the others spinning for a whole time slice
// (8 % of a provider's CPU samples in the PEC flow benchmark). A contended mutex sleeps
// instead.
class LiveIndex final : public ProviderLookup {
public:
    LiveIndex();
    ProviderPtr by_domain(std::string_view domain) const override { return current()->by_domain(domain); }
    ProviderPtr by_certificate(X509* cert) const override { return current()->by_certificate(cert); }
    bool ready() const override { return ready_.load(std::memory_order_acquire); }
    IndexPtr current() const {
        std::lock_guard lock(current_mutex_);
        return current_;
    }
    void store(IndexPtr index);
    // Waits until ready() or the timeout; returns ready().
    bool wait_ready(std::chrono::milliseconds timeout) const;

private:
    mutable std::mutex current_mutex_;
    IndexPtr current_;
    std::atomic<bool> ready_{false};
    mutable std::mutex ready_mutex_;
    mutable std::condition_variable ready_cv_;
};

}  // namespace pecd::index
