#include "server/mail_services.hpp"

#include <sodium.h>
#include <spdlog/spdlog.h>

#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/strings.hpp"
#include "delivery/mail_system.hpp"
#include "delivery/outbound_config.hpp"
#include "index/index_service.hpp"

namespace pecd::server {
namespace {

// Directory over the mailbox store.
class StoreDirectory final : public Directory {
public:
    explicit StoreDirectory(store::MailStore& m) : mail_(m) {}
    bool is_local_domain(std::string_view domain) override { return mail_.is_local_domain(domain); }
    smtp::RecipientVerdict local_recipient(std::string_view address) override {
        switch (mail_.may_receive(address)) {
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

class StoreMailServices final : public MailServices {
public:
    StoreMailServices(const config::Config& c, bool demo)
        : index_(open_index(c)),
          system_(options(c, index_.get())),
          mail_(system_.store()),
          directory_(mail_) {
        for (auto& d : c.domains)
            if (!mail_.is_local_domain(d)) mail_.add_domain(d);
        if (demo) create_demo(c);
    }
    Directory& directory() override { return directory_; }
    queue::MessageSink& sink() override { return system_.sink(); }
    void start() override {
        // The index refreshes on its own thread (local copy first, then the source), so a
        // slow or failing source never holds up the queue: lookups see the last good index.
        if (index_) index_->start();
        system_.start();
    }
    void stop() override {
        system_.stop();
        if (index_) index_->stop();
    }
    std::vector<std::pair<std::string, std::string>> demo_accounts() const override { return demo_; }

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
};

}  // namespace

std::unique_ptr<MailServices> open_mail_services(const config::Config& config, bool embedded_demo) {
    if (sodium_init() < 0) throw Error("libsodium could not be initialised");
    return std::make_unique<StoreMailServices>(config, embedded_demo);
}

}  // namespace pecd::server
