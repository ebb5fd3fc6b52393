// mail_services.hpp - the storage side of the SMTP server: directory and queue
//
// open_mail_services() opens the database and spool under the data directory and returns
// what the SMTP listeners need: the Directory (local domains, mailboxes, passwords) and
// the MessageSink (durable queue). For the embedded default it also creates the demo
// domain and two mailboxes with random passwords, written to DATA_DIR/demo-credentials.txt
// (mode 0600) and never logged. With an [index] source it runs the provider index service
// (refreshed on its own thread) and gives its lookups to outbound delivery. With [pec] on
// it runs the PEC provider flow (provider/engine.hpp) over the queue, with the legal log
// (log/log_service.hpp; its built-in TSA may listen on `io`) and clamd. With [api] on it
// serves the mailbox API on `io` (server/api_service.hpp).
#pragma once

#include <boost/asio/io_context.hpp>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "core/clock.hpp"
#include "queue/sink.hpp"
#include "server/smtp_server.hpp"

namespace pecd::server {

class MailServices {
public:
    virtual ~MailServices() = default;
    virtual Directory& directory() = 0;
    virtual queue::MessageSink& sink() = 0;
    // Messages in the queue this process still has to work on (queue::Runner::backlog).
    virtual std::size_t backlog() const = 0;
    virtual void start() = 0;  // background work (queue runner)
    virtual void stop() = 0;
    // Demo accounts created on this start (address, password); empty otherwise.
    virtual std::vector<std::pair<std::string, std::string>> demo_accounts() const = 0;
    // Listeners besides SMTP (the mailbox API), once started.
    virtual std::vector<BoundListener> other_listeners() const = 0;
    // Re-reads the certificates of those listeners and the outbound client certificate
    // when their files changed (every [tls] reload_interval, and at SIGHUP).
    virtual void reload_certificates() = 0;
    // The PEC signing certificate's validity and the outbound client certificate's, in
    // the log (called at start and daily, as for the listeners' certificates): once the
    // signing certificate expires, every envelope and receipt it signs fails verification
    // at the other providers.
    virtual void log_certificate_expiry() = 0;
};

std::unique_ptr<MailServices> open_mail_services(const config::Config& config, bool embedded_demo,
                                                 boost::asio::io_context& io,
                                                 const Clock& clock = SystemClock::instance());

}  // namespace pecd::server
