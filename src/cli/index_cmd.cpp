// index_cmd.cpp - `pecctl index`: publish this provider's record, query and check an index
//
//   pecctl index publish --name NAME --mail-receipt ADDR --domain DOM... --certificate PEM
//                        (--key PEM | --pkcs11-module SO --pkcs11-token T --pkcs11-key-label L)
//                        [--extra-certificate PEM...] [--url HTTPS-URL] [--description TEXT]
//                        --out FILE.p7m [--ldif-out FILE.ldif]
//       Writes the provider's LDIF and signs it (CMS attached, DER) with the provider key.
//       The PKCS#11 PIN is read from the environment variable PECD_PKCS11_PIN.
//   pecctl index show DOMAIN|HASH --index FILE [--trust-anchor PEM] [--json]
//       The provider record for a mail domain or a certificate SHA-1 (40 hex digits);
//       exit status 1 when nothing matches.
//   pecctl index check FILE [--trust-anchor PEM] [--json]
//       Validates a plain or signed LDIF: signature (with --trust-anchor), syntax, records;
//       prints counts and every problem; exit status 0 when clean, 1 otherwise.
#include <openssl/err.h>
#include <openssl/pem.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/output.hpp"
#include "cli/registry.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/strings.hpp"
#include "crypto/cms.hpp"
#include "index/document.hpp"
#include "index/publish.hpp"

namespace pecd::cli {
namespace {

using nlohmann::json;

struct PublishArgs {
    std::string name, mail_receipt, url, description, certificate, key, out, ldif_out;
    std::string pkcs11_module, pkcs11_token, pkcs11_key_label;
    std::vector<std::string> domains, extra_certificates;
};

std::vector<crypto::X509Ptr> read_pem_certificates(const std::string& path) {
    auto text = fs::read_file(path);
    std::unique_ptr<BIO, decltype(&BIO_free)> in(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())),
                                                 &BIO_free);
    std::vector<crypto::X509Ptr> out;
    while (X509* x = PEM_read_bio_X509(in.get(), nullptr, nullptr, nullptr))
        out.emplace_back(x, crypto::X509Free{});
    ERR_clear_error();
    if (out.empty()) throw Error("no PEM certificate in " + path);
    return out;
}

void run_publish(const PublishArgs& a) {
    crypto::KeySource source;
    source.certificate = a.certificate;
    source.key = a.key;
    source.pkcs11_module = a.pkcs11_module;
    source.pkcs11_token = a.pkcs11_token;
    source.pkcs11_key_label = a.pkcs11_key_label;
    if (const char* pin = std::getenv("PECD_PKCS11_PIN")) source.pkcs11_pin = pin;
    if (a.key.empty() && a.pkcs11_module.empty())
        throw Error("publish: --key or --pkcs11-module is required");
    auto identity = crypto::load_identity(source);
    index::PublishSpec spec;
    spec.provider_name = a.name;
    spec.mail_receipt = a.mail_receipt;
    spec.domains = a.domains;
    spec.ldif_url = a.url;
    spec.description = a.description;
    spec.certificates.push_back(identity.certificate);
    for (auto& path : a.extra_certificates)
        for (auto& c : read_pem_certificates(path)) spec.certificates.push_back(c);
    auto ldif = index::provider_ldif(spec);
    auto signed_ldif = index::sign_ldif(identity, ldif);
    fs::write_file_durable(a.out, signed_ldif);
    if (!a.ldif_out.empty()) fs::write_file_durable(a.ldif_out, ldif);
    std::cout << "published " << a.out << " (" << signed_ldif.size() << " bytes, signed by "
              << crypto::certificate_subject(identity.certificate.get()) << ")\n";
    for (auto& c : spec.certificates)
        std::cout << "  providerCertificateHash: " << crypto::certificate_sha1_hex(c.get()) << "\n";
}

