// remote_transport.hpp - delivery to an LMTP or SMTP next hop (routes lmtp:..., smtp:...)
//
// One connection per attempt, driven by smtp::ClientSession; this file only moves bytes
// with Boost.Asio, each step bounded by a timeout (connect, every reply, the data).
// SMTP next hops use STARTTLS according to the outbound TLS policy of the destination
// domain (tls::PolicyMap): `may` falls back to plain text on a new connection when the
// handshake fails; encrypt/verify/secure defer the recipients when TLS or the peer's
// certificate is not acceptable. LMTP next hops are local services and speak plain text.
//
// Per recipient: 2xx delivered, 4xx or a broken connection deferred, 5xx failed, with
// the peer's reply as diagnostic and the peer as remote MTA.
#pragma once

#include <chrono>
#include <memory>

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
};

class RemoteTransport final : public queue::Transport {
public:
    explicit RemoteTransport(RemoteOptions options);
    std::vector<queue::RecipientResult> deliver(const queue::DeliveryAttempt& attempt) override;

private:
    RemoteOptions options_;
};

}  // namespace pecd::delivery
