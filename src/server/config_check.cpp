#include "server/config_check.hpp"

#include <unistd.h>

#include "core/calendar.hpp"
#include "core/error.hpp"
#include "crypto/cms.hpp"
#include "crypto/identity.hpp"
#include "crypto/trust_files.hpp"
#include "index/document.hpp"
#include "server/signing_key.hpp"
#include "tls/certificate.hpp"

namespace pecd::server {
namespace {

namespace fsys = std::filesystem;

class Checker {
public:
    explicit Checker(TimePoint now) : now_(now) {}

    // False when a problem was added.
    bool pair(const std::string& prefix, const fsys::path& certificate, const fsys::path& key,
              const std::string& certificate_key = "certificate", const std::string& key_key = "key") {
        if (certificate.empty()) return true;
        const auto before = problems.size();
        auto chain = chain_of(prefix + certificate_key, certificate);
        if (key.empty()) return problems.size() == before;
        tls::KeyPtr k;
        try {
            k = tls::load_key_file(key.string());
        } catch (const Error& e) {
            add(prefix + key_key, e.what());
            return false;
        }
        if (!chain.empty() && !tls::key_matches(chain.front().get(), k.get()))
            add(prefix + key_key,
                key.string() + " is not the key of the certificate in " + certificate.string());
        return problems.size() == before;
    }

    // The HSM key as the daemon opens it: module loaded, token found, PIN accepted, key
    // found and matching the certificate. libp11's errors never carry the PIN.
    void token(const config::Pec& pec) {
        try {
            crypto::load_identity(signing_key_source(pec));
        } catch (const Error& e) {
            add("pec.pkcs11_token", e.what());
        }
    }

    // A bundle of trusted certificates: at least one, all parsable.
    void bundle(const std::string& name, const fsys::path& path) {
        if (path.empty()) return;
        try {
            tls::load_chain_file(path.string());
        } catch (const Error& e) {
            add(name, e.what());
        }
    }

    // CRLs as the daemon reads them: at least one, PEM or DER, and none past its next
    // update (every chain it covers would fail until the file is refreshed).
    void crls(const std::string& name, const fsys::path& path) {
        if (path.empty()) return;
        crypto::TrustStore trust;
        try {
            trust.add_crl_file(path);
        } catch (const Error& e) {
            add(name, e.what());
            return;
        }
        for (const auto& c : crypto::describe_crls(trust))
            if (c.lapsed(now_))
                add(name, path.string() + ": the CRL of " + c.issuer + " is out of date since " +
                              rfc3339_utc(*c.next_update) +
                              "; every chain it covers fails until it is refreshed");
    }

    // Present and readable; the content is not looked at (it may be a secret). False when
    // a problem was added.
    bool readable(const std::string& name, const fsys::path& path) {
        if (path.empty()) return true;
        std::error_code ec;
        if (!fsys::is_regular_file(path, ec)) {
            add(name, path.string() + ": no such file");
            return false;
        }
        if (::access(path.c_str(), R_OK) == 0) return true;
        add(name, path.string() + ": not readable");
        return false;
    }

    // The provider index as the daemon loads it: parsed, and verified when signed.
    void index_file(const fsys::path& path, const fsys::path& trust_anchor) {
        if (!readable("index.file", path)) return;
        try {
            index::load_index_file(path, trust_anchor);
        } catch (const Error& e) {
            add("index.file", e.what());
        }
    }

    void data_dir(const fsys::path& dir) {
        std::error_code ec;
        auto target = fsys::absolute(dir, ec);
        if (ec) target = dir;
        if (fsys::exists(target, ec)) {
            if (!fsys::is_directory(target, ec))
                add("data_dir", target.string() + " is not a directory");
            else if (::access(target.c_str(), W_OK | X_OK) != 0)
                add("data_dir", target.string() + " is not writable");
            return;
        }
        auto parent = target.parent_path();
        if (!fsys::is_directory(parent, ec) || ::access(parent.c_str(), W_OK | X_OK) != 0)
            add("data_dir", target.string() + " does not exist and cannot be created in " + parent.string());
    }

    std::vector<ConfigProblem> problems;

private:
    std::vector<tls::X509Ptr> chain_of(const std::string& name, const fsys::path& path) {
        try {
            auto chain = tls::load_chain_file(path.string());
            if (int days = tls::days_until_expiry(chain.front().get(), now_); days < 0)
                add(name, path.string() + ": the certificate expired " + std::to_string(-days) + " days ago");
            else if (auto from = tls::not_valid_until(chain.front().get(), now_))
                add(name, path.string() + ": the certificate is not valid until " + rfc3339_utc(*from));
            return chain;
        } catch (const Error& e) {
            add(name, e.what());
            return {};
        }
    }
    void add(std::string key, std::string problem) {
        problems.push_back({std::move(key), std::move(problem)});
    }

    TimePoint now_;
};

}  // namespace

std::vector<ConfigProblem> check_files(const config::Config& c, TimePoint now) {
    Checker k(now);
    k.data_dir(c.data_dir);
    k.pair("tls.", c.tls.certificate, c.tls.key);
    for (std::size_t i = 0; i < c.listeners.size(); ++i) {
        const auto& l = c.listeners[i];
        const auto prefix = "listener[" + std::to_string(i + 1) + "].";
        k.pair(prefix, l.certificate, l.key);
        for (std::size_t j = 0; j < l.sni.size(); ++j)
            k.pair(prefix + "sni[" + std::to_string(j + 1) + "].", l.sni[j].certificate, l.sni[j].key);
    }
    k.bundle("outbound.ca_file", c.outbound.ca_file);
    k.pair("outbound.", c.outbound.client_certificate, c.outbound.client_key, "client_certificate",
           "client_key");
    k.readable("store.password_file", c.store.password_file);
    if (c.index.source == "file") k.index_file(c.index.file, c.index.trust_anchor);
    k.readable("index.ldap_password_file", c.index.ldap_password_file);
    k.bundle("index.trust_anchor", c.index.trust_anchor);
    k.bundle("index.ca_file", c.index.ca_file);
    if (c.pec.enabled) {
        // An HSM key is checked by logging in to the token, as the daemon does at start.
        bool checkable = k.pair("pec.", c.pec.signing_certificate,
                                c.pec.pkcs11_module.empty() ? c.pec.signing_key : fsys::path(),
                                "signing_certificate", "signing_key");
        if (!c.pec.pkcs11_module.empty()) {
            checkable = k.readable("pec.pkcs11_module", c.pec.pkcs11_module) && checkable;
            checkable = k.readable("pec.pkcs11_pin_file", c.pec.pkcs11_pin_file) && checkable;
            if (checkable) k.token(c.pec);
        }
        k.bundle("pec.trust_anchors", c.pec.trust_anchors);
        k.crls("pec.crl_file", c.pec.crl_file);
    }
    if (c.log.enabled) k.bundle("log.tsa_anchors", c.log.tsa_anchors);
    if (c.api.enabled) {
        k.pair("api.", c.api.certificate, c.api.key);
        k.bundle("api.client_ca", c.api.client_ca);
        k.readable("api.jwks_file", c.api.jwks_file);
        k.bundle("api.jwks_ca", c.api.jwks_ca);
    }
    return std::move(k.problems);
}

}  // namespace pecd::server
