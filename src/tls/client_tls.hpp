// client_tls.hpp - outbound TLS: per-destination policies, peer verification, client contexts
//
// Policies (per destination domain, plus a default), the way mature MTAs define them:
//   none     never STARTTLS.
//   may      STARTTLS when offered; certificate problems are logged, not fatal; a failed
//            handshake is retried in plain text.
//   encrypt  TLS required (no STARTTLS or a failed handshake defers); no certificate check.
//   verify   as encrypt, and the chain must verify up to a trusted root and a certificate
//            name must match the MX host name the connection went to.
//   secure   as verify, but the names checked are the destination domain and its
//            sub-domains (".domain"), or the names configured for the destination - so a
//            forged MX record cannot redirect mail to a host with a valid certificate.
// PEC providers' hosts are always at least `verify`.
//
// Name matching follows RFC 6125: DNS names in subjectAltName are used; the subject CN only
// when the certificate has no DNS SAN at all. A wildcard is only a whole left-most label
// ("*.example.test") and covers exactly one label; partial-label wildcards ("f*.example.test")
// and wildcards directly over a top-level label ("*.test") never match. A reference name
// starting with '.' matches any name strictly below that domain.
//
// Everything except ClientTls is pure and unit-tested without sockets. ClientTls wraps an
// ssl::context for outbound connections: TLS 1.2 floor, AEAD suites with forward secrecy,
// the system trust store or a CA file, an optional client certificate, and TLS session
// reuse per destination (resumption saves a full handshake on every later connection).
// The client certificate is read like a listener's pair (certificate_files.hpp); it and
// the CA file are renewed without restart: reload_if_changed() takes a replacement for
// the next handshake and forgets the sessions made before (a resumed session would
// present the old certificate, or keep a verification made against the old roots).
#pragma once

#include <openssl/ssl.h>

#include <boost/asio/ssl/context.hpp>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tls/certificate_files.hpp"

namespace pecd::tls {

enum class Policy { none, may, encrypt, verify, secure };

// Throws pecd::Error naming the bad value.
Policy parse_policy(std::string_view s);
std::string_view to_string(Policy p);

struct DestinationPolicy {
    Policy policy = Policy::may;
    // For `secure`: names a certificate must carry (".domain" = any sub-domain); empty means
    // the destination domain and its sub-domains.
    std::vector<std::string> match_names;
};

class PolicyMap {
public:
    PolicyMap() = default;
    explicit PolicyMap(DestinationPolicy default_policy) : default_(std::move(default_policy)) {}
    // key: "example.test" (that domain) or ".example.test" (every sub-domain of it).
    void set(std::string_view key, DestinationPolicy p);
    void set_default(DestinationPolicy p) { default_ = std::move(p); }
    // Exact domain first, then the closest ".parent" entry, then the default; raised to
    // `verify` when the destination is a PEC provider.
    DestinationPolicy lookup(std::string_view domain, bool pec_provider = false) const;

private:
    DestinationPolicy default_;
    std::map<std::string, DestinationPolicy, std::less<>> entries_;
};

// --- name checks (RFC 6125) ---

// presented: a name from the certificate; reference: the name we expect (".x" = below x).
bool dns_name_matches(std::string_view presented, std::string_view reference);

struct NameMatch {
    bool matched = false;
    std::string presented;  // the certificate's name that matched
    std::string reference;  // the expected name it matched
    bool from_common_name = false;
};

NameMatch match_names(const std::vector<std::string>& dns_sans, const std::string& common_name,
                      const std::vector<std::string>& references);
NameMatch match_certificate(X509* cert, const std::vector<std::string>& references);

// The names the peer certificate is checked against for this policy.
std::vector<std::string> reference_names(const DestinationPolicy& p, std::string_view mx_host,
                                         std::string_view destination_domain);

// --- decisions ---

enum class TlsStep { plain, starttls, defer };
struct StartDecision {
    TlsStep step = TlsStep::plain;
    std::string reason;
};
// Whether to STARTTLS, go on in plain text, or defer, given what EHLO offered.
StartDecision decide_starttls(Policy p, bool starttls_offered);
// After a failed handshake: `may` retries in plain text on a new connection, others defer.
StartDecision decide_after_handshake_failure(Policy p, std::string_view error);

struct PeerVerification {
    bool tls = false;
    std::string protocol;  // "TLSv1.3"
    std::string cipher;    // "TLS_AES_256_GCM_SHA384"
    bool session_reused = false;
    bool chain_ok = false;
    std::string chain_error;  // OpenSSL's verify error text when !chain_ok
    NameMatch name;
    std::vector<std::string> reference_names;
    std::string subject;
    std::vector<std::string> certificate_names;  // DNS SANs, or the CN when none
};

struct PeerVerdict {
    bool deliver = false;
    std::string reason;  // why delivery must wait, or what was accepted
};
// Whether mail may go over this TLS session under policy p.
PeerVerdict judge_peer(Policy p, const PeerVerification& v);
// One line for the delivery log: policy, protocol, cipher, verification outcome.
std::string describe_tls(Policy p, const PeerVerification& v);

// --- chain completeness (what `tls-check` reports) ---

struct ChainReport {
    std::vector<std::string> sent_subjects;  // as sent by the server, leaf first
    bool complete = false;  // every certificate up to a trusted anchor was sent (the anchor may be omitted)
    std::string missing;    // the issuer that was neither sent nor trusted, or an intermediate not sent
};
// Pure over certificates: `sent` is the peer's chain (leaf first); `verified` the chain
// OpenSSL built (empty when verification failed).
ChainReport chain_report(const std::vector<X509*>& sent, const std::vector<X509*>& verified);

// --- contexts ---

struct ClientTlsSettings {
    std::filesystem::path ca_file;                      // trusted roots (PEM); empty: the system trust store
    std::optional<CertificatePair> client_certificate;  // presented when a server asks
    std::string min_version = "1.2";
    bool reuse_sessions = true;
};

class ClientTls {
public:
    // Throws pecd::Error naming a file that cannot be used; a client certificate is
    // refused as a listener's would be (read_pair: key, expiry, validity begun).
    explicit ClientTls(ClientTlsSettings settings);
    ~ClientTls();
    ClientTls(const ClientTls&) = delete;
    ClientTls& operator=(const ClientTls&) = delete;

