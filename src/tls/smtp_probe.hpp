// smtp_probe.hpp - what a receiving domain sees of a mail server's TLS (`pecctl tls-check`)
//
// probe() connects to HOST:PORT, reads the 220 banner, sends EHLO, looks for STARTTLS,
// upgrades (or starts with TLS on implicit-TLS ports), and records the protocol, cipher,
// certificate and chain; then QUIT. It never throws for the peer's behaviour: every
// step's outcome is in ProbeResult. evaluate() is pure and turns a ProbeResult into one
// verdict per check (ok / warn / fail / skip); exit_status() maps them to the process
// status: 0 no check failed, 1 at least one failed.
//
// The SMTP reply parsing is pure (parse_reply) so it is tested byte for byte.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tls/client_tls.hpp"

namespace pecd::tls {

struct SmtpReply {
    int code = 0;
    std::vector<std::string> lines;  // text after "NNN-" / "NNN "
};

// Parses one complete reply at the start of `buffer`; returns nullopt if more bytes are
// needed and sets `consumed`. Throws pecd::ParseError for a line that is not a reply.
std::optional<SmtpReply> parse_reply(std::string_view buffer, std::size_t& consumed);
// The host name a 220 banner announces (first word), or "".
std::string banner_host(const SmtpReply& banner);
bool ehlo_offers(const SmtpReply& ehlo, std::string_view keyword);

enum class ProbeMode { starttls, implicit };

struct Target {
    std::string host;
    unsigned short port = 25;
};
// "host", "host:port", "192.0.2.1:25", "[2001:db8::1]:25", "2001:db8::1"; throws
// pecd::ParseError naming the bad part.
Target parse_target(std::string_view text, unsigned short default_port = 25);

struct ProbeOptions {
    std::string host;
    unsigned short port = 25;
    ProbeMode mode = ProbeMode::starttls;
    std::string name;               // the name the certificate must carry; default: host (unless an IP)
    std::filesystem::path ca_file;  // trusted roots; empty: system trust store
    std::string ehlo_name = "tls-check.invalid";
    std::chrono::milliseconds timeout{10000};
    std::chrono::days expiry_warning{30};
};

struct ProbeResult {
    bool connected = false;
    std::string connect_error;
    std::string banner;  // the whole first banner line
    std::string banner_host;
    bool ehlo_ok = false;
    bool starttls_offered = false;
    bool handshake_ok = false;
    std::string handshake_error;
    PeerVerification verification;  // names checked against the requested name
    NameMatch banner_name;          // certificate names against the banner host name
    ChainReport chain;
    std::optional<CertificateInfo> leaf;
    int days_to_expiry = 0;
    std::string dialogue_error;  // unexpected SMTP reply, timeout...
};

ProbeResult probe(const ProbeOptions& options);

enum class Verdict { ok, warn, fail, skip };
std::string_view to_string(Verdict v);

struct Check {
    std::string name;  // "connect", "banner", "starttls", "handshake", "protocol", ...
    Verdict verdict = Verdict::skip;
    std::string detail;
};

std::vector<Check> evaluate(const ProbeOptions& options, const ProbeResult& result);
int exit_status(const std::vector<Check>& checks);

// Whether mail to `domain` through MX host `mx_host` may go over the session the probe saw,
// under policy p: the STARTTLS decision, the handshake outcome and the peer verification
// (names checked against reference_names(p, mx_host, domain)), combined as delivery does.
PeerVerdict policy_outcome(const DestinationPolicy& p, std::string_view mx_host, std::string_view domain,
                           const ProbeResult& r, ProbeMode mode = ProbeMode::starttls);

}  // namespace pecd::tls
