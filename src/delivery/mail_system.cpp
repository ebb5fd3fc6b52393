// mail_system.cpp - assembling store, queue and delivery (see mail_system.hpp)
#include "delivery/mail_system.hpp"

#include <spdlog/spdlog.h>

#include "core/fs.hpp"

namespace pecd::delivery {

MailSystem::MailSystem(MailSystemOptions options, const Clock& clock) : options_(std::move(options)) {
    fs::ensure_dir(options_.data_dir, 0750);
    auto database = options_.database;
    if (database.backend == "sqlite" && database.path.empty())
        database.path = (options_.data_dir / "pecd.db").string();
    db_ = store::open_database(database);
    blobs_ = std::make_unique<store::BlobStore>(options_.blob_dir.empty() ? options_.data_dir / "mailboxes"
                                                                          : options_.blob_dir);
    store_ = std::make_unique<store::MailStore>(*db_, *blobs_, clock);
    auto spool_dir = options_.spool_dir.empty() ? options_.data_dir / "spool" : options_.spool_dir;
    if (options_.file_system_sync) {
        // One sync of each file system per group-commit round, for the spool's files and
        // the bodies delivered with them (their rows commit in the same rounds).
        fs::ensure_dir(spool_dir, 0750);
        auto sync = std::make_shared<FileSystemSync>(std::vector{spool_dir, blobs_->root()});
        blobs_->defer_syncs(sync);
        options_.spool.file_system_sync = std::move(sync);
    }
    spool_ = std::make_unique<queue::Spool>(*db_, spool_dir, clock, options_.spool);
    // Mailbox deliveries commit with the queue's other changes: one fsync per round
    // instead of one per message, and no second writer queueing on the database.
    store_->set_writer(
        [this](const std::function<void(store::Tx&)>& work) { spool_->committer().run(work); });
    std::optional<std::uint16_t> mx_port;
    if (options_.dns) {
        if (!options_.remote.resolver)
            options_.remote.resolver = std::make_shared<dns::Resolver>(*options_.dns);
        mx_port = options_.mx_port;
    }
    router_ = std::make_unique<StoreRouter>(*store_, options_.default_route, mx_port);
    router_->set_static_routes(options_.static_routes);
    local_ = std::make_unique<LocalTransport>(*store_);
    if (options_.remote.helo_name.empty() || options_.remote.helo_name == "localhost")
        options_.remote.helo_name = options_.hostname;
    if (!options_.remote.tls) {
        // Outbound STARTTLS by default (policy `may` unless configured): the system trust
        // store, TLS 1.2 floor, session reuse.
        try {
            options_.remote.tls = std::make_shared<tls::ClientTls>(tls::ClientTlsSettings{});
        } catch (const std::exception& e) {
            spdlog::warn("delivery: no outbound TLS context ({}); next hops get plain text", e.what());
        }
    }
    remote_ = std::make_unique<RemoteTransport>(options_.remote);
    dispatcher_ = std::make_unique<Dispatcher>(*local_, *remote_);
    options_.runner.hostname = options_.hostname;
    runner_ = std::make_unique<queue::Runner>(*spool_, *router_, *dispatcher_, clock, options_.runner);
}

MailSystem::~MailSystem() {
    runner_->stop();
}

}  // namespace pecd::delivery
