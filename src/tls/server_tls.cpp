// server_tls.cpp - TLS for pecd's listeners: contexts, protocol floor, SNI, hot reload
//
// See server_tls.hpp for the contract. A context "bundle" owns the main ssl::context and
// one context per SNI name; current() hands out an aliasing shared_ptr to the main
// context that keeps the whole bundle alive, so the SNI callback's pointers stay valid
// for every session that started on that bundle, even after a reload replaced it.
#include "tls/server_tls.hpp"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/calendar.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/strings.hpp"
#include "tls/certificate.hpp"
#include "tls/openssl_error.hpp"

namespace pecd::tls {
namespace {

namespace ssl = boost::asio::ssl;

// TLS 1.2 suites: ECDHE key exchange (forward secrecy) with AEAD ciphers only. TLS 1.3
// suites are all AEAD with forward secrecy, so OpenSSL's default list stays.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr const char* kGroups = "X25519:P-256:P-384";

struct ContextBundle {
    explicit ContextBundle() : main(ssl::context::tls_server) {}
    ssl::context main;
    std::map<std::string, std::unique_ptr<ssl::context>> sni;  // lower-case name or "*.domain"
};

void apply_policy(SSL_CTX* ctx, const ServerTlsSettings& s) {
    int floor = s.min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION;
    if (s.min_version != "1.2" && s.min_version != "1.3")
        throw Error("tls min_version must be \"1.2\" or \"1.3\", not \"" + s.min_version + "\"");
    if (SSL_CTX_set_min_proto_version(ctx, floor) != 1) throw Error(openssl_error("min protocol version"));
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA);
    if (SSL_CTX_set_cipher_list(ctx, kTls12Ciphers) != 1) throw Error(openssl_error("cipher list"));
    if (SSL_CTX_set1_groups_list(ctx, kGroups) != 1) throw Error(openssl_error("groups"));
    // Needed for session resumption when client certificates are requested.
    static const unsigned char sid_context[] = "pecd";
    SSL_CTX_set_session_id_context(ctx, sid_context, sizeof sid_context - 1);
}

// Loads and checks one pair (read_pair's checks are the reasons a reload is refused);
// returns the days until its expiry.
int load_pair(SSL_CTX* ctx, const CertificatePair& pair) {
    auto now = std::chrono::system_clock::now();
    auto checked = read_pair(pair, now);
    if (SSL_CTX_use_certificate(ctx, checked.leaf()) != 1)
        throw Error(openssl_error(pair.certificate.string()));
    SSL_CTX_clear_chain_certs(ctx);
    for (std::size_t i = 1; i < checked.chain.size(); ++i)
        if (SSL_CTX_add1_chain_cert(ctx, checked.chain[i].get()) != 1)
            throw Error(openssl_error(pair.certificate.string() + ": chain certificate"));
    if (SSL_CTX_use_PrivateKey(ctx, checked.key.get()) != 1) throw Error(openssl_error(pair.key.string()));
    if (SSL_CTX_check_private_key(ctx) != 1) throw Error(openssl_error(pair.key.string()));
    return days_until_expiry(checked.leaf(), now);
}

void require_client_certificates(SSL_CTX* ctx, const std::filesystem::path& ca) {
    if (SSL_CTX_load_verify_locations(ctx, ca.c_str(), nullptr) != 1)
        throw Error(openssl_error("client CA " + ca.string()));
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(ca.c_str());
    if (!names) throw Error(openssl_error("client CA names " + ca.string()));
    SSL_CTX_set_client_CA_list(ctx, names);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
}

ssl::context* context_for_name(ContextBundle& b, std::string name) {
    name = to_lower(name);
    if (auto it = b.sni.find(name); it != b.sni.end()) return it->second.get();
    // A "*.example.com" entry covers exactly one left-most label.
    if (auto dot = name.find('.'); dot != std::string::npos && dot > 0) {
        if (auto it = b.sni.find("*" + name.substr(dot)); it != b.sni.end()) return it->second.get();
    }
    return nullptr;
}

int servername_callback(SSL* s, int*, void* arg) {
    auto* bundle = static_cast<ContextBundle*>(arg);
    const char* name = SSL_get_servername(s, TLSEXT_NAMETYPE_host_name);
    if (!name) return SSL_TLSEXT_ERR_OK;
    if (ssl::context* ctx = context_for_name(*bundle, name)) SSL_set_SSL_CTX(s, ctx->native_handle());
    return SSL_TLSEXT_ERR_OK;
}

std::shared_ptr<ContextBundle> build_bundle(const ServerTlsSettings& s) {
    auto bundle = std::make_shared<ContextBundle>();
    SSL_CTX* main = bundle->main.native_handle();
    apply_policy(main, s);
    load_pair(main, s.pair);
    if (!s.client_ca.empty()) require_client_certificates(main, s.client_ca);
    for (const auto& [name, pair] : s.sni) {
        auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
        apply_policy(ctx->native_handle(), s);
        int days = load_pair(ctx->native_handle(), pair);
        if (!s.client_ca.empty()) require_client_certificates(ctx->native_handle(), s.client_ca);
        if (days < s.expiry_warning.count())
            spdlog::warn("tls: certificate {} for {} expires in {} days", pair.certificate.string(), name,
                         days);
        bundle->sni.emplace(to_lower(name), std::move(ctx));
    }
    if (!bundle->sni.empty()) {
        SSL_CTX_set_tlsext_servername_callback(main, servername_callback);
        SSL_CTX_set_tlsext_servername_arg(main, bundle.get());
    }
    return bundle;
}

std::vector<std::filesystem::path> watched_files(const ServerTlsSettings& s) {
    std::vector<std::filesystem::path> files{s.pair.certificate, s.pair.key};
    for (const auto& [name, pair] : s.sni) {
        files.push_back(pair.certificate);
        files.push_back(pair.key);
    }
    if (!s.client_ca.empty()) files.push_back(s.client_ca);
    return files;
}

void log_expiry(const ServerTlsSettings& s, X509* leaf) {
    log_validity("tls: " + s.role, s.pair.certificate.string(), leaf,
                 "peers that verify refuse the handshakes", std::chrono::system_clock::now(),
                 s.expiry_warning);
}

X509* leaf_of(const ContextBundle& b) {
    return SSL_CTX_get0_certificate(const_cast<ssl::context&>(b.main).native_handle());
}

}  // namespace