std::string certificate_summary(const std::string& der) {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
    std::unique_ptr<X509, crypto::X509Free> x(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
    if (!x) return "(unreadable)";
    return crypto::certificate_sha1_hex(x.get()) + " " + crypto::certificate_subject(x.get());
}

json provider_json(const index::Provider& p) {
    json certs = json::array();
    for (auto& der : p.certificates_der) certs.push_back(certificate_summary(der));
    return {{"dn", p.dn},
            {"providerName", p.name},
            {"providerUnit", p.unit},
            {"mailReceipt", p.mail_receipt},
            {"managedDomains", p.domains},
            {"providerCertificateHash", p.certificate_hashes},
            {"certificates", certs},
            {"LDIFLocationURL", p.ldif_url},
            {"description", p.description}};
}

struct ShowArgs {
    std::string query, index_file, trust_anchor;
    bool json_output = false;
};

index::LoadedIndex load(const std::string& file, const std::string& trust_anchor) {
    crypto::TrustStore trust;
    index::DocumentPolicy policy;
    if (!trust_anchor.empty()) {
        trust = crypto::TrustStore::from_pem_file(trust_anchor);
        policy.trust = &trust;
        policy.require_signature = true;
    }
    return index::load_document(fs::read_file(file), policy);
}

bool is_hash(std::string_view q) {
    return q.size() == 40 && std::all_of(q.begin(), q.end(),
                                         [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

void run_show(const ShowArgs& a) {
    auto loaded = load(a.index_file, a.trust_anchor);
    bool hash = is_hash(a.query);
    auto p = hash ? loaded.index->by_hash(a.query) : loaded.index->by_domain(a.query);
    if (!p) {
        std::cerr << "pecctl: " << a.query << ": "
                  << (hash ? "no provider publishes this certificate hash" : "not a PEC domain in this index")
                  << "\n";
        throw CLI::RuntimeError(1);
    }
    auto j = provider_json(*p);
    if (a.json_output) {
        std::cout << json_text(j) << "\n";
        return;
    }
    for (auto& [k, v] : j.items()) {
        if (v.is_array()) {
            for (auto& item : v) std::cout << k << ": " << item.get<std::string>() << "\n";
        } else if (!v.get<std::string>().empty()) {
            std::cout << k << ": " << v.get<std::string>() << "\n";
        }
    }
}

struct CheckArgs {
    std::string file, trust_anchor;
    bool json_output = false;
};

void run_check(const CheckArgs& a) {
    json j = {{"file", a.file}};
    int status = 0;
    try {
        auto loaded = load(a.file, a.trust_anchor);
        auto& c = loaded.index->counts();
        j["signed"] = loaded.signed_document;
        j["signer"] = loaded.signer;
        j["providers"] = c.providers;
        j["units"] = c.units;
        j["domains"] = c.domains;
        j["certificates"] = c.certificates;
        j["problems"] = json::array();
        for (auto& p : loaded.problems) j["problems"].push_back(p.describe());
        status = loaded.problems.empty() ? 0 : 1;
    } catch (const Error& e) {
        j["error"] = e.what();
        status = 1;
    }
    j["verdict"] = status == 0 ? "ok" : "fail";
    if (a.json_output) {
        std::cout << json_text(j) << "\n";
    } else if (j.contains("error")) {
        std::cout << a.file << ": refused: " << j["error"].get<std::string>() << "\n";
    } else {
        std::cout << a.file << ": "
                  << (j["signed"].get<bool>() ? "signed by " + j["signer"].get<std::string>()
                                              : std::string("not signed"))
                  << "\n  providers: " << j["providers"] << "\n  units: " << j["units"]
                  << "\n  domains: " << j["domains"] << "\n  certificates: " << j["certificates"]
                  << "\n  problems: " << j["problems"].size() << "\n";
        for (auto& p : j["problems"]) std::cout << "  problem: " << p.get<std::string>() << "\n";
    }
    if (status != 0) throw CLI::RuntimeError(status);
}

void register_index_commands(CLI::App& app) {
    auto* group = app.add_subcommand("index", "Provider index: publish our record, query and check an index");
    group->require_subcommand(1);

    auto pa = std::make_shared<PublishArgs>();
    auto* pub = group->add_subcommand("publish", "Write and sign this provider's LDIF record (.p7m)");
    pub->add_option("--name", pa->name, "providerName")->required();
    pub->add_option("--mail-receipt", pa->mail_receipt, "service mailbox (mailReceipt)")->required();
    pub->add_option("--domain", pa->domains, "managed PEC domain (repeatable)")->required();
    pub->add_option("--certificate", pa->certificate, "signing certificate (PEM, chain after it)")
        ->required();
    pub->add_option("--key", pa->key, "signing key (PEM)");
    pub->add_option("--pkcs11-module", pa->pkcs11_module, "PKCS#11 module for an HSM key");
    pub->add_option("--pkcs11-token", pa->pkcs11_token, "PKCS#11 token label");
    pub->add_option("--pkcs11-key-label", pa->pkcs11_key_label, "PKCS#11 key label");
    pub->add_option("--extra-certificate", pa->extra_certificates, "another published certificate (renewal)");
    pub->add_option("--url", pa->url, "LDIFLocationURL (https://)");
    pub->add_option("--description", pa->description, "description");
    pub->add_option("--out", pa->out, "signed LDIF to write (DER .p7m)")->required();
    pub->add_option("--ldif-out", pa->ldif_out, "also write the plain LDIF here");
    pub->callback([pa] { run_publish(*pa); });

    auto sa = std::make_shared<ShowArgs>();
    auto* show = group->add_subcommand("show", "Show the provider of a domain or certificate hash");
    show->add_option("query", sa->query, "mail domain or certificate SHA-1 (hex)")->required();
    show->add_option("--index", sa->index_file, "index file (LDIF or signed .p7m)")->required();
    show->add_option("--trust-anchor", sa->trust_anchor, "require a signature chaining to this PEM");
    show->add_flag("--json", sa->json_output, "JSON output");
    show->callback([sa] { run_show(*sa); });

    auto ca = std::make_shared<CheckArgs>();
    auto* check = group->add_subcommand("check", "Validate an index file; counts and problems");
    check->add_option("file", ca->file, "LDIF or signed .p7m")->required();
    check->add_option("--trust-anchor", ca->trust_anchor, "require a signature chaining to this PEM");
    check->add_flag("--json", ca->json_output, "JSON output");
    check->callback([ca] { run_check(*ca); });
}

const bool registered = add_group(&register_index_commands);

}  // namespace
}  // namespace pecd::cli
