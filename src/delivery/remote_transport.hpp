// remote_transport.hpp - delivery to an LMTP or SMTP next hop (routes lmtp:..., smtp:...)
//
// One connection per attempt (or a cached session, below), driven by smtp::ClientSession;
// this file only moves bytes with Boost.Asio, each step bounded by a timeout (connect,
// every reply, the data).
// SMTP next hops use STARTTLS according to the outbound TLS policy of the destination
// domain (tls::PolicyMap): `may` falls back to plain text on a new connection when the
// handshake fails; encrypt/verify/secure defer the recipients when TLS or the peer's
// certificate is not acceptable. LMTP next hops are local services and speak plain text.
//
// A route `smtp:` without a host (Route{smtp, "", port}) means "the MX hosts of the
// recipients' domain" (RFC 5321 5.1, dns::Resolver::mail_route): hosts by preference,
// each address in turn (at most max_addresses), moving on after a failed connection, a
// refused TLS session or a transient reply; a recipient is settled by the first host that
// answers it with 2xx or 5xx. A domain that does not exist or accepts no mail (null MX)
// fails its recipients (5.1.2); a DNS failure defers them.
//
// The TLS policy is the destination domain's (PolicyMap), raised to at least `verify` when
// `providers` names the domain a PEC domain. Every connection logs one line with the
// policy, protocol, cipher and verification outcome; delivered recipients carry it in
// their diagnostic. At most connections_per_destination connections are open at once per
// destination domain (per next hop for configured routes); a delivery waits up to
// slot_wait for a free one, then defers (4.4.5).
//
// SMTP sessions are cached (like Postfix's connection cache): after a completed
// transaction the session stays open, idle for at most connection_idle, and the next
// message for the same next hop (address and port), TLS policy and certificate
// reference names goes out on it with a new MAIL FROM. A session carries at most
// connection_max_uses transactions and lives at most connection_max_age. Before reuse
// the socket must show nothing to read (a peer that closed or announced 421 is
// dropped); a reused session that breaks or says 421 or 503 before the body is sent is
// replaced by a fresh connection for the same message, once - the body never went out,
// so nothing is delivered twice. Idle cached sessions count toward
// connections_per_destination and give way to a delivery waiting for a slot. The TLS
// line of a reused session is the one of its handshake.
//
// Per recipient: 2xx delivered, 4xx or a broken connection deferred, 5xx failed, with
// the peer's reply as diagnostic and the peer as remote MTA.
#pragma once

#include <chrono>
#include <memory>

#include "dns/resolver.hpp"
#include "index/lookup.hpp"
#include "queue/runner.hpp"
#include "tls/client_tls.hpp"

namespace pecd::delivery {

struct RemoteOptions {
    std::string helo_name = "localhost";
    std::chrono::seconds connect_timeout{30};
    std::chrono::seconds reply_timeout{300};
    std::chrono::seconds data_timeout{600};
    std::shared_ptr<tls::ClientTls> tls;  // required for STARTTLS; none: plain text only
    tls::PolicyMap policies;
    std::shared_ptr<const dns::Resolver> resolver;     // for MX routes; none: they defer
    const index::ProviderLookup* providers = nullptr;  // PEC domains get at least `verify`
    std::size_t connections_per_destination = 20;
    std::chrono::seconds slot_wait{600};
    std::size_t max_addresses = 10;                   // MX addresses tried per attempt
    std::chrono::milliseconds connection_idle{2000};  // 0: no connection cache
    std::size_t connection_max_uses = 100;
    std::chrono::seconds connection_max_age{60};
};

class RemoteTransport final : public queue::Transport {
public:
    explicit RemoteTransport(RemoteOptions options);
    ~RemoteTransport() override;
    std::vector<queue::RecipientResult> deliver(const queue::DeliveryAttempt& attempt) override;
    // Most connections ever open at once to this destination domain (diagnostics, tests).
    std::size_t peak_connections(const std::string& destination) const;
    // Transactions sent on a cached session instead of a new connection (diagnostics, tests).
    std::size_t reused_sessions() const;

private:
    class Slots;
    class Cache;
    RemoteOptions options_;
    std::unique_ptr<Slots> slots_;
    std::unique_ptr<Cache> cache_;  // after slots_: its idle sessions hold slot leases
};

}  // namespace pecd::delivery