struct ServerTls::Impl {
    explicit Impl(ServerTlsSettings s) : settings(std::move(s)), watch(watched_files(settings)) {}
    ServerTlsSettings settings;
    mutable std::mutex mutex;
    FileWatch watch;  // the files behind `bundle`
    std::shared_ptr<ContextBundle> bundle;
    std::chrono::system_clock::time_point last_expiry_log;
};

ServerTls::ServerTls(ServerTlsSettings settings) : impl_(std::make_shared<Impl>(std::move(settings))) {
    impl_->bundle = build_bundle(impl_->settings);
    impl_->last_expiry_log = std::chrono::system_clock::now();
    log_expiry(impl_->settings, leaf_of(*impl_->bundle));
}

ContextPtr ServerTls::current() const {
    std::lock_guard lock(impl_->mutex);
    return ContextPtr(impl_->bundle, &impl_->bundle->main);
}

bool ServerTls::reload_if_changed() {
    std::optional<FileStamps> due;
    {
        std::lock_guard lock(impl_->mutex);
        auto now = std::chrono::system_clock::now();
        // Expiry keeps being announced once a day, so monitoring sees it ahead of time.
        if (now - impl_->last_expiry_log >= std::chrono::hours(24)) {
            impl_->last_expiry_log = now;
            log_expiry(impl_->settings, leaf_of(*impl_->bundle));
        }
        due = impl_->watch.due(now);
        if (!due) return false;
    }
    try {
        auto fresh = build_bundle(impl_->settings);
        std::lock_guard lock(impl_->mutex);
        impl_->bundle = std::move(fresh);
        impl_->watch.read(std::move(*due));
        spdlog::info("tls: reloaded {} {}", impl_->settings.role, impl_->settings.pair.certificate.string());
        log_expiry(impl_->settings, leaf_of(*impl_->bundle));
        return true;
    } catch (const NotYetValid& e) {
        std::lock_guard lock(impl_->mutex);
        if (auto at = to_time_point(e.from)) impl_->watch.defer_until(*at);
        spdlog::warn("tls: reload deferred, keeping the previous certificate: {}; it is tried again then",
                     e.what());
        return false;
    } catch (const std::exception& e) {
        spdlog::error("tls: reload refused, keeping the previous certificate: {}", e.what());
        return false;
    }
}

