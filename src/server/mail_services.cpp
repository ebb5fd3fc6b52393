#include "server/mail_services.hpp"

#include <sodium.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/calendar.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/strings.hpp"
#include "crypto/cms.hpp"
#include "delivery/mail_system.hpp"
#include "delivery/outbound_config.hpp"
#include "index/index_service.hpp"
#include "log/log_service.hpp"
#include "provider/engine.hpp"
#include "server/api_service.hpp"
#include "server/signing_key.hpp"
#include "tls/certificate.hpp"
#include "tls/certificate_files.hpp"

namespace pecd::server {
namespace {

// Directory over the mailbox store.
class StoreDirectory final : public Directory {
public:
    explicit StoreDirectory(store::MailStore& m) : mail_(m) {}
    std::optional<smtp::RecipientVerdict> local_recipient(std::string_view address) override {
        auto info = mail_.recipient(address);
        if (!info.domain) return std::nullopt;
        switch (info.acceptance) {
            case store::Acceptance::accept:
                return smtp::RecipientVerdict::accept;
            case store::Acceptance::unknown_mailbox:
                return smtp::RecipientVerdict::unknown_user;
            case store::Acceptance::not_active:
                return smtp::RecipientVerdict::disabled;
            case store::Acceptance::over_quota:
                return smtp::RecipientVerdict::mailbox_full;
        }
        return smtp::RecipientVerdict::temp_failure;
    }
    bool verify_password(const std::string& account, const std::string& password) override {
        return mail_.verify_password(account, password);
    }

private:
    store::MailStore& mail_;
};

// A random password a person can type: 20 characters from an unambiguous alphabet.
std::string random_password() {
    static constexpr char alphabet[] = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    std::string p(20, 'x');
    for (auto& c : p) c = alphabet[randombytes_uniform(sizeof alphabet - 1)];
    return p;
}

av::ClamdOptions clamd_options(const config::Antivirus& a) {
    av::ClamdOptions o;
    o.endpoint = av::ClamdEndpoint::parse(a.address.empty() ? "unix:" + a.socket : "tcp:" + a.address);
    o.connect_timeout = a.connect_timeout;
    o.scan_timeout = a.timeout;
    if (!a.sessions) o.session_idle = std::chrono::milliseconds(0);
    return o;
}

// The PEC provider: signing identity, trust, scanner, quarantine, legal log, engine.
class PecProvider {
public:
    PecProvider(const config::Config& c, delivery::MailSystem& system, const index::IndexService* providers,
                boost::asio::io_context& io, const Clock& clock)
        : signing_(std::make_shared<SigningKeys>(c.pec)),
          trust_("pec", c.pec.trust_anchors, c.pec.crl_file),
          quarantine_(config::quarantine_dir(c), clock, static_cast<int>(c.antivirus.retention_months)) {
        if (c.antivirus.enabled)
            scanner_ = std::make_unique<av::ClamdClient>(clamd_options(c.antivirus));
        else
            spdlog::warn("pec: antivirus is off ([antivirus] enabled = false): messages are not scanned");
        if (c.log.enabled) {
            log::LogServiceOptions lo;
            lo.data_dir = c.data_dir;
            lo.tsa_url = c.log.tsa_url;
            lo.segment_interval = c.log.segment_interval;
            lo.retention_months = static_cast<int>(c.log.retention_months);
            if (!c.log.tsa_anchors.empty())
                lo.tsa_trust = tsa_trust_ =
                    std::make_shared<crypto::TrustFiles>("log: TSA", c.log.tsa_anchors, "", clock);
            if (!c.log.tsa_listen.empty()) {
                auto hp = config::split_host_port(c.log.tsa_listen);
                if (!hp) throw Error("log: tsa_listen '" + c.log.tsa_listen + "' is not address:port");
                lo.tsa_listen = boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address(hp->first),
                                                               static_cast<unsigned short>(hp->second));
            }
            log_ = std::make_unique<log::LogService>(system.database(), signing_, clock, io, lo);
        }
        provider::EngineSettings s;
        s.provider_domain = to_lower(c.pec.domain);
        s.provider_name = c.pec.provider_name;
        for (const auto& d : c.pec.domains.empty() ? c.domains : c.pec.domains)
            s.pec_domains.insert(to_lower(d));
        if (c.pec.access_listeners.empty()) {
            for (const auto& l : c.listeners)
                if (l.auth) s.access_listeners.insert(l.name);
        } else {
            s.access_listeners.insert(c.pec.access_listeners.begin(), c.pec.access_listeners.end());
        }
        s.hostname = c.hostname;
        s.node_id = c.pec.node_id;
        s.limits.max_recipients = c.pec.max_recipients;
        s.limits.max_volume = c.pec.max_volume;
        s.tracking.notice24_after = c.pec.notice24_after;
        s.timer_interval = c.pec.timer_interval;
        provider::EngineParts parts;
        parts.spool = &system.spool();
        parts.mail = &system.store();
        parts.signer = signing_.get();
        parts.trust = &trust_;
        parts.index = providers ? &providers->lookup() : nullptr;
        index_ = parts.index;
        domain_ = to_lower(c.pec.domain);
        parts.scanner = scanner_.get();
        parts.quarantine = &quarantine_;
        parts.legal_log = log_ ? &log_->log() : nullptr;
        parts.clock = &clock;
        engine_ = std::make_unique<provider::Engine>(std::move(s), parts);
        system.runner().set_processor(engine_.get());
        // The service mailbox (mailReceipt) receives presa in carico and virus notices.
        auto service = c.pec.service_mailbox.empty() ? "posta-certificata@" + to_lower(c.pec.domain)
                                                     : c.pec.service_mailbox;
        if (!system.store().mailbox(service)) {
            store::NewMailbox m;
            m.address = service;
            system.store().add_mailbox(m);
        }
        if (!providers)
            spdlog::warn("pec: no provider index ([index] source = none): every recipient is esterno");
    }
    void start() {
        if (log_) log_->start();
        engine_->start();
    }
    // The signing certificate's validity and the trust's CRLs (at start and daily).
    void log_certificates() const {
        trust_.log_status();
        if (tsa_trust_) tsa_trust_->log_status();
        signing_->log_expiry();
        check_published();
    }
    // Other providers take a signer that is not in the provider index for a stranger
    // (every envelope and receipt becomes an anomaly there): say so when it happens,
    // typically a renewal deployed before the index was updated. Quiet until an index
    // is loaded.
    void check_published() const {
        if (!index_ || !index_->ready()) return;
        auto cert = signing_->current()->certificate;
        auto provider = index_->by_certificate(cert.get());
        if (!provider)
            spdlog::error(
                "pec: the signing certificate in use (SHA-1 {}) is not in the provider index: other "
                "providers take what it signs for a stranger's",
                crypto::certificate_sha1_hex(cert.get()));
        else if (std::find(provider->domains.begin(), provider->domains.end(), domain_) ==
                 provider->domains.end())
            spdlog::error(
                "pec: the signing certificate in use is published in the provider index for {}, which "
                "does not manage {}",
                provider->name, domain_);
    }
    void stop() {
        engine_->stop();
        if (log_) log_->stop();
    }
    log::LegalLog* legal_log() { return log_ ? &log_->log() : nullptr; }
    const crypto::TrustFiles& trust() const { return trust_; }
    // Renewed certificates, keys and CRLs, for the next message.
    void reload() {
        if (signing_->reload_if_changed()) check_published();
        trust_.reload_if_changed();
        if (tsa_trust_) tsa_trust_->reload_if_changed();
    }

private:
    std::shared_ptr<SigningKeys> signing_;  // shared with the legal log's sealer
    const index::ProviderLookup* index_ = nullptr;
    std::string domain_;
    crypto::TrustFiles trust_;
    std::shared_ptr<crypto::TrustFiles> tsa_trust_;  // [log] tsa_anchors, shared with the sealer
    av::Quarantine quarantine_;
    std::unique_ptr<av::ClamdClient> scanner_;
    std::unique_ptr<log::LogService> log_;
    std::unique_ptr<provider::Engine> engine_;
};

class StoreMailServices final : public MailServices {
public:
    StoreMailServices(const config::Config& c, bool demo, boost::asio::io_context& io, const Clock& clock)
        : index_(open_index(c)),
          system_(options(c, index_.get()), clock),
          mail_(system_.store()),
          directory_(mail_) {
        for (auto& d : c.domains)
            if (!mail_.is_local_domain(d)) mail_.add_domain(d);
        if (demo) create_demo(c);
        if (c.pec.enabled) pec_ = std::make_unique<PecProvider>(c, system_, index_.get(), io, clock);
        if (c.api.enabled) {
            ApiParts parts;
            parts.db = &system_.database();
            parts.mail = &mail_;
            parts.blobs = &system_.blobs();
            parts.log = pec_ ? pec_->legal_log() : nullptr;
            parts.trust = pec_ ? &pec_->trust() : nullptr;
            parts.index = index_ ? &index_->lookup() : nullptr;
            if (!parts.log) throw Error("api: the audit trail needs the legal log ([pec] and [log] on)");
            api_ = std::make_unique<ApiService>(c, parts, io, clock);
        }
    }
    ~StoreMailServices() override { system_.stop(); }  // no worker may reach the engine after it
    Directory& directory() override { return directory_; }
    queue::MessageSink& sink() override { return system_.sink(); }
    std::size_t backlog() const override { return system_.runner().backlog(); }
    void start() override {
        // The index refreshes on its own thread (local copy first, then the source), so a
        // slow or failing source never holds up the queue: lookups see the last good index.
        if (index_) index_->start();
        // PEC work waits for an index (the engine defers without one); a normal restart
        // reads it in well under this, so nothing is deferred for it.
        if (index_ && !index_->wait_ready(std::chrono::seconds(10)))
            spdlog::warn("index: no provider index loaded yet; PEC messages wait for it");
        else if (pec_)
            pec_->check_published();
        if (pec_) pec_->start();
        system_.start();
        if (api_) api_->start();
    }
    void stop() override {
        if (api_) api_->stop();
        system_.stop();
        if (pec_) pec_->stop();
        if (index_) index_->stop();
    }
    std::vector<std::pair<std::string, std::string>> demo_accounts() const override { return demo_; }
    std::vector<BoundListener> other_listeners() const override {
        if (!api_) return {};
        return {api_->listener()};
    }
    void reload_certificates() override {
        if (api_) api_->reload_certificates();
        if (auto* t = system_.client_tls()) t->reload_if_changed();
        if (pec_) pec_->reload();
    }
    void log_certificate_expiry() override {
        if (pec_) pec_->log_certificates();
        if (auto* t = system_.client_tls()) t->log_expiry();
    }

private:
    // The provider index named by [index], or none (source = "none").
    static std::unique_ptr<index::IndexService> open_index(const config::Config& c) {
        auto settings = index::settings_from_config(c.index);
        if (settings.source == index::SourceKind::none) return nullptr;
        return std::make_unique<index::IndexService>(std::move(settings));
    }

