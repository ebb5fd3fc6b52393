// certificate_files.hpp - certificate/key pairs read from their files, checked, watched
//
// What the listeners (server_tls) and the outbound client certificate (client_tls) share
// for a renewal without restart:
//   - read_pair(): a pair read and checked the same way at start and at every reload -
//     parseable, key matching the leaf, not expired, validity begun (NotYetValid carries
//     the start, so a renewal deployed ahead of time is taken then);
//   - when the files behind a pair are to be read again: core/file_watch.hpp;
//   - log_validity(): one line for monitoring about how long a certificate stays valid.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/file_watch.hpp"
#include "tls/certificate.hpp"

namespace pecd::tls {

using fs::FileStamps;
using fs::FileWatch;

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

// "<what> <path> valid for N more days" (info), "expires in N days" (warning within
// `warning`), "EXPIRED N days ago: <harm>" or "is not valid until <time>: <harm> before
// then" (errors).
void log_validity(const std::string& what, const std::string& path, X509* cert, const std::string& harm,
                  TimePoint now, std::chrono::days warning = std::chrono::days(30));

}  // namespace pecd::tls
