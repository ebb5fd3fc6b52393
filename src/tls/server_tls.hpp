// server_tls.hpp - TLS for pecd's listeners: contexts, protocol floor, hot reload
//
// A ServerTls holds, per listener, the certificate/key pair files (plus optional
// per-SNI-name pairs) and builds a Boost.Asio ssl::context from them with:
//   - TLS 1.2 as the floor (TLS 1.3 only when min_version = "1.3"), set in OpenSSL;
//   - AEAD suites with forward secrecy only (ECDHE + AES-GCM / ChaCha20-Poly1305);
//   - no compression, no renegotiation, server cipher preference.
// current() returns the context to use for the next handshake. reload_if_changed()
// (called periodically by the server) re-reads files whose size/mtime/inode changed:
// a valid new pair replaces the context for new handshakes while sessions already
// established keep theirs (they hold a shared_ptr); a broken pair is refused with an
// error in the log and the old context stays.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "tls/certificate.hpp"
#include "tls/certificate_files.hpp"

namespace pecd::tls {

struct ServerTlsSettings {
    CertificatePair pair;
    std::map<std::string, CertificatePair> sni;  // lower-case host name -> pair
    std::string min_version = "1.2";             // "1.2" or "1.3"
    std::filesystem::path client_ca;             // non-empty: client certificates required
    std::chrono::days expiry_warning{30};        // expiry closer than this is logged as a warning
    std::string role = "certificate";            // how the log names it: "listener certificate" ...
};

using ContextPtr = std::shared_ptr<boost::asio::ssl::context>;

class ServerTls {
public:
    // Loads the pairs; throws pecd::Error naming the file and the reason.
    explicit ServerTls(ServerTlsSettings settings);
    ContextPtr current() const;
    // Returns true when a new context was installed. Never throws: failures are logged
    // and leave the current context in place.
    bool reload_if_changed();
    // Days until the leaf certificate of the main pair expires (negative if expired).
    int days_to_expiry() const;

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

// Creates, if missing, a self-signed CA and a server certificate for the given names
// under dir (ca.pem, ca.key, server.pem, server.key), so the embedded default works at
// once. Existing files are left alone. Names that are IP literals become SAN iPAddress
// entries; 127.0.0.1 and ::1 are always included. Keys are written with mode 0600, every
// file durably. Returns the pair to serve.
CertificatePair ensure_self_signed(const std::filesystem::path& dir, const std::vector<std::string>& names,
                                   KeyType key_type = KeyType::ec_p256);

}  // namespace pecd::tls
