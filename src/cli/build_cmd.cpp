// build_cmd.cpp - `pecctl build`: produce any PEC message kind from an original, for inspection
//
//   pecctl build TYPE --original FILE.eml --from SENDER --to RCPT [--to RCPT...] -o OUT.eml
//         [--cert CERT.pem --key KEY.pem | --cert CERT.pem --pkcs11-module SO
//          --pkcs11-token LABEL --pkcs11-key LABEL --pin-stdin]
//         [--domain DOM] [--provider NAME] [--pec-msgid ID] [--node NODE]
//         [--external RCPT...] [--recipient RCPT] [--notify ADDR] [--receipt completa|breve|sintetica]
//         [--errore nessuno|no-dest|no-dominio|virus|altro] [--error-text TEXT]
//   TYPE: busta-trasporto, busta-anomalia, accettazione, non-accettazione,
//         non-accettazione-virus, presa-in-carico, rilevazione-virus, mancata-consegna,
//         mancata-consegna-virus, mancata-consegna-12h, mancata-consegna-24h,
//         consegna-completa, consegna-breve, consegna-sintetica
// Without --cert the message is signed with a throwaway self-signed RSA-2048 certificate
// (said on stderr): good for looking at the structure, not for sending. The PIN is read
// from stdin only and never printed. The output file is written durably; its Message-ID
// and the SMTP envelope to send it with are printed on stdout.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <iostream>

#include "cli/registry.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "crypto/identity.hpp"
#include "pec/builder.hpp"
#include "pec/message_id.hpp"
#include "tls/certificate.hpp"

