// certificate_files.hpp - certificate/key pairs read from their files, checked, watched
//
// What the listeners (server_tls) and the outbound client certificate (client_tls) share
// for a renewal without restart:
//   - read_pair(): a pair read and checked the same way at start and at every reload -
//     parseable, key matching the leaf, not expired, validity begun (NotYetValid carries
//     the start, so a renewal deployed ahead of time is taken then);
//   - FileWatch: when the files behind a pair are to be read again (their size, mtime or
//     inode changed, or a deferred renewal's time came), without reading a broken
//     replacement over and over;
//   - log_validity(): one line for monitoring about how long a certificate stays valid.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "tls/certificate.hpp"

namespace pecd::tls {

struct CertificatePair {
    std::filesystem::path certificate;  // PEM: leaf first, then intermediates
    std::filesystem::path key;          // PEM private key
};

struct CheckedPair {
    std::vector<X509Ptr> chain;  // leaf first
    KeyPtr key;
    X509* leaf() const { return chain.front().get(); }
};

// A certificate whose validity has not begun: a renewal installed ahead of time. Peers
// that verify would refuse it, so it is not used until `from`.
struct NotYetValid : Error {
    NotYetValid(const std::string& what, std::chrono::sys_seconds from) : Error(what), from(from) {}
    std::chrono::sys_seconds from;
};

// Throws Error naming the file (unreadable, key not matching, expired) or NotYetValid.
CheckedPair read_pair(const CertificatePair& pair, TimePoint now);

struct FileStamp {
    bool exists = false;
    std::uintmax_t size = 0;
    std::int64_t mtime_ns = 0;
    std::uint64_t inode = 0;
    bool operator==(const FileStamp&) const = default;
};
using FileStamps = std::vector<FileStamp>;

// Not thread-safe: its owner serialises calls.
class FileWatch {
public:
    // The files as they are now count as read.
    explicit FileWatch(std::vector<std::filesystem::path> files);
    // The files' stamps when they are to be read now: changed since the last read and not
    // already tried as they are, or deferred until a time that has come. The attempt is
    // recorded, so a broken replacement is reported once, not at every check.
    std::optional<FileStamps> due(TimePoint now);
    // The attempt with these stamps succeeded.
    void read(FileStamps stamps) { read_ = std::move(stamps); }
    // The attempted files are to be read again at `when` even if unchanged.
    void defer_until(TimePoint when) { retry_at_ = when; }

private:
    FileStamps current() const;
    std::vector<std::filesystem::path> files_;
    FileStamps read_;       // behind what is in use
    FileStamps attempted_;  // the last attempt, failed or not
    std::optional<TimePoint> retry_at_;
};

// "<what> <path> valid for N more days" (info), "expires in N days" (warning within
// `warning`), "EXPIRED N days ago: <harm>" or "is not valid until <time>: <harm> before
// then" (errors).
void log_validity(const std::string& what, const std::string& path, X509* cert, const std::string& harm,
                  TimePoint now, std::chrono::days warning = std::chrono::days(30));

}  // namespace pecd::tls
