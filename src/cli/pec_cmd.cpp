// pec_cmd.cpp - `pecctl pec`: a message's history, and demo provider identities
//
//   pecctl pec history MSGID --data-dir DIR [--config FILE] [--json]
//       every legal-log event of one message (PEC or client message id), oldest first:
//       time, event, recipients, outcome and the ids of the messages each event
//       generated (receipts, envelopes, notices). Read only. With --config, the database
//       of its [store] (the PostgreSQL shared by several nodes), as `pecctl log` reads it.
//   pecctl pec demo-identity --ca-dir DIR --domain DOMAIN --name NAME --out DIR
//       a demo CA in --ca-dir (created once) and a PEC signing certificate for
//       posta-certificata@DOMAIN in --out (signing.pem, signing.key): what the embedded
//       default makes for itself, for trying a network of several providers on one
//       machine (they share the CA as trust anchor). Prints the paths as JSON.
// Exit status: 0 ok, 2 error (message on stderr).
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/output.hpp"
#include "cli/registry.hpp"
#include "core/error.hpp"
#include "log/event.hpp"
#include "log/legal_log.hpp"
#include "log/log_commands.hpp"
#include "provider/demo.hpp"
#include "store/database.hpp"

namespace {

using nlohmann::json;
using pecd::cli::json_text;
using pecd::cli::terminal_text;

struct HistoryArgs {
    std::string message_id, data_dir, config;
    bool json_output = false;
};

struct IdentityArgs {
    std::string ca_dir, domain, name, out;
};

std::string recipients_text(const pecd::log::Event& e) {
    std::string out;
    for (const auto& r : e.recipients) {
        if (!out.empty()) out += ", ";
        out += r.address + (r.certified ? " (certificato)" : " (esterno)");
    }
    return out;
}

void run_history(const HistoryArgs& a) {
    if (a.message_id.empty()) throw pecd::Error("give a PEC message id or a client Message-ID");
    auto db = pecd::log::open_log_database({}, a.data_dir, a.config);
    pecd::log::LegalLog log(*db);
    pecd::log::SearchQuery q;
    q.message_id = a.message_id;
    auto records = log.search(q);
    if (records.empty()) {
        // The log keeps a client's Message-ID as written, in angle brackets, and PEC ids
        // bare; either is found whether or not the operator typed the brackets.
        const auto& id = a.message_id;
        bool bracketed = id.size() > 2 && id.front() == '<' && id.back() == '>';
        q.message_id = bracketed ? id.substr(1, id.size() - 2) : "<" + id + ">";
        records = log.search(q);
    }
    if (records.empty()) throw pecd::Error("no legal-log record names message " + a.message_id);
    json list = json::array();
    for (const auto& r : records) {
        auto p = pecd::log::parse_record(r.record);
        const auto& e = p.event;
        if (a.json_output) {
            json j = json::parse(r.record);
            list.push_back(j);
            continue;
        }
        std::cout << pecd::log::format_utc(e.time) << "  " << pecd::log::to_string(e.kind) << "  "
                  << (e.outcome.empty() ? "-" : terminal_text(e.outcome)) << "\n";
        if (!e.recipients.empty())
            std::cout << "    recipients: " << terminal_text(recipients_text(e)) << "\n";
        for (const auto& [k, v] : e.details)
            if (!v.empty()) std::cout << "    " << k << ": " << terminal_text(v) << "\n";
        for (const auto& g : e.generated_ids) std::cout << "    generated: <" << terminal_text(g) << ">\n";
    }
    if (a.json_output) std::cout << json_text(list) << "\n";
}

void run_identity(const IdentityArgs& a) {
    auto id = pecd::provider::ensure_demo_signing(a.ca_dir, a.out, a.domain, a.name);
    std::cout << json_text(json{{"ca_certificate", id.ca_certificate.string()},
                                {"certificate", id.certificate.string()},
                                {"key", id.key.string()}})
              << "\n";
}

void register_pec_commands(CLI::App& app) {
    auto* group = app.add_subcommand("pec", "PEC messages: history; demo provider identities");
    group->require_subcommand(1);

    auto h = std::make_shared<HistoryArgs>();
    auto* history = group->add_subcommand("history", "every legal-log event of one message");
    history->add_option("message-id", h->message_id, "PEC message id or the client's Message-ID")->required();
    history->add_option("--data-dir", h->data_dir, "pecd's data directory (holds pecd.db)")->required();
    history->add_option("--config", h->config, "pecd's configuration file: the database of its [store]");
    history->add_flag("--json", h->json_output, "the canonical records as JSON");
    history->callback([h] { run_history(*h); });

    auto i = std::make_shared<IdentityArgs>();
    auto* identity = group->add_subcommand("demo-identity", "a demo CA and a PEC signing certificate");
    identity->add_option("--ca-dir", i->ca_dir, "directory of the demo CA (created once)")->required();
    identity->add_option("--domain", i->domain, "provider mail domain (posta-certificata@DOMAIN)")->required();
    identity->add_option("--name", i->name, "provider name")->required();
    identity->add_option("--out", i->out, "directory for signing.pem and signing.key")->required();
    identity->callback([i] { run_identity(*i); });
}

const bool registered = pecd::cli::add_group(&register_pec_commands);

}  // namespace
