// config.hpp - pecd's configuration: the TOML file, its validation, the embedded default
//
// load_config() reads a TOML file and returns a complete Config or throws ParseError
// naming the exact key (e.g. "listener[2].tls") and the reason; unknown keys are errors,
// so a typo never silently falls back to a default. embedded_default() is what pecd runs
// with no file: everything on loopback under one data directory.
//
// Every limit has its default here and is documented in docs/operators-guide.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace pecd::config {

// A certificate a listener presents to clients asking for `name` with SNI.
struct SniCertificate {
    std::string name;  // lower-case host name, or "*.domain" (one left-most label)
    std::filesystem::path certificate;
    std::filesystem::path key;
};

struct Listener {
    std::string name;
    std::string address = "127.0.0.1";
    std::uint16_t port = 0;
    std::string tls = "starttls";  // none | starttls | starttls-required | implicit
    bool auth = false;
    bool require_auth = false;
    bool sender_must_match_auth = false;
    bool lmtp = false;
    std::filesystem::path certificate;  // empty: the [tls] pair
    std::filesystem::path key;
    std::vector<SniCertificate> sni;  // [[listener.sni]]; other names get the pair above
};

struct Limits {
    std::uint64_t message_size = 100ull << 20;
    std::size_t recipients = 1000;
    std::size_t header_size = 256 * 1024;
    std::size_t line_length = 10000;
    unsigned errors = 20;
    std::chrono::seconds idle_timeout{300};
    std::size_t connections = 10000;
    std::size_t connections_per_client = 50;
    unsigned auth_failures_per_address = 5;
    unsigned auth_failures_per_account = 10;
    std::chrono::seconds auth_failure_window{300};
    std::uint64_t spool_min_free = 64ull << 20;  // free bytes kept in the spool's file system
    // In-flow control (server/smtp_server.hpp): above this many messages in the queue not
    // yet worked off, a new message waits up to in_flow_delay before its commit; 0 = off.
    std::size_t in_flow_backlog = 8;
    std::chrono::milliseconds in_flow_delay{1000};
};

// [antivirus]: the clamd scanner and the quarantine ("special storage") of infected
// messages (pec.md 1, 5.1.3, 7). A message is never passed unscanned: when clamd cannot
// be reached the message is deferred.
struct Antivirus {
    bool enabled = true;
    std::string socket = "/run/clamav/clamd.ctl";  // clamd's LocalSocket
    std::string address;  // "host:port" of clamd's TCPSocket; when set, used instead of socket
    std::chrono::seconds connect_timeout{5};
    std::chrono::seconds timeout{60};      // whole scan, from connected to the answer
    bool sessions = true;                  // keep connections open between scans (IDSESSION)
    std::filesystem::path quarantine_dir;  // empty: <data_dir>/quarantine (quarantine_dir())
    unsigned retention_months = 30;        // legal minimum 30
};

struct Tls {
    std::string min_version = "1.2";
    std::filesystem::path certificate;  // empty: self-signed under data_dir/tls
    std::filesystem::path key;
    std::chrono::seconds reload_interval{2};
};

// One entry of the outbound TLS policy map ([[outbound.tls_policy]]).
struct OutboundPolicy {
    std::string domain;              // "example.test", or ".example.test" for its sub-domains
    std::string policy;              // none | may | encrypt | verify | secure
    std::vector<std::string> names;  // secure: certificate names to accept (default: the domain)
};

// One entry of [[outbound.routes]]: a fixed next hop for a remote domain.
struct OutboundRoute {
    std::string domain;  // "pec.other.example"
    std::string route;   // "smtp:HOST:PORT" (store/route.hpp forms)
};

