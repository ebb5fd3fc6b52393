// server.hpp - the mailbox API's HTTPS listener (Boost.Beast, Asio C++20 coroutines)
//
// Contract:
// - Mutual TLS only: the context comes from a tls::ServerTls whose settings name a
//   client CA, so a client without a certificate issued by that CA fails the handshake
//   (TLS 1.2 floor and suites of src/tls). Before any TLS byte, the client address is
//   checked against the allow-list; a refused address is closed at once (and audited).
// - HTTP/1.1 with keep-alive; request headers up to 16 KiB, bodies up to `max_body`
//   (413 problem, then the connection is closed); a malformed request gets a 400
//   problem and the connection is closed; other connections are not affected.
// - Each request's audit record (and lifecycle change) is durable before its response
//   is written (AuditTrail); if the record cannot be written the answer is 503 and no
//   data is sent.
// - A timer closes receive-only mailboxes whose read-only period has ended
//   (MailboxLifecycle::due_for_closure), each closure audited with actor "pecd".
// - start() binds (port 0 = any) and returns the bound port; stop() closes the listener
//   and the open connections.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "api/allow_list.hpp"
#include "api/audit_trail.hpp"
#include "api/service.hpp"
#include "tls/server_tls.hpp"

namespace pecd::api {

struct ApiServerSettings {
    std::string address = "127.0.0.1";
    unsigned short port = 0;
    std::shared_ptr<tls::ServerTls> tls;  // must require client certificates
    AllowList allow;
    std::size_t max_body = 1 << 20;
    std::size_t max_connections = 1000;
    std::chrono::seconds idle_timeout{60};
    std::chrono::seconds handshake_timeout{10};
    std::chrono::seconds closure_sweep_interval{60};
};

class ApiServer {
public:
    ApiServer(boost::asio::io_context& io, MailboxApi& api, AuditTrail& audit,
              store::MailboxLifecycle& lifecycle, ApiServerSettings settings);
    ~ApiServer();
    unsigned short start();
    void stop();
    // Runs one closure sweep now (tests; the timer does it every closure_sweep_interval).
    void sweep_closures();

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

}  // namespace pecd::api
