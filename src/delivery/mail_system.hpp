// mail_system.hpp - the storage and delivery side of pecd, assembled under one data dir
//
// MailSystem opens the configured database (default DATA_DIR/pecd.db, SQLite; or
// PostgreSQL), the blob store (default DATA_DIR/mailboxes), the
// queue DATA_DIR/spool, and wires the queue runner to the transports: `local` routes to the
// built-in mailboxes, `lmtp:`/`smtp:` routes to RemoteTransport. The daemon takes
// sink() for its SMTP listeners and the store for recipient and password checks, calls
// start() once listening and stop() on shutdown.
//
// Opening recovers from a crash (spool.hpp): unacknowledged files are removed, and every
// acknowledged message not yet delivered is delivered after start(). An administrative
// reader beside a running daemon (pecctl) sets spool.recover = false: for it, a file
// without rows is a message still being received. With `dns` set, mail for domains that
// are neither local nor routed goes to their MX hosts (router.hpp, remote_transport.hpp).
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <optional>

#include "delivery/local_transport.hpp"
#include "delivery/remote_transport.hpp"
#include "delivery/router.hpp"
#include "queue/runner.hpp"
#include "queue/spool.hpp"
#include "store/mail_store.hpp"

namespace pecd::delivery {

struct MailSystemOptions {
    std::filesystem::path data_dir;
    store::DatabaseSettings database;  // [store]; an empty SQLite path means data_dir/pecd.db
    std::filesystem::path blob_dir;    // message bodies; empty: data_dir/mailboxes
    std::filesystem::path spool_dir;   // queue files; empty: data_dir/spool
    // [store] file_sync = "file_system": spool files and bodies are made durable by one
    // syncfs per group-commit round (core/file_system_sync.hpp), not one fsync each.
    bool file_system_sync = false;
    std::string hostname = "localhost";
    queue::SpoolOptions spool;
    queue::RunnerOptions runner;                        // hostname is set from `hostname`
    RemoteOptions remote;                               // helo_name is set from `hostname` when empty
    std::optional<store::Route> default_route;          // relay host for non-local domains
    std::map<std::string, store::Route> static_routes;  // [[outbound.routes]]: domain -> next hop
    // MX routing for non-local domains without a default route: the resolver's settings
    // and the MX hosts' port. Unset: no MX routing.
    std::optional<dns::ResolverSettings> dns;
    std::uint16_t mx_port = 25;
};

// Sends each attempt to the transport for its route's kind.
class Dispatcher final : public queue::Transport {
public:
    Dispatcher(queue::Transport& local, queue::Transport& remote) : local_(local), remote_(remote) {}
    std::vector<queue::RecipientResult> deliver(const queue::DeliveryAttempt& a) override {
        return a.route.kind == store::Route::Kind::local ? local_.deliver(a) : remote_.deliver(a);
    }

private:
    queue::Transport& local_;
    queue::Transport& remote_;
};

class MailSystem {
public:
    explicit MailSystem(MailSystemOptions options, const Clock& clock = SystemClock::instance());
    ~MailSystem();

    store::Database& database() { return *db_; }
    store::MailStore& store() { return *store_; }
    store::BlobStore& blobs() { return *blobs_; }
    queue::Spool& spool() { return *spool_; }
    queue::MessageSink& sink() { return *spool_; }
    queue::Runner& runner() { return *runner_; }
    const queue::Runner& runner() const { return *runner_; }
    RemoteTransport& remote() { return *remote_; }
    // Outbound TLS (the client certificate's reload and expiry); null without one.
    tls::ClientTls* client_tls() { return options_.remote.tls.get(); }
    void start() { runner_->start(); }
    void stop() { runner_->stop(); }

private:
    MailSystemOptions options_;
    std::unique_ptr<store::Database> db_;
    std::unique_ptr<store::BlobStore> blobs_;
    std::unique_ptr<store::MailStore> store_;
    std::unique_ptr<queue::Spool> spool_;
    std::unique_ptr<StoreRouter> router_;
    std::unique_ptr<LocalTransport> local_;
    std::unique_ptr<RemoteTransport> remote_;
    std::unique_ptr<Dispatcher> dispatcher_;
    std::unique_ptr<queue::Runner> runner_;
};

}  // namespace pecd::delivery