    static delivery::MailSystemOptions options(const config::Config& c,
                                               const index::IndexService* providers) {
        delivery::MailSystemOptions o;
        o.data_dir = c.data_dir;
        o.hostname = c.hostname;
        o.database = {c.store.backend, c.store.path.string(), c.store.conninfo,
                      c.store.password_file.string(), c.store.pool_size};
        o.blob_dir = c.store.blob_dir;
        o.spool_dir = c.store.spool_dir;
        o.file_system_sync = c.store.file_sync == "file_system";
        if (c.store.backend == "postgresql") {
            // Any node may hold any message: claims by node name, leases, and a spool
            // shared with the other nodes whose fresh files are theirs to finish.
            o.spool.node = c.store.node.empty() ? c.hostname + ":" + c.data_dir.string() : c.store.node;
            o.spool.lease = c.store.claim_lease;
            o.spool.orphan_age = std::chrono::hours(1);
        }
        if (c.store.backend == "postgresql")  // the server only: the conninfo may hold a password
            spdlog::info("store: postgresql {}", store::describe_conninfo(c.store.conninfo));
        o.spool.min_free_bytes = c.limits.spool_min_free;  // below it, DATA gets a 4xx
        delivery::apply_outbound_config(c, o);             // MX routing, outbound TLS, retries
        // PEC domains of the index get at least `verify` on outbound TLS (pec.md 8).
        if (providers) o.remote.providers = &providers->lookup();
        return o;
    }

