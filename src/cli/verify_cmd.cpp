// verify_cmd.cpp - `pecctl verify`: what a PEC message is and whether it holds up
//
//   pecctl verify FILE.eml [--json] [--trust CA.pem] [--crl FILE] [--index LDIF [--index-anchor PEM]]
//                          [--no-from-domain]
//       Prints the message type, the signer (subject, SHA-1), each verdict (signature,
//       chain, provider, from-domain, consistency), the daticert.xml fields and every
//       problem and inconsistency found. The chain is "not-checked" without --trust; the
//       provider and From-domain verdicts are "not-checked" without --index (a plain or
//       signed LDIF; with --index-anchor it must be signed by a certificate chaining to it).
//       Exit status: 0 for a valid, intact PEC message; 1 for anything else (ordinary
//       mail, a broken or forged PEC message); 2 for usage errors and unreadable files.
#include <CLI/CLI.hpp>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/output.hpp"
#include "cli/registry.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "crypto/cms.hpp"
#include "index/document.hpp"
#include "pec/verify.hpp"

namespace pecd::cli {
namespace {

using nlohmann::json;

struct VerifyArgs {
    std::string file;
    bool json_output = false;
    std::string trust;
    std::string crl;
    std::string index;
    std::string index_anchor;
    bool no_from_domain = false;
};

[[noreturn]] void usage_error(const std::string& message) {
    std::cerr << "pecctl verify: " << message << "\n";
    throw CLI::RuntimeError(2);
}

json daticert_json(const pec::Daticert& d) {
    json dest = json::array();
    for (auto& r : d.destinatari) dest.push_back({{"address", r.address}, {"tipo", pec::to_string(r.type)}});
    json j = {{"tipo", pec::to_string(d.tipo)},
              {"errore", pec::to_string(d.errore)},
              {"mittente", d.mittente},
              {"destinatari", dest},
              {"risposte", d.risposte},
              {"gestore_emittente", d.gestore_emittente},
              {"data", {{"giorno", d.data.giorno}, {"ora", d.data.ora}, {"zona", d.data.zona}}},
              {"identificativo", d.identificativo},
              {"ricezione", d.ricezione}};
    if (d.oggetto) j["oggetto"] = *d.oggetto;
    if (d.msgid) j["msgid"] = *d.msgid;
    if (d.ricevuta) j["ricevuta"] = pec::to_string(*d.ricevuta);
    if (d.consegna) j["consegna"] = *d.consegna;
    if (d.errore_esteso) j["errore_esteso"] = *d.errore_esteso;
    return j;
}

json check_json(const pec::Check& c) {
    return {{"verdict", pec::to_string(c.verdict)}, {"detail", c.detail}};
}

json to_json(const std::string& file, const pec::PecVerification& r) {
    json j = {{"file", file},
              {"type", pec::classification_name(r.classification)},
              {"valid", r.valid()},
              {"structure", crypto::to_string(r.facts.smime.status)},
              {"problems", r.classification.problems},
              {"inconsistencies", r.inconsistencies},
              {"warnings", r.warnings},
              {"verdicts",
               {{"signature", check_json(r.signature)},
                {"chain", check_json(r.chain)},
                {"provider", check_json(r.provider_check)},
                {"from_domain", check_json(r.from_domain)},
                {"consistency", check_json(r.consistency)}}},
              {"headers",
               {{"from", r.facts.headers.from},
                {"subject", r.facts.headers.subject},
                {"message_id", r.facts.headers.message_id}}}};
    if (!r.signer_subject.empty() || !r.signer_sha1.empty())
        j["signer"] = {{"subject", r.signer_subject}, {"sha1", r.signer_sha1}, {"digest", r.cms.digest_name}};
    if (r.provider) j["provider"] = {{"name", r.provider->name}, {"dn", r.provider->dn}};
    if (r.daticert) j["daticert"] = daticert_json(*r.daticert);
    if (!r.daticert_error.empty()) j["daticert_error"] = r.daticert_error;
    return j;
}

void print_list(const char* title, const std::vector<std::string>& items) {
    if (items.empty()) return;
    std::cout << title << ":\n";
    for (auto& s : items) std::cout << "  - " << s << "\n";
}

void print_text(const std::string& file, const pec::PecVerification& r) {
    auto row = [](const char* name, const std::string& value) {
        std::cout << std::left << std::setw(14) << name << value << "\n";
    };
    row("file:", file);
    row("type:", pec::classification_name(r.classification));
    row("structure:", std::string(crypto::to_string(r.facts.smime.status)));
    if (!r.signer_subject.empty()) row("signer:", r.signer_subject);
    if (!r.signer_sha1.empty()) row("signer-sha1:", r.signer_sha1);
    if (r.provider) row("provider:", r.provider->name + " (" + r.provider->dn + ")");
    auto verdict = [&](const char* name, const pec::Check& c) {
        row(name, std::string(pec::to_string(c.verdict)) + (c.detail.empty() ? "" : "  " + c.detail));
    };
    verdict("signature:", r.signature);
    verdict("chain:", r.chain);
    verdict("provider:", r.provider_check);
    verdict("from-domain:", r.from_domain);
    verdict("consistency:", r.consistency);
    if (r.daticert) {
        const auto& d = *r.daticert;
        std::cout << "daticert:\n";
        auto field = [](const char* name, const std::string& v) {
            std::cout << "  " << std::left << std::setw(19) << name << v << "\n";
        };
        field("tipo", std::string(pec::to_string(d.tipo)));
        field("errore", std::string(pec::to_string(d.errore)));
        field("mittente", d.mittente);
        for (auto& dst : d.destinatari)
            field("destinatari", dst.address + " (" + std::string(pec::to_string(dst.type)) + ")");
        field("risposte", d.risposte);
        if (d.oggetto) field("oggetto", *d.oggetto);
        field("gestore-emittente", d.gestore_emittente);
        field("data", d.data.giorno + " " + d.data.ora + " (" + d.data.zona + ")");
        field("identificativo", d.identificativo);
        if (d.msgid) field("msgid", *d.msgid);
        if (d.ricevuta) field("ricevuta", std::string(pec::to_string(*d.ricevuta)));
        if (d.consegna) field("consegna", *d.consegna);
        for (auto& rc : d.ricezione) field("ricezione", rc);
        if (d.errore_esteso) field("errore-esteso", *d.errore_esteso);
    } else if (!r.daticert_error.empty()) {
        row("daticert:", "does not parse: " + r.daticert_error);
    }
    print_list("problems", r.classification.problems);
    print_list("inconsistencies", r.inconsistencies);
    print_list("warnings", r.warnings);
    std::cout << "result: " << (r.valid() ? "VALID PEC message" : "NOT a valid PEC message") << "\n";
}

void run_verify(const VerifyArgs& a, const std::vector<std::string>& extras) {
    if (!extras.empty()) usage_error("unexpected argument " + extras.front());
    if (a.file.empty()) usage_error("FILE is required (the message to verify, RFC 5322 / .eml)");
    if (!a.crl.empty() && a.trust.empty()) usage_error("--crl needs --trust");
    if (!a.index_anchor.empty() && a.index.empty()) usage_error("--index-anchor needs --index");
    auto raw = fs::read_file(a.file);  // pecd::Error -> exit status 2
    std::optional<crypto::TrustStore> trust;
    if (!a.trust.empty()) {
        trust = crypto::TrustStore::from_pem_file(a.trust);
        if (!a.crl.empty()) trust->add_crl_file(a.crl);
    }
    std::shared_ptr<const index::ProviderLookup> provider_index;
    if (!a.index.empty()) provider_index = index::load_index_file(a.index, a.index_anchor);
    pec::VerifyOptions o;
    o.trust = trust ? &*trust : nullptr;
    o.index = provider_index.get();
    o.check_from_domain = !a.no_from_domain;
    auto r = pec::verify_message(raw, o);
    if (a.json_output)
        std::cout << json_text(to_json(a.file, r)) << "\n";
    else
        print_text(a.file, r);
    if (!r.valid()) throw CLI::RuntimeError(1);
}

void register_verify_commands(CLI::App& app) {
    auto args = std::make_shared<VerifyArgs>();
    auto* cmd =
        app.add_subcommand("verify", "Verify a PEC message: type, signature, chain, daticert consistency");
    cmd->add_option("file", args->file, "The message (RFC 5322, .eml)");
    cmd->add_flag("--json", args->json_output, "Machine-readable output");
    cmd->add_option("--trust", args->trust, "Trust anchors for the signer chain (PEM CA certificates)");
    cmd->add_option("--crl", args->crl, "Certificate revocation list (PEM or DER); needs --trust");
    cmd->add_option("--index", args->index,
                    "Provider index (plain or signed LDIF) for the provider verdicts");
    cmd->add_option("--index-anchor", args->index_anchor,
                    "Trust anchor the signed index must chain to (PEM)");
    cmd->add_flag("--no-from-domain", args->no_from_domain,
                  "With an index: do not require the From: domain to belong to the signer's provider");
    // Extras are reported by run_verify so that usage errors exit with status 2.
    cmd->allow_extras();
    cmd->callback([args, cmd] { run_verify(*args, cmd->remaining()); });
}

}  // namespace

static const bool registered = add_group(&register_verify_commands);

}  // namespace pecd::cli
