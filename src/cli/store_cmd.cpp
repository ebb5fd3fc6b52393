// store_cmd.cpp - `pecctl domain`, `pecctl mailbox`, `pecctl queue`: the store and the queue
//
//   pecctl domain add NAME [--route ROUTE] --data-dir DIR    ROUTE: local (default),
//          lmtp:HOST:PORT, lmtp:unix:/PATH, smtp:HOST:PORT
//   pecctl domain route NAME ROUTE --data-dir DIR
//   pecctl domain list --data-dir DIR [--json]
//   pecctl mailbox add ADDRESS [--quota BYTES] [--kind standard|receive-only]
//          [--pec-only] [--password-stdin] --data-dir DIR
//   pecctl mailbox passwd ADDRESS --data-dir DIR            password from stdin (or a
//          prompt without echo on a terminal); never on the command line, never printed
//   pecctl mailbox list [--domain D] --data-dir DIR [--json]
//   pecctl mailbox show ADDRESS --data-dir DIR [--json]
//   pecctl mailbox state ADDRESS active|deactivated|closed --data-dir DIR
//   pecctl mailbox quota ADDRESS BYTES --data-dir DIR       messages waiting for room
//          are delivered at their next retry
//   pecctl mailbox read ADDRESS [ID] --data-dir DIR         without ID: the list of
//          messages; with ID: the message's bytes, unmodified, on stdout
//   pecctl mailbox check --data-dir DIR [--remove-orphans] [--grace SECONDS] [--json]
//          every stored message against its file (store/store_check.hpp); exit 1 when
//          something is wrong (after a restore, say)
//   pecctl queue list --data-dir DIR [--json]
//   pecctl queue show ID --data-dir DIR [--json]
//   pecctl queue retry (ID... | --all) --data-dir DIR       pending recipients due now
// The database is DIR/pecd.db, or with --config FILE the [store] of pecd's configuration
// (PostgreSQL, shared blob and spool directories); these commands may run beside a running pecd (they never
// run the queue's crash recovery). Errors exit with status 2 and a precise message.
#include <termios.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/output.hpp"
#include "cli/registry.hpp"
#include "config/config.hpp"
#include "core/error.hpp"
#include "delivery/mail_system.hpp"
#include "queue/dsn.hpp"
#include "store/store_check.hpp"