namespace pecd::cli {
namespace {

struct BuildArgs {
    std::string type, original, from, output;
    std::vector<std::string> to, external;
    std::string cert, key, pkcs11_module, pkcs11_token, pkcs11_key;
    bool pin_stdin = false;
    std::string domain = "pec.example.it", provider = "pecd", pec_msgid, node = "pecctl";
    std::string recipient, notify, receipt, errore, error_text;
};

crypto::SigningIdentity throwaway_identity(const std::string& domain) {
    std::cerr << "pecctl build: no --cert given, signing with a throwaway self-signed certificate\n";
    auto key = tls::generate_key(tls::KeyType::rsa2048);
    tls::CertificateSpec spec;
    spec.common_name = "posta-certificata@" + domain;
    spec.organization = "pecctl build (test only)";
    spec.usage = tls::Usage::client;
    auto cert = tls::issue_certificate(spec, key.get(), nullptr, key.get(), std::chrono::system_clock::now());
    crypto::SigningIdentity id;
    id.certificate = crypto::X509Ptr(cert.release(), crypto::X509Free{});
    id.key = crypto::PkeyPtr(key.release(), crypto::PkeyFree{});
    return id;
}

crypto::SigningIdentity identity(const BuildArgs& a) {
    if (a.cert.empty()) {
        if (!a.key.empty() || !a.pkcs11_module.empty())
            throw Error("--cert is required with --key / --pkcs11-*");
        return throwaway_identity(a.domain);
    }
    crypto::KeySource s;
    s.certificate = a.cert;
    s.key = a.key;
    s.pkcs11_module = a.pkcs11_module;
    s.pkcs11_token = a.pkcs11_token;
    s.pkcs11_key_label = a.pkcs11_key;
    if (!a.pkcs11_module.empty()) {
        if (!a.pin_stdin) throw Error("a PKCS#11 key needs --pin-stdin (the PIN is read from stdin)");
        std::getline(std::cin, s.pkcs11_pin);
    } else if (a.key.empty()) {
        throw Error("--key (or --pkcs11-module) is required with --cert");
    }
    return crypto::load_identity(s);
}

void run_build(const BuildArgs& a) {
    auto kind = pec::parse_kind_name(a.type);
    if (!kind) throw Error("unknown message type '" + a.type + "' (see pecctl build --help)");
    auto original = fs::read_file(a.original);

    Envelope env;
    env.mail_from = a.from;
    for (const auto& r : a.to) env.recipients.push_back({r, {}, {}});

    pec::TransactionContext tx;
    tx.time = std::chrono::system_clock::now();
    tx.provider_domain = a.domain;
    tx.provider_name = a.provider;
    pec::MessageIdGenerator ids(a.domain, a.node);
    tx.pec_msgid = a.pec_msgid.empty() ? ids.next(tx.time) : a.pec_msgid;
    for (const auto& r : a.to) {
        bool external = std::find(a.external.begin(), a.external.end(), r) != a.external.end();
        tx.recipients.push_back(
            {r, external ? pec::RecipientType::esterno : pec::RecipientType::certificato});
    }
    tx.recipient = a.recipient.empty() && !a.to.empty() ? a.to.front() : a.recipient;
    tx.notify_address = a.notify;
    if (!a.receipt.empty()) {
        tx.requested_receipt = pec::parse_receipt_type(a.receipt);
        if (!tx.requested_receipt) throw Error("--receipt: completa, breve or sintetica");
    }
    if (!a.errore.empty()) {
        tx.errore = pec::parse_daticert_errore(a.errore);
        if (!tx.errore) throw Error("--errore: nessuno, no-dest, no-dominio, virus or altro");
    }
    tx.error_text = a.error_text;
    if (*kind != pec::MessageKind::transport_envelope && *kind != pec::MessageKind::anomaly_envelope)
        tx.message_id = ids.next(tx.time);

    auto built = pec::build_message(*kind, original, env, tx, identity(a));
    fs::write_file_durable(a.output, built.data);
    std::cout << "message-id: <" << built.message_id << ">\n";
    std::cout << "pec-msgid: " << tx.pec_msgid << "\n";
    std::cout << "mail-from: <" << built.mail_from << ">\n";
    for (const auto& r : built.rcpt_to) std::cout << "rcpt-to: <" << r << ">\n";
}

void register_build_command(CLI::App& app) {
    auto a = std::make_shared<BuildArgs>();
    auto* cmd = app.add_subcommand("build",
                                   "build a signed PEC envelope, receipt or notice from an original message");
    cmd->add_option("type", a->type, "message type, e.g. busta-trasporto, accettazione, consegna-breve")
        ->required();
    cmd->add_option("--original", a->original, "the original message (RFC 5322 file)")->required();
    cmd->add_option("--from", a->from, "certified sender (SMTP MAIL FROM)")->required();
    cmd->add_option("--to", a->to, "certified recipients (SMTP RCPT TO)")->required();
    cmd->add_option("-o,--output", a->output, "where to write the built message")->required();
    cmd->add_option("--cert", a->cert, "provider signing certificate (PEM, chain after the leaf)");
    cmd->add_option("--key", a->key, "provider private key (PEM)");
    cmd->add_option("--pkcs11-module", a->pkcs11_module, "PKCS#11 module holding the key");
    cmd->add_option("--pkcs11-token", a->pkcs11_token, "token label");
    cmd->add_option("--pkcs11-key", a->pkcs11_key, "key object label");
    cmd->add_flag("--pin-stdin", a->pin_stdin, "read the token PIN from stdin");
    cmd->add_option("--domain", a->domain, "provider mail domain")->capture_default_str();
    cmd->add_option("--provider", a->provider, "provider name (daticert gestore-emittente)")
        ->capture_default_str();
    cmd->add_option("--pec-msgid", a->pec_msgid, "PEC msgid (default: a new one)");
    cmd->add_option("--node", a->node, "node id for generated ids")->capture_default_str();
    cmd->add_option("--external", a->external, "recipients that are ordinary (non-PEC) mail");
    cmd->add_option("--recipient", a->recipient,
                    "recipient a per-recipient notice is about (default: first --to)");
    cmd->add_option("--notify", a->notify,
                    "sender provider's receipt address (presa-in-carico, rilevazione-virus)");
    cmd->add_option("--receipt", a->receipt, "requested receipt type: completa, breve, sintetica");
    cmd->add_option("--errore", a->errore, "daticert errore value");
    cmd->add_option("--error-text", a->error_text, "errore-esteso / anomaly reason");
    cmd->callback([a] { run_build(*a); });
}

}  // namespace

static const bool registered = add_group(&register_build_command);

}  // namespace pecd::cli
