// demo.cpp - the embedded default's PEC provider identity and index (see demo.hpp)
#include "provider/demo.hpp"

#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/strings.hpp"
#include "crypto/identity.hpp"
#include "index/publish.hpp"
#include "tls/certificate.hpp"

namespace pecd::provider {
namespace {

bool present(const std::filesystem::path& a, const std::filesystem::path& b) {
    return std::filesystem::exists(a) && std::filesystem::exists(b);
}

}  // namespace

void ensure_demo_ca(const std::filesystem::path& dir) {
    auto cert = dir / "ca.pem", key = dir / "ca.key";
    if (present(cert, key)) return;
    fs::ensure_dir(dir, 0700);
    auto k = tls::generate_key(tls::KeyType::rsa2048);
    tls::CertificateSpec spec;
    spec.common_name = "pecd demo PEC CA";
    spec.organization = "pecd demo";
    spec.usage = tls::Usage::ca;
    spec.validity = std::chrono::days(3650);
    auto c = tls::issue_certificate(spec, k.get(), nullptr, k.get(), std::chrono::system_clock::now());
    // Key first: a certificate file never exists without its key.
    fs::write_file_durable(key, tls::private_key_to_pem(k.get()), 0600);
    fs::write_file_durable(cert, tls::to_pem(c.get()), 0644);
}

DemoIdentity ensure_demo_signing(const std::filesystem::path& ca_dir, const std::filesystem::path& out,
                                 const std::string& domain, const std::string& provider_name) {
    DemoIdentity id{ca_dir / "ca.pem", out / "signing.pem", out / "signing.key"};
    if (present(id.certificate, id.key)) return id;
    ensure_demo_ca(ca_dir);
    fs::ensure_dir(out, 0700);
    auto ca = tls::load_chain_file(id.ca_certificate.string());
    if (ca.empty()) throw Error("demo CA " + id.ca_certificate.string() + " holds no certificate");
    auto ca_key = tls::load_key_file((ca_dir / "ca.key").string());
    auto k = tls::generate_key(tls::KeyType::rsa2048);
    tls::CertificateSpec spec;
    spec.common_name = "Posta Certificata " + provider_name;
    spec.organization = provider_name;
    spec.usage = tls::Usage::email_signing;
    spec.email_addresses = {"posta-certificata@" + to_lower(domain)};
    spec.validity = std::chrono::days(1095);  // three years, as AgID issues them
    auto c = tls::issue_certificate(spec, k.get(), ca.front().get(), ca_key.get(), std::chrono::system_clock::now());
    fs::write_file_durable(id.key, tls::private_key_to_pem(k.get()), 0600);
    fs::write_file_durable(id.certificate, tls::to_pem(c.get()), 0644);
    return id;
}

void ensure_demo_provider(config::Config& c) {
    auto& p = c.pec;
    if (p.domain.empty()) p.domain = p.domains.empty() ? c.domains.front() : p.domains.front();
    if (p.provider_name.empty()) p.provider_name = "pecd demo provider (" + p.domain + ")";
    const auto dir = c.data_dir / "pec";
    if (p.signing_certificate.empty()) {
        auto id = ensure_demo_signing(dir, dir, p.domain, p.provider_name);
        p.signing_certificate = id.certificate;
        p.signing_key = id.key;
        if (p.trust_anchors.empty()) p.trust_anchors = id.ca_certificate;
    }
    if (c.index.source != "none") return;
    auto ldif = dir / "index.ldif";
    if (!std::filesystem::exists(ldif)) {
        crypto::KeySource ks;
        ks.certificate = p.signing_certificate;
        ks.key = p.signing_key;
        auto identity = crypto::load_identity(ks);
        index::PublishSpec spec;
        spec.provider_name = p.provider_name;
        spec.mail_receipt = p.service_mailbox.empty() ? "posta-certificata@" + p.domain : p.service_mailbox;
        spec.domains = p.domains.empty() ? c.domains : p.domains;
        spec.certificates = {identity.certificate};
        spec.description = "pecd embedded default";
        fs::write_file_durable(ldif, index::provider_ldif(spec), 0644);
    }
    c.index.source = "file";
    c.index.file = ldif;
}

}  // namespace pecd::provider
