// smtp_server.hpp - SMTP/LMTP listeners and sessions on Boost.Asio coroutines
//
// SmtpServer binds listeners and runs one coroutine per connection on its own strand.
// The protocol lives in smtp::ServerSession; this file only moves bytes and performs
// what the session waits for: TLS handshakes (STARTTLS or implicit, with the context
// current at that moment, so renewed certificates apply to the next handshake while
// established sessions keep theirs), password checks on a worker pool (Argon2id is
// deliberately slow and must not stall the event loop), and durable commits (the 250
// is written only after the queue's commit callback reports success).
//
// Limits enforced here: total connections, connections per client address, idle time
// per command and per TLS handshake, failed-AUTH rate (smtp::AuthLimiter).
//
// In-flow control: while the queue holds more than `in_flow_backlog` messages not yet
// worked off, a session waits (up to `in_flow_delay`) before it commits the message it
// received. A client that submits faster than the queue completes its work is slowed
// down, so the backlog, and the wait every later message shares, stays bounded instead
// of growing for as long as the overload lasts. Only submission listeners (those that
// require AUTH) are paced: that is where new work enters. Mail from other servers is
// not: two servers that deliver to each other would each wait for the other's backlog,
// which their own waiting deliveries keep high.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/clock.hpp"
#include "queue/sink.hpp"
#include "smtp/auth_limiter.hpp"
#include "smtp/server_session.hpp"
#include "tls/server_tls.hpp"

namespace pecd::server {

// What SMTP needs to know about local domains and mailboxes.
class Directory {
public:
    virtual ~Directory() = default;
    // Verdict for an address in a local domain (accept, unknown_user, disabled,
    // mailbox_full); nullopt when its domain is not one pecd accepts mail for.
    virtual std::optional<smtp::RecipientVerdict> local_recipient(std::string_view address) = 0;
    // Constant-time-ish password check (Argon2id); false for unknown accounts too.
    virtual bool verify_password(const std::string& account, const std::string& password) = 0;
};

struct ListenerConfig {
    smtp::ListenerPolicy policy;
    std::string address = "127.0.0.1";
    std::uint16_t port = 0;  // 0 = any free port
    std::shared_ptr<tls::ServerTls> tls;  // required unless policy.tls == none
};

struct ServerLimits {
    std::size_t max_connections = 10000;
    std::size_t per_client = 50;
    std::chrono::seconds idle{300};          // RFC 5321 4.5.3.2: at least 5 minutes
    std::chrono::seconds tls_handshake{30};
    std::chrono::seconds tls_reload_interval{2};
    std::size_t in_flow_backlog = 0;  // 0: no in-flow control
    std::chrono::milliseconds in_flow_delay{1000};
};

struct BoundListener {
    std::string name;
    std::string address;
    std::uint16_t port;
    smtp::TlsMode tls;
};

class SmtpServer {
public:
    SmtpServer(boost::asio::io_context& io, Directory& directory, queue::MessageSink& sink,
               const Clock& clock, ServerLimits limits = {}, smtp::AuthLimits auth_limits = {});
    ~SmtpServer();
    // Binds now (throws Error on failure, naming the address) and returns the real port.
    BoundListener add_listener(ListenerConfig config);
    // The queue's backlog, read for in-flow control (set before start()).
    void set_queue_backlog(std::function<std::size_t()> backlog);
    // Starts accepting on every listener and the certificate reload timer.
    void start();
    // Stops accepting; open sessions are told 421 at their next step.
    void stop();
    std::size_t connections() const;
    const std::vector<BoundListener>& listeners() const { return bound_; }

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
    std::vector<BoundListener> bound_;
};

}  // namespace pecd::server