namespace pecd::cli {
namespace {

using nlohmann::json;

// The store of a data directory: DIR/pecd.db, or, with --config, the database, blob and
// spool directories of the configuration's [store] (PostgreSQL for several nodes).
std::unique_ptr<delivery::MailSystem> open_system(const std::string& data_dir, const std::string& config_file) {
    if (data_dir.empty()) throw Error("--data-dir is required");
    if (!std::filesystem::is_directory(data_dir)) throw Error("no data directory " + data_dir);
    delivery::MailSystemOptions o;
    o.data_dir = data_dir;
    if (!config_file.empty()) {
        auto c = config::load_config(config_file);
        o.database = {c.store.backend, c.store.path.string(), c.store.conninfo, c.store.password_file.string(), 2};
        o.blob_dir = c.store.blob_dir;
        o.spool_dir = c.store.spool_dir;
    }
    o.spool.recover = false;
    o.spool.sync_threads = 1;
    o.runner.workers = 1;
    return std::make_unique<delivery::MailSystem>(o);
}

std::string read_password(const std::string& prompt) {
    std::string pw;
    if (::isatty(STDIN_FILENO)) {
        std::cerr << prompt << std::flush;
        termios old{};
        ::tcgetattr(STDIN_FILENO, &old);
        termios quiet = old;
        quiet.c_lflag &= static_cast<tcflag_t>(~ECHO);
        ::tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
        std::getline(std::cin, pw);
        ::tcsetattr(STDIN_FILENO, TCSANOW, &old);
        std::cerr << "\n";
    } else {
        std::getline(std::cin, pw);
    }
    while (!pw.empty() && (pw.back() == '\r' || pw.back() == '\n')) pw.pop_back();
    if (pw.empty()) throw Error("empty password (give it on stdin)");
    return pw;
}

std::string iso(TimePoint t) {
    return queue::rfc5322_date(t);
}

json mailbox_json(const store::MailboxInfo& m) {
    json j{{"address", m.address},
           {"kind", std::string(to_string(m.kind))},
           {"state", std::string(to_string(m.state))},
           {"quota_bytes", m.quota_bytes},
           {"used_bytes", m.used_bytes},
           {"messages", m.message_count},
           {"accepts_ordinary_mail", m.accepts_ordinary_mail},
           {"has_password", m.has_password},
           {"created_at", iso(m.created_at)}};
    if (m.deactivated_at) j["deactivated_at"] = iso(*m.deactivated_at);
    return j;
}

std::string_view state_text(queue::RecipientState s) {
    switch (s) {
        case queue::RecipientState::pending:
            return "pending";
        case queue::RecipientState::delivered:
            return "delivered";
        case queue::RecipientState::failed:
            return "failed";
    }
    return "pending";
}

json queue_json(const queue::QueuedMessage& m) {
    json rcpts = json::array();
    for (const auto& r : m.recipients)
        rcpts.push_back({{"address", r.address},
                         {"state", std::string(state_text(r.state))},
                         {"attempts", r.attempts},
                         {"next_attempt", iso(r.next_attempt)},
                         {"last_error", r.last_error}});
    return {{"id", m.id},
            {"from", m.envelope.mail_from},
            {"size", m.size},
            {"received_at", iso(m.envelope.received_at)},
            {"dsn", m.is_dsn},
            {"client_ip", m.envelope.session.client_ip},
            {"auth_user", m.envelope.session.auth_user},
            {"recipients", rcpts}};
}

struct Args {
    std::string data_dir, config;
    std::string name, route = "local", address, kind = "standard", state, domain, id;
    std::uint64_t quota = 1ull << 30;
    std::int64_t message_id = -1;
    bool pec_only = false, password_stdin = false, json_output = false, remove_orphans = false, all = false;
    std::vector<std::string> ids;
    std::int64_t grace_seconds = 3600;
};

void add_data_dir(CLI::App* c, Args& a) {
    c->add_option("--data-dir", a.data_dir, "pecd's data directory (holds pecd.db)")->required();
    c->add_option("--config", a.config, "pecd's configuration file: use its [store] (e.g. PostgreSQL)");
}

void register_domain(CLI::App& app, std::shared_ptr<Args> a) {
    auto* domain = app.add_subcommand("domain", "local domains and their routes");
    domain->require_subcommand(1);
    auto* add = domain->add_subcommand("add", "add a local domain");
    add->add_option("name", a->name, "domain name")->required();
    add->add_option("--route", a->route, "local | lmtp:HOST:PORT | lmtp:unix:/PATH | smtp:HOST:PORT");
    add_data_dir(add, *a);
    add->callback([a] {
        auto route = store::parse_route(a->route);
        open_system(a->data_dir, a->config)->store().add_domain(a->name, route);
        std::cout << "domain " << a->name << " added (" << store::to_string(route) << ")\n";
    });
    auto* route = domain->add_subcommand("route", "change where a domain's mail goes");
    route->add_option("name", a->name, "domain name")->required();
    route->add_option("route", a->route, "local | lmtp:HOST:PORT | lmtp:unix:/PATH | smtp:HOST:PORT")
        ->required();
    add_data_dir(route, *a);
    route->callback([a] {
        auto r = store::parse_route(a->route);
        open_system(a->data_dir, a->config)->store().set_route(a->name, r);
        std::cout << "domain " << a->name << " now routed to " << store::to_string(r) << "\n";
    });
    auto* list = domain->add_subcommand("list", "list local domains");
    add_data_dir(list, *a);
    list->add_flag("--json", a->json_output, "JSON output");
    list->callback([a] {
        auto domains = open_system(a->data_dir, a->config)->store().domains();
        if (a->json_output) {
            json j = json::array();
            for (auto& d : domains) j.push_back({{"name", d.name}, {"route", store::to_string(d.route)}});
            std::cout << json_text(j) << "\n";
            return;
        }
        for (auto& d : domains) std::cout << d.name << "\t" << store::to_string(d.route) << "\n";
    });
}

void register_mailbox(CLI::App& app, std::shared_ptr<Args> a) {
    auto* mailbox = app.add_subcommand("mailbox", "mailboxes: create, passwords, lifecycle, reading");
    mailbox->require_subcommand(1);

    auto* add = mailbox->add_subcommand("add", "create a mailbox");
    add->add_option("address", a->address, "mailbox address")->required();
    add->add_option("--quota", a->quota, "quota in bytes (default 1 GiB)");
    add->add_option("--kind", a->kind, "standard | receive-only");
    add->add_flag("--pec-only", a->pec_only, "accept only PEC messages, no ordinary mail");
    add->add_flag("--password-stdin", a->password_stdin, "set the password read from stdin");
    add_data_dir(add, *a);
    add->callback([a] {
        auto sys = open_system(a->data_dir, a->config);
        store::NewMailbox m{a->address, a->quota, store::parse_mailbox_kind(a->kind), !a->pec_only};
        std::string pw = a->password_stdin ? read_password("Password: ") : std::string();
        sys->store().add_mailbox(m);
        if (!pw.empty()) sys->store().set_password(a->address, pw);
        std::cout << "mailbox " << store::normalize_address(a->address) << " created\n";
    });

    auto* passwd = mailbox->add_subcommand("passwd", "set a mailbox password (read from stdin)");
    passwd->add_option("address", a->address, "mailbox address")->required();
    add_data_dir(passwd, *a);
    passwd->callback([a] {
        auto sys = open_system(a->data_dir, a->config);
        if (!sys->store().mailbox(a->address)) throw Error("no mailbox " + a->address);
        sys->store().set_password(a->address, read_password("New password: "));
        std::cout << "password of " << store::normalize_address(a->address) << " changed\n";
    });

    auto* list = mailbox->add_subcommand("list", "list mailboxes");
    list->add_option("--domain", a->domain, "only this domain");
    list->add_flag("--json", a->json_output, "JSON output");
    add_data_dir(list, *a);
    list->callback([a] {
        auto boxes = open_system(a->data_dir, a->config)->store().mailboxes(a->domain);
        if (a->json_output) {
            json j = json::array();
            for (auto& m : boxes) j.push_back(mailbox_json(m));
            std::cout << json_text(j) << "\n";
            return;
        }
        for (auto& m : boxes)
            std::cout << m.address << "\t" << to_string(m.kind) << "\t" << to_string(m.state) << "\t"
                      << m.message_count << " messages\t" << m.used_bytes << "/" << m.quota_bytes
                      << " bytes\n";
    });

    auto* show = mailbox->add_subcommand("show", "one mailbox in detail");
    show->add_option("address", a->address, "mailbox address")->required();
    show->add_flag("--json", a->json_output, "JSON output");
    add_data_dir(show, *a);
    show->callback([a] {
        auto m = open_system(a->data_dir, a->config)->store().mailbox(a->address);
        if (!m) throw Error("no mailbox " + a->address);
        auto j = mailbox_json(*m);
        if (a->json_output) {
            std::cout << json_text(j) << "\n";
            return;
        }
        for (auto& [k, v] : j.items())
            std::cout << k << ": " << (v.is_string() ? v.get<std::string>() : json_text(v, -1)) << "\n";
    });

    auto* state = mailbox->add_subcommand("state", "activate, deactivate or close a mailbox");
    state->add_option("address", a->address, "mailbox address")->required();
    state->add_option("state", a->state, "active | deactivated | closed")->required();
    add_data_dir(state, *a);
    state->callback([a] {
        open_system(a->data_dir, a->config)->store().set_state(a->address, store::parse_mailbox_state(a->state));
        std::cout << "mailbox " << store::normalize_address(a->address) << " is " << a->state << "\n";
    });

    auto* quota = mailbox->add_subcommand("quota", "change a mailbox's quota");
    quota->add_option("address", a->address, "mailbox address")->required();
    quota->add_option("bytes", a->quota, "the new quota in bytes")->required();
    add_data_dir(quota, *a);
    quota->callback([a] {
        open_system(a->data_dir, a->config)->store().set_quota(a->address, a->quota);
        std::cout << "mailbox " << store::normalize_address(a->address) << " has a quota of " << a->quota
                  << " bytes\n";
    });

    auto* read = mailbox->add_subcommand("read", "list a mailbox's messages, or print one unmodified");
    read->add_option("address", a->address, "mailbox address")->required();
    read->add_option("id", a->message_id, "message id (from the list)");
    read->add_flag("--json", a->json_output, "JSON output (list)");
    add_data_dir(read, *a);
    read->callback([a] {
        auto sys = open_system(a->data_dir, a->config);
        if (a->message_id >= 0) {
            auto bytes = sys->store().read_message(a->address, a->message_id);
            std::cout.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
            std::cout.flush();
            return;
        }
        auto msgs = sys->store().messages(a->address);
        if (a->json_output) {
            json j = json::array();
            for (auto& m : msgs)
                j.push_back({{"id", m.id},
                             {"from", m.mail_from},
                             {"size", m.size},
                             {"received_at", iso(m.received_at)}});
            std::cout << json_text(j) << "\n";
            return;
        }
        for (auto& m : msgs)
            std::cout << m.id << "\t" << iso(m.received_at) << "\t<" << terminal_text(m.mail_from) << ">\t"
                      << m.size << " bytes\n";
    });
}

void print_check(const store::StoreCheckReport& r, bool remove_orphans) {
    for (const auto& p : r.missing)
        std::cout << "missing: message " << p.message_id << " of " << p.mailbox << ": no file " << p.blob_key
                  << "\n";
    for (const auto& p : r.wrong_size)
        std::cout << "wrong size: message " << p.message_id << " of " << p.mailbox << ": " << p.blob_key
                  << " has " << p.actual_size << " bytes, the row says " << p.expected_size << "\n";
    for (const auto& c : r.counters)
        std::cout << "counters: " << c.mailbox << " records " << c.recorded_messages << " messages / "
                  << c.recorded_bytes << " bytes, its rows are " << c.actual_messages << " / "
                  << c.actual_bytes << "\n";
    for (const auto& o : r.orphans)
        std::cout << (remove_orphans ? "removed orphan: " : "orphan: ") << o << "\n";
    std::cout << r.messages << " messages, " << r.files << " files; " << r.missing.size() << " missing, "
              << r.wrong_size.size() << " wrong size, " << r.counters.size() << " mailbox counters off, "
              << r.orphans.size() << " orphans" << (remove_orphans ? " (removed)" : "") << ", "
              << r.young_unnamed << " files too young to judge\n";
}

json check_json(const store::StoreCheckReport& r) {
    auto problems = [](const std::vector<store::MessageProblem>& list, bool with_file_size) {
        json out = json::array();
        for (const auto& p : list) {
            json j{{"mailbox", p.mailbox},
                   {"message_id", p.message_id},
                   {"blob_key", p.blob_key},
                   {"size", p.expected_size}};
            if (with_file_size) j["file_size"] = p.actual_size;  // 0 for a file cut to nothing
            out.push_back(j);
        }
        return out;
    };
    json counters = json::array();
    for (const auto& c : r.counters)
        counters.push_back({{"mailbox", c.mailbox},
                            {"recorded_messages", c.recorded_messages},
                            {"actual_messages", c.actual_messages},
                            {"recorded_bytes", c.recorded_bytes},
                            {"actual_bytes", c.actual_bytes}});
    return {{"clean", r.clean()},
            {"messages", r.messages},
            {"files", r.files},
            {"missing", problems(r.missing, false)},
            {"wrong_size", problems(r.wrong_size, true)},
            {"counters", counters},
            {"orphans", r.orphans},
            {"orphans_removed", r.orphans_removed},
            {"young_unnamed", r.young_unnamed}};
}

void register_store_check(CLI::App* mailbox, std::shared_ptr<Args> a) {
    auto* check = mailbox->add_subcommand(
        "check", "every stored message against its file: missing, wrong size, counters, orphan files");
    check->add_flag("--remove-orphans", a->remove_orphans,
                    "remove files no message names (older than --grace)");
    check->add_option("--grace", a->grace_seconds, "seconds a file must be unchanged to count as an orphan")
        ->check(CLI::PositiveNumber);
    check->add_flag("--json", a->json_output, "JSON output");
    add_data_dir(check, *a);
    check->callback([a] {
        auto sys = open_system(a->data_dir, a->config);
        store::StoreCheckOptions o;
        o.grace = std::chrono::seconds(a->grace_seconds);
        o.remove_orphans = a->remove_orphans;
        auto r = store::check_store(sys->database(), sys->blobs(), std::chrono::system_clock::now(), o);
        if (a->json_output)
            std::cout << json_text(check_json(r)) << "\n";
        else
            print_check(r, a->remove_orphans);
        if (!r.clean()) throw CLI::RuntimeError(1);
    });
}

void register_queue(CLI::App& app, std::shared_ptr<Args> a) {
    auto* q = app.add_subcommand("queue", "the delivery queue");
    q->require_subcommand(1);
    auto* list = q->add_subcommand("list", "queued messages and their recipients");
    list->add_flag("--json", a->json_output, "JSON output");
    add_data_dir(list, *a);
    list->callback([a] {
        auto msgs = open_system(a->data_dir, a->config)->spool().list(100000);
        if (a->json_output) {
            json j = json::array();
            for (auto& m : msgs) j.push_back(queue_json(m));
            std::cout << json_text(j) << "\n";
            return;
        }
        for (auto& m : msgs) {
            std::cout << m.id << "\t" << m.size << " bytes\t" << iso(m.envelope.received_at) << "\t<"
                      << terminal_text(m.envelope.mail_from) << ">\n";
            for (auto& r : m.recipients)
                std::cout << "\t<" << terminal_text(r.address) << "> " << state_text(r.state) << ", "
                          << r.attempts << " attempts"
                          << (r.last_error.empty() ? "" : ": " + terminal_text(r.last_error)) << "\n";
        }
        std::cout << msgs.size() << " message(s) queued\n";
    });
    auto* show = q->add_subcommand("show", "one queued message");
    show->add_option("id", a->id, "queue id")->required();
    show->add_flag("--json", a->json_output, "JSON output");
    add_data_dir(show, *a);
    show->callback([a] {
        auto m = open_system(a->data_dir, a->config)->spool().load(a->id);
        if (!m) throw Error("no queued message " + a->id);
        std::cout << json_text(queue_json(*m)) << "\n";
    });
    auto* retry =
        q->add_subcommand("retry", "make pending recipients due now (after a destination came back)");
    retry->add_option("ids", a->ids, "queue ids");
    retry->add_flag("--all", a->all, "every queued message");
    add_data_dir(retry, *a);
    retry->callback([a] {
        if (a->ids.empty() != a->all) throw Error("name the queued messages, or give --all (not both)");
        auto moved = open_system(a->data_dir, a->config)->spool().retry_now(a->ids);
        std::cout << moved << " recipient(s) due now; pecd retries them within a second\n";
    });
}

void register_store_commands(CLI::App& app) {
    auto args = std::make_shared<Args>();
    register_domain(app, args);
    register_mailbox(app, args);
    register_store_check(app.get_subcommand("mailbox"), args);
    register_queue(app, args);
}

}  // namespace

static const bool registered = add_group(&register_store_commands);

}  // namespace pecd::cli