    boost::asio::ssl::context& context() { return *context_; }
    // Before the handshake: SNI = server_name, and the cached session for session_key
    // (typically "host:port") is offered for resumption.
    void prepare(SSL* ssl, const std::string& server_name, const std::string& session_key);
    // After the handshake: protocol, cipher, chain and names against `references`.
    PeerVerification inspect(SSL* ssl, const std::vector<std::string>& references) const;
    // Chain completeness of the peer's certificates on this connection.
    ChainReport inspect_chain(SSL* ssl) const;
    // Sessions held for resumption, all destinations together.
    std::size_t cached_sessions() const;

    // Re-reads the client certificate's files and the CA file when they changed (or when
    // a renewal not valid before now was deferred); true when something new is in use.
    // Never throws: a broken replacement is logged and what is in use stays.
    bool reload_if_changed();
    // The client certificate's validity in the log (info, a warning within 30 days, an
    // error once expired); nothing without one.
    void log_expiry() const;

private:
    struct SessionCache;
    struct Identity;
    static int on_new_session(SSL* ssl, SSL_SESSION* session);
    std::shared_ptr<const Identity> identity() const;
    bool reload_identity(TimePoint now);
    bool reload_anchors(TimePoint now);
    std::unique_ptr<boost::asio::ssl::context> context_;
    std::unique_ptr<SessionCache> sessions_;
    std::optional<CertificatePair> client_pair_;
    std::filesystem::path ca_file_;  // empty: the system trust store
    mutable std::mutex mutex_;
    std::shared_ptr<const Identity> identity_;  // the client certificate in use, if any
    std::unique_ptr<FileWatch> identity_watch_;
    std::shared_ptr<X509_STORE> anchors_;  // the roots of ca_file_ in use
    std::unique_ptr<FileWatch> anchors_watch_;
    std::uint64_t generation_ = 0;  // counts renewals: sessions are kept per generation
};

}  // namespace pecd::tls