// [outbound]: delivery to other mail servers (MX routing, TLS, limits, queue lifetimes).
struct Outbound {
    std::string tls_policy = "may";  // default for destinations not in the map
    std::vector<OutboundPolicy> policies;
    std::vector<OutboundRoute> routes;
    std::filesystem::path ca_file;             // trusted roots for verify/secure; empty: system store
    std::filesystem::path client_certificate;  // presented when a server asks
    std::filesystem::path client_key;
    std::uint16_t port = 25;  // of the MX hosts (tests use another)
    std::size_t connections_per_destination = 20;
    // Messages the queue works on at once: PEC processing, local and remote deliveries. A
    // delivery to a slow server holds one for its whole SMTP transaction. Most of a
    // worker's time is a wait (a commit round, clamd, the peer's reply); with more of them
    // each commit round carries more messages. On the two-core flow benchmark 64 against
    // 32: about 5 % less CPU per exchange and a lower acceptance p99; 12 was worse than 32.
    unsigned queue_workers = 64;
    std::chrono::seconds connect_timeout{30};
    std::chrono::seconds retry_first{300};
    std::chrono::seconds retry_max{3600};
    std::chrono::seconds delay_warning{4 * 3600};  // 0: no delay notices
    std::chrono::seconds lifetime{5 * 86400};
    std::chrono::seconds pec_lifetime{86400};
};

// [dns]: the resolvers used for MX routing.
struct Dns {
    std::vector<std::string> servers;  // "192.0.2.1", "127.0.0.1:5353"; empty: /etc/resolv.conf
    std::chrono::milliseconds timeout{3000};
    unsigned tries = 2;
    bool ipv6 = true;
};

// [store]: the database behind the queue, mailboxes, PEC state and logs, and where
// message bodies live. SQLite (embedded, one node) or PostgreSQL (shared by nodes).
// The conninfo may hold a password: it is never logged nor echoed in errors.
struct Store {
    std::string backend = "sqlite";       // sqlite | postgresql
    std::filesystem::path path;           // sqlite: database file; empty: data_dir/pecd.db
    std::string conninfo;                 // postgresql: libpq conninfo or URI
    std::filesystem::path password_file;  // postgresql: file holding the password (optional)
    unsigned pool_size = 8;               // postgresql: connections per node
    std::filesystem::path blob_dir;       // message bodies; empty: data_dir/mailboxes (shared by nodes)
    // Several nodes on one PostgreSQL database: the queue's message files must be on
    // storage every node reads (like blob_dir), and each node claims work by name.
    std::filesystem::path spool_dir;        // queue files; empty: data_dir/spool
    std::string node;                       // this node's name; empty: hostname + data_dir
    std::chrono::seconds claim_lease{600};  // a dead node's work is taken over after this
    // How spool files and message bodies become durable before the rows naming them
    // commit: "file" (an fsync each, and their directories') or "file_system" (one
    // syncfs per commit round: for a spool and blob_dir on file systems of their own).
    std::string file_sync = "file";
};

struct Mailbox {
    std::string address;
    std::string password;  // only for the embedded demo; never logged
};

// [index]: the PEC provider index (pec.md 6) and where it comes from.
struct Index {
    std::string source = "none";  // none | file | https | ldap
    std::filesystem::path file;   // source = file: plain or signed LDIF
    std::string url;              // source = https: the signed LDIF's URL
    std::string ldap_uri;         // source = ldap: ldap:// or ldaps://
    std::string ldap_base = "o=postacert";
    std::string ldap_bind_dn;                  // empty: anonymous
    std::filesystem::path ldap_password_file;  // the bind password, read at start; never logged
    std::filesystem::path trust_anchor;        // PEM; documents must be signed by a chain to it
    std::filesystem::path ca_file;             // roots for the HTTPS / LDAPS server; empty: system
    std::filesystem::path cache_file;          // local copy of the last good download
    std::chrono::seconds refresh_interval{86400};
    std::chrono::seconds retry_interval{300};
    std::chrono::seconds timeout{60};
};

