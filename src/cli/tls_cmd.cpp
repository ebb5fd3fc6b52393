// tls_cmd.cpp - `pecctl tls-check` and `pecctl cert`: TLS diagnostics and certificate tools
//
//   pecctl tls-check HOST[:PORT] [--starttls|--implicit] [--name NAME] [--ca FILE] [--json]
//       What a receiving domain sees of a mail server: banner, EHLO, STARTTLS, handshake,
//       protocol, cipher, certificate names against the asked and the banner host name,
//       chain completeness up to a trusted root, days to expiry. One verdict per check;
//       exit status 0 when no check failed, 1 otherwise (2: usage or local error).
//       Port 465 means implicit TLS unless --starttls is given.
//   pecctl cert self-signed --name NAME... [--ip IP...] [--key-type ec|rsa] [--days N]
//                           --out CERT --key-out KEY
//   pecctl cert csr --name NAME... [--key-type ec|rsa] [--key EXISTING] --out CSR [--key-out KEY]
//   pecctl cert show FILE [--warn-days N] [--json]
//       Every certificate of a PEM chain; a warning on stderr when one expires within
//       --warn-days (default 30); exit status 1 when one has expired.
// Private keys are written with mode 0600, every file durably; keys are never printed.
#include <CLI/CLI.hpp>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/output.hpp"
#include "cli/registry.hpp"
#include "core/calendar.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "tls/certificate.hpp"
#include "tls/smtp_probe.hpp"