int ServerTls::days_to_expiry() const {
    std::lock_guard lock(impl_->mutex);
    return days_until_expiry(leaf_of(*impl_->bundle), std::chrono::system_clock::now());
}

namespace {

bool is_ip_literal(const std::string& s) {
    ASN1_OCTET_STRING* o = a2i_IPADDRESS(s.c_str());
    if (!o) return false;
    ASN1_OCTET_STRING_free(o);
    return true;
}

void write_key(const std::filesystem::path& p, EVP_PKEY* key) {
    fs::write_file_durable(p, private_key_to_pem(key), 0600);
}

}  // namespace

CertificatePair ensure_self_signed(const std::filesystem::path& dir, const std::vector<std::string>& names,
                                   KeyType key_type) {
    CertificatePair pair{dir / "server.pem", dir / "server.key"};
    if (std::filesystem::exists(pair.certificate) && std::filesystem::exists(pair.key)) return pair;
    fs::ensure_dir(dir, 0700);
    auto now = std::chrono::system_clock::now();
    auto ca_cert_path = dir / "ca.pem", ca_key_path = dir / "ca.key";
    X509Ptr ca;
    KeyPtr ca_key;
    if (std::filesystem::exists(ca_cert_path) && std::filesystem::exists(ca_key_path)) {
        ca = std::move(load_chain_file(ca_cert_path.string()).front());
        ca_key = load_key_file(ca_key_path.string());
    } else {
        ca_key = generate_key(key_type);
        CertificateSpec ca_spec;
        ca_spec.common_name = "pecd local CA " + (names.empty() ? std::string("localhost") : names.front());
        ca_spec.organization = "pecd";
        ca_spec.usage = Usage::ca;
        ca_spec.validity = std::chrono::days(3650);
        ca = issue_certificate(ca_spec, ca_key.get(), nullptr, ca_key.get(), now);
        write_key(ca_key_path, ca_key.get());
        fs::write_file_durable(ca_cert_path, to_pem(ca.get()), 0644);
    }
    CertificateSpec spec;
    spec.organization = "pecd";
    spec.usage = Usage::server;
    spec.validity = std::chrono::days(825);
    for (const auto& n : names) {
        if (is_ip_literal(n))
            spec.ip_addresses.push_back(n);
        else if (!n.empty())
            spec.dns_names.push_back(to_lower(n));
    }
    if (spec.dns_names.empty()) spec.dns_names.push_back("localhost");
    spec.common_name = spec.dns_names.front();
    for (const char* ip : {"127.0.0.1", "::1"})
        if (std::find(spec.ip_addresses.begin(), spec.ip_addresses.end(), ip) == spec.ip_addresses.end())
            spec.ip_addresses.push_back(ip);
    auto key = generate_key(key_type);
    auto cert = issue_certificate(spec, key.get(), ca.get(), ca_key.get(), now);
    // Key first: a certificate file never exists without its key.
    write_key(pair.key, key.get());
    fs::write_file_durable(pair.certificate, to_pem(cert.get()) + to_pem(ca.get()), 0644);
    spdlog::info("tls: created self-signed certificate {} for {}", pair.certificate.string(),
                 spec.dns_names.front());
    return pair;
}

}  // namespace pecd::tls