// [pec]: this provider's PEC service (pec.md): who it is, how it signs, whom it trusts.
// Present in a file = on (enabled = false turns it off); the embedded default has it on
// unless pecd runs with --smtp-only.
struct Pec {
    bool enabled = false;
    std::string provider_name;                  // daticert gestore-emittente, e.g. "Esempio PEC S.p.A."
    std::string domain;                         // posta-certificata@<domain>; empty: the first PEC domain
    std::vector<std::string> domains;           // PEC domains served; empty: every entry of `domains`
    std::string service_mailbox;                // mailReceipt; empty: posta-certificata@<domain>
    std::vector<std::string> access_listeners;  // listeners of the access point; empty: those with auth
    std::string node_id;                        // PEC message ids of this node; empty: hostname
    // The provider's signing identity: a PEM pair, or a PKCS#11 token (HSM).
    std::filesystem::path signing_certificate;  // PEM, leaf first, then its chain
    std::filesystem::path signing_key;          // PEM private key (file keys)
    std::string pkcs11_module;
    std::string pkcs11_token;
    std::string pkcs11_key_label;
    std::filesystem::path pkcs11_pin_file;  // the user PIN, read at start; never logged
    std::filesystem::path trust_anchors;    // PEM roots of provider signing certificates
    std::filesystem::path crl_file;         // optional CRLs (PEM or DER)
    std::size_t max_recipients = 500;
    std::uint64_t max_volume = 100ull << 20;         // bytes x recipients (floor 30 MB, pec.md 5.1)
    std::chrono::seconds timer_interval{30};         // how often the 12 h / 24 h timers are checked
    std::chrono::seconds notice24_after{23 * 3600};  // within [22 h, 24 h] (pec.md 5.4)
};

// [log]: the legal log (pec.md 7): sealed segments, time stamps, retention.
struct LegalLog {
    bool enabled = true;                // with [pec] on; off only for tests and benchmarks
    std::string tsa_url;                // RFC 3161 over HTTP; empty: the built-in TSA
    std::filesystem::path tsa_anchors;  // PEM roots of tsa_url's certificate
    std::string tsa_listen;             // "127.0.0.1:3180": serve the built-in TSA there
    std::chrono::seconds segment_interval{3600};
    unsigned retention_months = 30;
};

// [api]: the mailbox API (provisioning and read access over HTTPS, mutual TLS, OAuth2
// bearer tokens, an IP allow-list; every request audited in the legal log). Present in a
// file = on; it needs [log] on (the audit trail is legal-log records).
struct Api {
    bool enabled = false;
    std::string listen = "127.0.0.1:8443";  // address:port; port 0 = any (tests)
    std::filesystem::path certificate;      // server pair; empty: the [tls] default pair
    std::filesystem::path key;
    std::filesystem::path client_ca;                            // required: CA(s) of the client certificates
    std::vector<std::string> allow{"127.0.0.1/32", "::1/128"};  // client networks (CIDR)
    std::string issuer;                                         // required: the tokens' "iss"
    std::string audience;                                       // required: the tokens' "aud"
    std::filesystem::path jwks_file;                            // one of jwks_file and jwks_url
    std::string jwks_url;
    std::filesystem::path jwks_ca;  // trust for an https jwks_url; empty: the system's store
    std::chrono::seconds jwks_refresh{3600};
    std::chrono::seconds jwks_min_refresh{30};  // at most this often for an unknown kid (rotation)
    std::chrono::seconds leeway{60};            // clock skew allowed on exp / nbf
    std::uint64_t max_body = 1 << 20;
    std::uint64_t max_connections = 1000;
    std::chrono::seconds idle_timeout{60};
    std::chrono::seconds closure_sweep_interval{3600};  // receive-only mailboxes past 180 days
};

struct Config {
    std::filesystem::path source;  // the file it came from, empty for the default
    std::string hostname = "localhost";
    std::filesystem::path data_dir;
    std::string log_level = "info";
    unsigned threads = 2;
    Limits limits;
    Antivirus antivirus;
    Tls tls;
    std::vector<Listener> listeners;
    std::vector<std::string> domains;  // local domains created at start if missing
    Outbound outbound;
    Dns dns;
    Store store;
    Index index;
    Pec pec;
    LegalLog log;
    Api api;
};

Config load_config(const std::filesystem::path& path);
Config parse_config(std::string_view toml_text, const std::string& source_name = "config");
Config embedded_default(const std::filesystem::path& data_dir);
// Where infected messages are kept: [antivirus] quarantine_dir or <data_dir>/quarantine.
std::filesystem::path quarantine_dir(const Config& c);
// "host:port", "[v6]:port" -> (host, port); nullopt when it is neither.
std::optional<std::pair<std::string, unsigned>> split_host_port(const std::string& v);

}  // namespace pecd::config