namespace pecd::cli {
namespace {

using nlohmann::json;

json certificate_json(const tls::CertificateInfo& i, int days_left) {
    return {{"subject", i.subject},
            {"issuer", i.issuer},
            {"common_name", i.common_name},
            {"dns_names", i.dns_names},
            {"ip_addresses", i.ip_addresses},
            {"not_before", rfc3339_utc(i.not_before)},
            {"not_after", rfc3339_utc(i.not_after)},
            {"days_to_expiry", days_left},
            {"serial", i.serial_hex},
            {"sha256_fingerprint", i.sha256_fingerprint},
            {"is_ca", i.is_ca},
            {"self_issued", i.self_issued},
            {"key", i.key_description}};
}

// --- tls-check ---

struct TlsCheckArgs {
    std::string target;
    bool starttls = false;
    bool implicit = false;
    std::string name;
    std::string ca;
    bool json_output = false;
    double timeout_seconds = 10;
};

void run_tls_check(const TlsCheckArgs& a) {
    auto target = tls::parse_target(a.target, 25);
    tls::ProbeOptions o;
    o.host = target.host;
    o.port = target.port;
    o.mode = a.implicit || (target.port == 465 && !a.starttls) ? tls::ProbeMode::implicit
                                                               : tls::ProbeMode::starttls;
    o.name = a.name;
    o.ca_file = a.ca;
    o.timeout = std::chrono::milliseconds(static_cast<long>(a.timeout_seconds * 1000));
    auto result = tls::probe(o);
    auto checks = tls::evaluate(o, result);
    int status = tls::exit_status(checks);
    if (a.json_output) {
        json j = {{"host", o.host},
                  {"port", o.port},
                  {"mode", o.mode == tls::ProbeMode::implicit ? "implicit" : "starttls"},
                  {"verdict", status == 0 ? "ok" : "fail"},
                  {"banner", result.banner},
                  {"banner_host", result.banner_host},
                  {"starttls_offered", result.starttls_offered},
                  {"checks", json::array()}};
        for (const auto& c : checks)
            j["checks"].push_back(
                {{"name", c.name}, {"verdict", tls::to_string(c.verdict)}, {"detail", c.detail}});
        if (result.handshake_ok) {
            j["protocol"] = result.verification.protocol;
            j["cipher"] = result.verification.cipher;
            j["chain"] = {{"sent", result.chain.sent_subjects},
                          {"complete", result.chain.complete},
                          {"missing", result.chain.missing}};
        }
        if (result.leaf) j["certificate"] = certificate_json(*result.leaf, result.days_to_expiry);
        std::cout << json_text(j) << "\n";
    } else {
        std::cout << "tls-check " << o.host << ":" << o.port << " ("
                  << (o.mode == tls::ProbeMode::implicit ? "implicit TLS" : "STARTTLS") << ")\n";
        for (const auto& c : checks)
            std::cout << "  " << std::left << std::setw(15) << c.name << std::setw(5)
                      << tls::to_string(c.verdict) << " " << c.detail << "\n";
        std::cout << "verdict: " << (status == 0 ? "ok" : "fail") << "\n";
    }
    if (status != 0) throw CLI::RuntimeError(status);
}

void add_tls_check(CLI::App& app) {
    auto args = std::make_shared<TlsCheckArgs>();
    auto* cmd = app.add_subcommand("tls-check", "Check a mail server's TLS as a receiving domain sees it");
    cmd->add_option("target", args->target, "HOST[:PORT] (port 25 by default)")->required();
    auto* st = cmd->add_flag("--starttls", args->starttls, "SMTP STARTTLS (default, except on port 465)");
    cmd->add_flag("--implicit", args->implicit, "TLS from the first byte (SMTPS)")->excludes(st);
    cmd->add_option("--name", args->name, "Host name the certificate must carry (default: HOST)");
    cmd->add_option("--ca", args->ca, "Trusted root certificates, PEM (default: the system store)")
        ->check(CLI::ExistingFile);
    cmd->add_flag("--json", args->json_output, "Machine-readable output");
    cmd->add_option("--timeout", args->timeout_seconds, "Seconds per network step")
        ->check(CLI::Range(0.1, 300.0));
    cmd->callback([args] { run_tls_check(*args); });
}

// --- cert ---

struct CertArgs {
    std::vector<std::string> names;
    std::vector<std::string> ips;
    std::string key_type = "ec";
    int days = 825;
    std::string out;
    std::string key_out;
    std::string key_in;
    std::string file;
    int warn_days = 30;
    bool json_output = false;
};

tls::CertificateSpec spec_from(const CertArgs& a) {
    tls::CertificateSpec spec;
    spec.dns_names = a.names;
    spec.ip_addresses = a.ips;
    spec.common_name = a.names.empty() ? (a.ips.empty() ? "" : a.ips.front()) : a.names.front();
    spec.validity = std::chrono::days(a.days);
    spec.usage = tls::Usage::server;
    return spec;
}

void write_key_file(const std::string& path, EVP_PKEY* key) {
    fs::write_file_durable(path, tls::private_key_to_pem(key), 0600);
}

void run_self_signed(const CertArgs& a) {
    if (a.names.empty() && a.ips.empty()) throw Error("cert self-signed: give at least one --name or --ip");
    auto key = tls::generate_key(tls::parse_key_type(a.key_type));
    auto cert =
        tls::issue_certificate(spec_from(a), key.get(), nullptr, key.get(), std::chrono::system_clock::now());
    write_key_file(a.key_out, key.get());
    fs::write_file_durable(a.out, tls::to_pem(cert.get()), 0644);
    auto info = tls::describe(cert.get());
    std::cout << "wrote " << a.out << " (" << info.subject << ", " << info.key_description << ", until "
              << rfc3339_utc(info.not_after) << ") and key " << a.key_out << "\n";
}

void run_csr(const CertArgs& a) {
    if (a.names.empty()) throw Error("cert csr: give at least one --name");
    tls::KeyPtr key;
    if (!a.key_in.empty()) {
        key = tls::load_key_file(a.key_in);
    } else {
        if (a.key_out.empty()) throw Error("cert csr: --key-out is needed for a new key (or give --key)");
        key = tls::generate_key(tls::parse_key_type(a.key_type));
        write_key_file(a.key_out, key.get());
    }
    auto csr = tls::make_csr(spec_from(a), key.get());
    fs::write_file_durable(a.out, tls::to_pem(csr.get()), 0644);
    std::cout << "wrote " << a.out << " for " << a.names.front() << "\n";
}

void run_show(const CertArgs& a) {
    auto chain = tls::load_chain_file(a.file);
    auto now = std::chrono::system_clock::now();
    json list = json::array();
    bool expired = false;
    for (std::size_t i = 0; i < chain.size(); ++i) {
        auto info = tls::describe(chain[i].get());
        int days = tls::days_until_expiry(chain[i].get(), now);
        if (days < 0) {
            expired = true;
            std::cerr << "pecctl: ERROR: " << info.subject << " expired " << -days << " days ago\n";
        } else if (auto from = tls::not_valid_until(chain[i].get(), now)) {
            // pecd does not serve it before then (a verifying peer would refuse it).
            std::cerr << "pecctl: WARNING: " << info.subject << " is not valid until " << rfc3339_utc(*from)
                      << "\n";
        } else if (days < a.warn_days) {
            std::cerr << "pecctl: WARNING: " << info.subject << " expires in " << days << " days\n";
        }
        if (a.json_output) {
            list.push_back(certificate_json(info, days));
            continue;
        }
        std::cout << "[" << i << "] subject:  " << info.subject << "\n"
                  << "    issuer:   " << info.issuer << "\n";
        if (!info.dns_names.empty() || !info.ip_addresses.empty()) {
            std::cout << "    names:   ";
            for (const auto& n : info.dns_names) std::cout << " DNS:" << n;
            for (const auto& n : info.ip_addresses) std::cout << " IP:" << n;
            std::cout << "\n";
        }
        std::cout << "    valid:    " << rfc3339_utc(info.not_before) << " .. " << rfc3339_utc(info.not_after)
                  << " (" << days << " days left)\n"
                  << "    key:      " << info.key_description << (info.is_ca ? ", CA" : "") << "\n"
                  << "    sha256:   " << info.sha256_fingerprint << "\n";
    }
    if (a.json_output) std::cout << json_text(list) << "\n";
    if (expired) throw CLI::RuntimeError(1);
}

void add_cert(CLI::App& app) {
    auto* cert = app.add_subcommand("cert", "Create, request and inspect X.509 certificates");
    cert->require_subcommand(1);
    auto args = std::make_shared<CertArgs>();
    auto names = [&](CLI::App* c) {
        c->add_option("--name", args->names, "DNS name (repeatable; the first is the subject CN)");
        c->add_option("--key-type", args->key_type, "ec (P-256, default) or rsa (2048)");
    };
    auto* ss = cert->add_subcommand("self-signed", "Create a self-signed server certificate and key");
    names(ss);
    ss->add_option("--ip", args->ips, "IP address for the SAN (repeatable)");
    ss->add_option("--days", args->days, "Validity in days")->check(CLI::Range(1, 3650));
    ss->add_option("--out", args->out, "Certificate file (PEM)")->required();
    ss->add_option("--key-out", args->key_out, "Private key file (PEM, mode 0600)")->required();
    ss->callback([args] { run_self_signed(*args); });

    auto* csr = cert->add_subcommand("csr", "Create a certificate signing request");
    names(csr);
    csr->add_option("--key", args->key_in, "Use this existing private key")->check(CLI::ExistingFile);
    csr->add_option("--key-out", args->key_out, "Write a new private key here (PEM, mode 0600)");
    csr->add_option("--out", args->out, "CSR file (PEM)")->required();
    csr->callback([args] { run_csr(*args); });

    auto* show = cert->add_subcommand("show", "Show a certificate or a chain, with expiry warnings");
    show->add_option("file", args->file, "PEM file")->required()->check(CLI::ExistingFile);
    show->add_option("--warn-days", args->warn_days, "Warn when expiry is closer than this");
    show->add_flag("--json", args->json_output, "Machine-readable output");
    show->callback([args] { run_show(*args); });
}

void register_tls_commands(CLI::App& app) {
    add_tls_check(app);
    add_cert(app);
}

}  // namespace

static const bool registered = add_group(&register_tls_commands);

}  // namespace pecd::cli