    // The embedded default's two mailboxes; their passwords exist only in the 0600 file.
    void create_demo(const config::Config& c) {
        const std::string domain = c.domains.empty() ? "pec.localhost" : c.domains.front();
        auto file = c.data_dir / "demo-credentials.txt";
        std::string text = "# Demo mailboxes of the embedded default: address password\n";
        bool created = false;
        for (auto local : {"alice", "bob"}) {
            std::string address = std::string(local) + "@" + domain;
            if (!mail_.mailbox(address)) {
                store::NewMailbox m;
                m.address = address;
                mail_.add_mailbox(m);
                auto pw = random_password();
                mail_.set_password(address, pw);
                demo_.emplace_back(address, pw);
                text += address + " " + pw + "\n";
                created = true;
            }
        }
        if (created) {
            fs::write_file_durable(file, text, 0600);
        } else if (std::filesystem::exists(file)) {
            // Already set up on an earlier start: report the accounts from the file.
            // The content outlives the loop: split() returns views into it.
            const std::string content = fs::read_file(file);
            for (auto line : split(content, '\n')) {
                line = trim(line);
                if (line.empty() || line.front() == '#') continue;
                auto sp = line.find(' ');
                demo_.emplace_back(std::string(line.substr(0, sp)), std::string(line.substr(sp + 1)));
            }
        }
    }

    std::unique_ptr<index::IndexService> index_;  // before system_: the transport reads it
    delivery::MailSystem system_;
    store::MailStore& mail_;
    StoreDirectory directory_;
    std::vector<std::pair<std::string, std::string>> demo_;
    std::unique_ptr<PecProvider> pec_;  // after system_: stopped and destroyed first
    std::unique_ptr<ApiService> api_;   // reads the store and writes the legal log of pec_
};

}  // namespace

std::unique_ptr<MailServices> open_mail_services(const config::Config& config, bool embedded_demo,
                                                 boost::asio::io_context& io, const Clock& clock) {
    if (sodium_init() < 0) throw Error("libsodium could not be initialised");
    return std::make_unique<StoreMailServices>(config, embedded_demo, io, clock);
}

}  // namespace pecd::server
