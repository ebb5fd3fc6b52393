#include "config/config.hpp"

#include <toml++/toml.h>

#include <cctype>
#include <optional>
#include <set>

#include "core/calendar.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"

namespace pecd::config {
namespace {

// The longest period any setting takes, in seconds: ten years. Longer is a typo (a few
// zeros too many), and near the top of int64 a period overflows when a timer adds it to
// the clock, which makes it fire at once or never.
constexpr std::int64_t kMaxPeriodSeconds = 10ll * 365 * 86400;

// [outbound] queue_workers: each is a thread with its own stack.
constexpr unsigned kMaxQueueWorkers = 1024;

std::string longer_than_ten_years(std::int64_t most, const char* unit) {
    return "at most " + std::to_string(most) + " " + unit + " (ten years)";
}

// Reads typed values from one TOML table and remembers which keys were used, so that
// anything left over can be reported as unknown.
class Table {
public:
    Table(const toml::table& t, std::string path) : t_(t), path_(std::move(path)) {}

    template <class T>
    void get(const char* key, T& out) {
        used_.insert(key);
        auto node = t_.get(key);
        if (!node) return;
        if constexpr (std::is_same_v<T, bool>) {
            auto v = node->value<bool>();
            if (!v) fail(*node, key, "expected true or false");
            out = *v;
        } else if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, std::filesystem::path>) {
            auto v = node->value<std::string>();
            if (!v) fail(*node, key, "expected a string");
            out = *v;
        } else if constexpr (std::is_same_v<T, std::chrono::seconds>) {
            auto v = node->value<std::int64_t>();
            if (!v || *v <= 0) fail(*node, key, "expected a positive number of seconds");
            if (*v > kMaxPeriodSeconds) fail(*node, key, longer_than_ten_years(kMaxPeriodSeconds, "seconds"));
            out = std::chrono::seconds(*v);
        } else if constexpr (std::is_same_v<T, std::chrono::milliseconds>) {
            auto v = node->value<std::int64_t>();
            if (!v || *v <= 0) fail(*node, key, "expected a positive number of milliseconds");
            if (*v > kMaxPeriodSeconds * 1000)
                fail(*node, key, longer_than_ten_years(kMaxPeriodSeconds * 1000, "milliseconds"));
            out = std::chrono::milliseconds(*v);
        } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
            auto arr = node->as_array();
            if (!arr) fail(*node, key, "expected an array of strings");
            out.clear();
            for (auto& item : *arr) {
                auto v = item.value<std::string>();
                if (!v || v->empty()) fail(item, key, "expected a non-empty string");
                out.push_back(*v);
            }
        } else {
            auto v = node->value<std::int64_t>();
            if (!v || *v < 0) fail(*node, key, "expected a non-negative integer");
            if (static_cast<std::uint64_t>(*v) > std::numeric_limits<T>::max())
                fail(*node, key, "value too large");
            out = static_cast<T>(*v);
        }
    }
    // A key read by hand (a shape get() does not know) still counts as known.
    void known(const char* key) { used_.insert(key); }
    void positive(const char* key, std::uint64_t v) const {
        if (v == 0) fail(*t_.get(key), key, "must be greater than zero");
    }
    void one_of(const char* key, const std::string& v, std::initializer_list<const char*> allowed) const {
        for (auto a : allowed)
            if (v == a) return;
        std::string list;
        for (auto a : allowed) list += std::string(list.empty() ? "" : ", ") + a;
        fail(*t_.get(key), key, "must be one of: " + list);
    }
    void no_unknown_keys() const {
        for (auto& [k, node] : t_)
            if (!used_.count(std::string(k.str()))) fail(node, std::string(k.str()).c_str(), "unknown key");
    }
    std::string key_path(const char* key) const { return path_.empty() ? key : path_ + "." + key; }
    [[noreturn]] void fail(const toml::node& node, const char* key, const std::string& why) const {
        throw ParseError(why, node.source().begin.line, key_path(key));
    }
    // A certificate and its key are set together or not at all ([tls], [api], a listener).
    void certificate_pair(const toml::node& node, const std::string& certificate,
                          const std::string& key) const {
        if (certificate.empty() != key.empty())
            fail(node, certificate.empty() ? "certificate" : "key", "certificate and key go together");
    }

private:
    const toml::table& t_;
    std::string path_;
    std::set<std::string> used_;
};

void read_limits(const toml::table& t, Limits& l) {
    Table s(t, "limits");
    s.get("message_size", l.message_size);
    s.get("recipients", l.recipients);
    s.get("header_size", l.header_size);
    s.get("line_length", l.line_length);
    s.get("errors", l.errors);
    s.get("idle_timeout", l.idle_timeout);
    s.get("connections", l.connections);
    s.get("connections_per_client", l.connections_per_client);
    s.get("auth_failures_per_address", l.auth_failures_per_address);
    s.get("auth_failures_per_account", l.auth_failures_per_account);
    s.get("auth_failure_window", l.auth_failure_window);
    s.get("spool_min_free", l.spool_min_free);
    s.get("in_flow_backlog", l.in_flow_backlog);
    s.get("in_flow_delay", l.in_flow_delay);
    s.no_unknown_keys();
    if (t.contains("recipients")) s.positive("recipients", l.recipients);
    if (t.contains("message_size")) s.positive("message_size", l.message_size);
    if (t.contains("line_length") && l.line_length < 998)
        s.fail(*t.get("line_length"), "line_length", "must be at least 998 (RFC 5322)");
}

void read_tls(const toml::table& t, Tls& tls) {
    Table s(t, "tls");
    s.get("min_version", tls.min_version);
    s.get("certificate", tls.certificate);
    s.get("key", tls.key);
    s.get("reload_interval", tls.reload_interval);
    s.no_unknown_keys();
    if (t.contains("min_version")) s.one_of("min_version", tls.min_version, {"1.2", "1.3"});
    s.certificate_pair(t, tls.certificate, tls.key);
}

const std::initializer_list<const char*> kPolicies = {"none", "may", "encrypt", "verify", "secure"};

void read_outbound(const toml::table& t, Outbound& o) {
    Table s(t, "outbound");
    s.get("tls_policy", o.tls_policy);
    s.get("ca_file", o.ca_file);
    s.get("client_certificate", o.client_certificate);
    s.get("client_key", o.client_key);
    s.get("port", o.port);
    s.get("connections_per_destination", o.connections_per_destination);
    s.get("queue_workers", o.queue_workers);
    s.get("connect_timeout", o.connect_timeout);
    s.get("retry_first", o.retry_first);
    s.get("retry_max", o.retry_max);
    s.get("lifetime", o.lifetime);
    s.get("pec_lifetime", o.pec_lifetime);
    if (auto n = t.get("delay_warning")) {
        // Zero is allowed here: it turns delay notices off.
        auto v = n->value<std::int64_t>();
        if (!v || *v < 0) s.fail(*n, "delay_warning", "expected seconds (0 = no delay notices)");
        if (*v > kMaxPeriodSeconds)
            s.fail(*n, "delay_warning", longer_than_ten_years(kMaxPeriodSeconds, "seconds"));
        o.delay_warning = std::chrono::seconds(*v);
    }
    s.known("delay_warning");
    if (auto n = t.get("tls_policies")) {
        auto arr = n->as_array();
        if (!arr || !arr->is_array_of_tables())
            s.fail(*n, "tls_policies", "expected [[outbound.tls_policies]] tables");
        for (std::size_t i = 0; i < arr->size(); ++i) {
            const auto& pt = *arr->get(i)->as_table();
            Table ps(pt, "outbound.tls_policies[" + std::to_string(i + 1) + "]");
            OutboundPolicy p;
            ps.get("domain", p.domain);
            ps.get("policy", p.policy);
            ps.get("names", p.names);
            ps.no_unknown_keys();
            if (p.domain.empty()) ps.fail(pt, "domain", "every policy entry needs a domain");
            if (!pt.contains("policy")) ps.fail(pt, "policy", "every policy entry needs a policy");
            ps.one_of("policy", p.policy, kPolicies);
            if (!p.names.empty() && p.policy != "secure")
                ps.fail(*pt.get("names"), "names", "names are only used with policy = \"secure\"");
            o.policies.push_back(std::move(p));
        }
    }
    s.known("tls_policies");
    if (auto n = t.get("routes")) {
        auto arr = n->as_array();
        if (!arr || !arr->is_array_of_tables()) s.fail(*n, "routes", "expected [[outbound.routes]] tables");
        for (std::size_t i = 0; i < arr->size(); ++i) {
            const auto& rt = *arr->get(i)->as_table();
            Table rs(rt, "outbound.routes[" + std::to_string(i + 1) + "]");
            OutboundRoute r;
            rs.get("domain", r.domain);
            rs.get("route", r.route);
            rs.no_unknown_keys();
            if (r.domain.empty()) rs.fail(rt, "domain", "every route needs a domain");
            if (!r.route.starts_with("smtp:") && !r.route.starts_with("lmtp:"))
                rs.fail(rt.contains("route") ? *rt.get("route") : rt, "route",
                        "expected smtp:HOST:PORT or lmtp:...");
            o.routes.push_back(std::move(r));
        }
    }
    s.known("routes");
    s.no_unknown_keys();
    if (t.contains("tls_policy")) s.one_of("tls_policy", o.tls_policy, kPolicies);
    if (o.client_certificate.empty() != o.client_key.empty())
        s.fail(t, o.client_certificate.empty() ? "client_certificate" : "client_key",
               "client_certificate and client_key go together");
    if (t.contains("port")) s.positive("port", o.port);
    if (t.contains("connections_per_destination"))
        s.positive("connections_per_destination", o.connections_per_destination);
    if (t.contains("queue_workers")) {
        s.positive("queue_workers", o.queue_workers);
        if (o.queue_workers > kMaxQueueWorkers)
            s.fail(*t.get("queue_workers"), "queue_workers",
                   "must be at most " + std::to_string(kMaxQueueWorkers));
    }
    if (o.retry_max < o.retry_first) s.fail(t, "retry_max", "must not be shorter than retry_first");
}

void read_dns(const toml::table& t, Dns& d) {
    Table s(t, "dns");
    s.get("servers", d.servers);
    s.get("timeout_ms", d.timeout);
    s.get("tries", d.tries);
    s.get("ipv6", d.ipv6);
    s.no_unknown_keys();
    // c-ares takes both as int, per query: a minute and ten tries are already generous.
    if (t.contains("tries") && (d.tries == 0 || d.tries > 10))
        s.fail(*t.get("tries"), "tries", "must be between 1 and 10");
    if (d.timeout > std::chrono::minutes(1))
        s.fail(*t.get("timeout_ms"), "timeout_ms", "at most 60000 milliseconds per try");
}

// A host name as SNI carries it (RFC 6066 3): LDH labels, no trailing dot; "*." may
// lead for a wildcard entry.
bool valid_sni_name(std::string_view n) {
    if (n.starts_with("*.")) n.remove_prefix(2);
    if (n.empty() || n.size() > 253) return false;
    std::size_t label = 0;
    for (std::size_t i = 0; i < n.size(); ++i) {
        char c = n[i];
        if (c == '.') {
            if (label == 0 || n[i - 1] == '-') return false;
            label = 0;
            continue;
        }
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && label > 0);
        if (!ok || ++label > 63) return false;
    }
    return label > 0 && n.back() != '-';
}

std::vector<SniCertificate> read_sni(const toml::node& node, const std::string& listener_path) {
    auto arr = node.as_array();
    if (!arr || !arr->is_array_of_tables())
        throw ParseError("expected [[listener.sni]] tables", node.source().begin.line,
                         listener_path + ".sni");
    std::vector<SniCertificate> out;
    std::set<std::string> names;
    for (std::size_t i = 0; i < arr->size(); ++i) {
        const auto& t = *arr->get(i)->as_table();
        Table s(t, listener_path + ".sni[" + std::to_string(i + 1) + "]");
        SniCertificate c;
        s.get("name", c.name);
        s.get("certificate", c.certificate);
        s.get("key", c.key);
        s.no_unknown_keys();
        for (auto& ch : c.name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        if (!t.contains("name")) s.fail(t, "name", "every SNI entry needs a name");
        if (!valid_sni_name(c.name)) s.fail(*t.get("name"), "name", "not a host name (or *.domain)");
        if (!names.insert(c.name).second)
            s.fail(*t.get("name"), "name", "duplicate SNI name '" + c.name + "'");
        if (c.certificate.empty()) s.fail(t, "certificate", "every SNI entry needs a certificate");
        if (c.key.empty()) s.fail(t, "key", "every SNI entry needs a key");
        out.push_back(std::move(c));
    }
    return out;
}

void read_store(const toml::table& t, Store& st) {
    Table s(t, "store");
    s.get("backend", st.backend);
    s.get("path", st.path);
    s.get("conninfo", st.conninfo);
    s.get("password_file", st.password_file);
    s.get("pool_size", st.pool_size);
    s.get("blob_dir", st.blob_dir);
    s.get("spool_dir", st.spool_dir);
    s.get("node", st.node);
    s.get("claim_lease", st.claim_lease);
    s.get("file_sync", st.file_sync);
    s.no_unknown_keys();
    s.one_of("backend", st.backend, {"sqlite", "postgresql"});
    s.one_of("file_sync", st.file_sync, {"file", "file_system"});
    // SQLite is one process's database: there is nothing to claim from other nodes.
    if (st.backend == "sqlite" && (t.contains("node") || t.contains("claim_lease")))
        s.fail(t, t.contains("node") ? "node" : "claim_lease",
               "only for backend = \"postgresql\" (several nodes)");
    // The conninfo may hold a password: messages name the key, never echo the value.
    if (st.backend == "postgresql" && st.conninfo.empty())
        s.fail(t, "conninfo",
               "backend = \"postgresql\" needs a conninfo (e.g. \"host=db1 dbname=pecd user=pecd\")");
    if (st.backend == "sqlite" && (t.contains("conninfo") || t.contains("password_file")))
        s.fail(t, t.contains("conninfo") ? "conninfo" : "password_file", "only for backend = \"postgresql\"");
    if (st.backend == "postgresql" && t.contains("path"))
        s.fail(*t.get("path"), "path", "only for backend = \"sqlite\"");
    if (t.contains("pool_size") && (st.pool_size == 0 || st.pool_size > 256))
        s.fail(*t.get("pool_size"), "pool_size", "must be between 1 and 256");
}

// A retention that cannot be turned into a cut-off date is refused here, at start, rather
// than by every purge (core/calendar.hpp).
void retention_at_most_max(const Table& s, const toml::table& t, unsigned months) {
    if (months > static_cast<unsigned>(kMaxRetentionMonths))
        s.fail(*t.get("retention_months"), "retention_months",
               "at most " + std::to_string(kMaxRetentionMonths) + " months (100 years)");
}

void read_antivirus(const toml::table& t, Antivirus& a) {
    Table s(t, "antivirus");
    s.get("enabled", a.enabled);
    s.get("socket", a.socket);
    s.get("address", a.address);
    s.get("connect_timeout", a.connect_timeout);
    s.get("timeout", a.timeout);
    s.get("sessions", a.sessions);
    s.get("quarantine_dir", a.quarantine_dir);
    s.get("retention_months", a.retention_months);
    s.no_unknown_keys();
    if (t.contains("socket") && t.contains("address"))
        s.fail(*t.get("address"), "address", "set either socket (unix) or address (TCP), not both");
    if (a.address.empty() && (a.socket.empty() || a.socket.front() != '/'))
        s.fail(t.contains("socket") ? *t.get("socket") : t, "socket",
               "expected an absolute path to clamd's socket");
    if (!a.address.empty()) {
        auto colon = a.address.rfind(':');
        auto port = colon == std::string::npos ? std::string() : a.address.substr(colon + 1);
        bool digits =
            !port.empty() && port.size() <= 5 && port.find_first_not_of("0123456789") == std::string::npos;
        if (colon == 0 || !digits || std::stoul(port) == 0 || std::stoul(port) > 65535)
            s.fail(*t.get("address"), "address", "expected host:port (e.g. 127.0.0.1:3310)");
    }
    if (a.retention_months < 30)
        s.fail(*t.get("retention_months"), "retention_months",
               "infected messages must be kept at least 30 months (pec.md 7)");
    retention_at_most_max(s, t, a.retention_months);
}

void read_pec(const toml::table& t, Pec& p) {
    Table s(t, "pec");
    p.enabled = true;
    s.get("enabled", p.enabled);
    s.get("provider_name", p.provider_name);
    s.get("domain", p.domain);
    s.get("domains", p.domains);
    s.get("service_mailbox", p.service_mailbox);
    s.get("access_listeners", p.access_listeners);
    s.get("node_id", p.node_id);
    s.get("signing_certificate", p.signing_certificate);
    s.get("signing_key", p.signing_key);
    s.get("pkcs11_module", p.pkcs11_module);
    s.get("pkcs11_token", p.pkcs11_token);
    s.get("pkcs11_key_label", p.pkcs11_key_label);
    s.get("pkcs11_pin_file", p.pkcs11_pin_file);
    s.get("trust_anchors", p.trust_anchors);
    s.get("crl_file", p.crl_file);
    s.get("max_recipients", p.max_recipients);
    s.get("max_volume", p.max_volume);
    s.get("timer_interval", p.timer_interval);
    s.get("notice24_after", p.notice24_after);
    s.no_unknown_keys();
    if (!p.enabled) return;
    if (p.provider_name.empty()) s.fail(t, "provider_name", "required: the provider's name for daticert");
    if (p.signing_certificate.empty())
        s.fail(t, "signing_certificate", "required: the provider's signing certificate");
    if (p.pkcs11_module.empty() == p.signing_key.empty())
        s.fail(t, "signing_key", "set either signing_key (PEM) or pkcs11_module (HSM)");
    if (!p.pkcs11_module.empty() && (p.pkcs11_token.empty() || p.pkcs11_key_label.empty()))
        s.fail(t, "pkcs11_token", "an HSM key needs pkcs11_token and pkcs11_key_label");
    if (p.trust_anchors.empty())
        s.fail(t, "trust_anchors", "required: the roots of provider signing certificates");
    if (p.max_recipients < 50)
        s.fail(*t.get("max_recipients"), "max_recipients", "must be at least 50 (pec.md 5.1)");
    if (p.max_volume < (30ull << 20))
        s.fail(*t.get("max_volume"), "max_volume", "must be at least 31457280 (30 MB, pec.md 5.1)");
    if (p.notice24_after < std::chrono::hours(22) || p.notice24_after > std::chrono::hours(24))
        s.fail(*t.get("notice24_after"), "notice24_after",
               "must lie between 79200 and 86400 seconds (pec.md 5.4)");
}

void read_log(const toml::table& t, LegalLog& l) {
    Table s(t, "log");
    s.get("enabled", l.enabled);
    s.get("tsa_url", l.tsa_url);
    s.get("tsa_anchors", l.tsa_anchors);
    s.get("tsa_listen", l.tsa_listen);
    s.get("segment_interval", l.segment_interval);
    s.get("retention_months", l.retention_months);
    s.no_unknown_keys();
    if (!l.tsa_url.empty() && !l.tsa_url.starts_with("http://") && !l.tsa_url.starts_with("https://"))
        s.fail(*t.get("tsa_url"), "tsa_url", "expected an http:// or https:// URL");
    if (!l.tsa_listen.empty() && l.tsa_listen.rfind(':') == std::string::npos)
        s.fail(*t.get("tsa_listen"), "tsa_listen", "expected address:port");
    if (l.retention_months < 30)
        s.fail(*t.get("retention_months"), "retention_months",
               "the legal log is kept at least 30 months (pec.md 7)");
    retention_at_most_max(s, t, l.retention_months);
}

void read_api(const toml::table& t, Api& a) {
    Table s(t, "api");
    a.enabled = true;
    s.get("enabled", a.enabled);
    s.get("listen", a.listen);
    s.get("certificate", a.certificate);
    s.get("key", a.key);
    s.get("client_ca", a.client_ca);
    s.get("allow", a.allow);
    s.get("issuer", a.issuer);
    s.get("audience", a.audience);
    s.get("jwks_file", a.jwks_file);
    s.get("jwks_url", a.jwks_url);
    s.get("jwks_ca", a.jwks_ca);
    s.get("jwks_refresh", a.jwks_refresh);
    s.get("jwks_min_refresh", a.jwks_min_refresh);
    s.get("leeway", a.leeway);
    s.get("max_body", a.max_body);
    s.get("max_connections", a.max_connections);
    s.get("idle_timeout", a.idle_timeout);
    s.get("closure_sweep_interval", a.closure_sweep_interval);
    s.no_unknown_keys();
    if (!a.enabled) return;
    if (!split_host_port(a.listen))
        s.fail(t.contains("listen") ? *t.get("listen") : t, "listen", "expected address:port");
    if (a.client_ca.empty())
        s.fail(t, "client_ca", "required: the API accepts only clients with a certificate from this CA");
    s.certificate_pair(t, a.certificate, a.key);
    if (a.issuer.empty()) s.fail(t, "issuer", "required: the token issuer (iss) to accept");
    if (a.audience.empty()) s.fail(t, "audience", "required: the token audience (aud) to accept");
    if (a.jwks_file.empty() == a.jwks_url.empty())
        s.fail(t, "jwks_file", "set exactly one of jwks_file and jwks_url (the token signing keys)");
    if (!a.jwks_url.empty() && !a.jwks_url.starts_with("https://"))
        s.fail(*t.get("jwks_url"), "jwks_url", "expected an https:// URL");
    if (a.allow.empty()) s.fail(*t.get("allow"), "allow", "an empty allow-list would refuse every client");
    if (t.contains("max_body")) s.positive("max_body", a.max_body);
    if (t.contains("max_connections")) s.positive("max_connections", a.max_connections);
}

void read_index(const toml::table& t, Index& x) {
    Table s(t, "index");
    s.get("source", x.source);
    s.get("file", x.file);
    s.get("url", x.url);
    s.get("ldap_uri", x.ldap_uri);
    s.get("ldap_base", x.ldap_base);
    s.get("ldap_bind_dn", x.ldap_bind_dn);
    s.get("ldap_password_file", x.ldap_password_file);
    s.get("trust_anchor", x.trust_anchor);
    s.get("ca_file", x.ca_file);
    s.get("cache_file", x.cache_file);
    s.get("refresh_interval", x.refresh_interval);
    s.get("retry_interval", x.retry_interval);
    s.get("timeout", x.timeout);
    s.no_unknown_keys();
    s.one_of("source", x.source, {"none", "file", "https", "ldap"});
    if (x.source == "file" && x.file.empty()) s.fail(t, "file", "source = \"file\" needs a file");
    if (x.source == "https" && x.url.rfind("https://", 0) != 0)
        s.fail(t, "url", "source = \"https\" needs an https:// url");
    // An index downloaded over the Internet is only trusted when signed (pec.md 6.2).
    if (x.source == "https" && x.trust_anchor.empty())
        s.fail(t, "trust_anchor", "source = \"https\" needs a trust_anchor to verify the signed LDIF");
    if (x.source == "ldap" && x.ldap_uri.empty())
        s.fail(t, "ldap_uri", "source = \"ldap\" needs an ldap_uri");
}

Listener read_listener(const toml::table& t, std::size_t i) {
    Listener l;
    Table s(t, "listener[" + std::to_string(i + 1) + "]");
    s.get("name", l.name);
    s.get("address", l.address);
    s.get("port", l.port);
    s.get("tls", l.tls);
    s.get("auth", l.auth);
    s.get("require_auth", l.require_auth);
    s.get("sender_must_match_auth", l.sender_must_match_auth);
    s.get("lmtp", l.lmtp);
    s.get("certificate", l.certificate);
    s.get("key", l.key);
    s.known("sni");
    s.no_unknown_keys();
    if (auto sni = t.get("sni")) l.sni = read_sni(*sni, "listener[" + std::to_string(i + 1) + "]");
    if (l.name.empty()) s.fail(t, "name", "every listener needs a name");
    if (!t.contains("port")) s.fail(t, "port", "every listener needs a port");
    s.one_of("tls", l.tls, {"none", "starttls", "starttls-required", "implicit"});
    if (l.require_auth && !l.auth) s.fail(*t.get("require_auth"), "require_auth", "needs auth = true");
    if (l.auth && l.tls == "none")
        s.fail(*t.get("auth"), "auth", "AUTH is only offered over TLS; set tls to starttls or implicit");
    s.certificate_pair(t, l.certificate, l.key);
    if (!l.sni.empty() && l.tls == "none")
        s.fail(*t.get("sni"), "sni", "SNI certificates need TLS on the listener");
    return l;
}

}  // namespace

Config parse_config(std::string_view text, const std::string& source_name) {
    toml::table root;
    try {
        root = toml::parse(text, source_name);
    } catch (const toml::parse_error& e) {
        throw ParseError(std::string(e.description()), e.source().begin.line, source_name);
    }
    Config c;
    Table top(root, "");
    std::string data_dir;
    top.get("hostname", c.hostname);
    top.get("data_dir", data_dir);
    top.get("log_level", c.log_level);
    top.get("threads", c.threads);
    // [antivirus] is read here and taken out of the root table, so the section and
    // unknown-key checks below need not know it.
    if (auto* av = root.get("antivirus")) {
        if (!av->is_table()) top.fail(*av, "antivirus", "expected a table [antivirus]");
        read_antivirus(*av->as_table(), c.antivirus);
        root.erase("antivirus");
    }
    std::set<std::string> sections{"limits", "tls",   "listener", "domains", "outbound", "dns",
                                   "store",  "index", "pec",      "log",     "api"};
    for (auto& [k, node] : root) {
        std::string key(k.str());
        if (!sections.count(key)) continue;
        if (key == "limits") {
            if (!node.is_table()) top.fail(node, "limits", "expected a table [limits]");
            read_limits(*node.as_table(), c.limits);
        } else if (key == "tls") {
            if (!node.is_table()) top.fail(node, "tls", "expected a table [tls]");
            read_tls(*node.as_table(), c.tls);
        } else if (key == "outbound") {
            if (!node.is_table()) top.fail(node, "outbound", "expected a table [outbound]");
            read_outbound(*node.as_table(), c.outbound);
        } else if (key == "store") {
            if (!node.is_table()) top.fail(node, "store", "expected a table [store]");
            read_store(*node.as_table(), c.store);
        } else if (key == "index") {
            if (!node.is_table()) top.fail(node, "index", "expected a table [index]");
            read_index(*node.as_table(), c.index);
        } else if (key == "pec") {
            if (!node.is_table()) top.fail(node, "pec", "expected a table [pec]");
            read_pec(*node.as_table(), c.pec);
        } else if (key == "log") {
            if (!node.is_table()) top.fail(node, "log", "expected a table [log]");
            read_log(*node.as_table(), c.log);
        } else if (key == "api") {
            if (!node.is_table()) top.fail(node, "api", "expected a table [api]");
            read_api(*node.as_table(), c.api);
        } else if (key == "dns") {
            if (!node.is_table()) top.fail(node, "dns", "expected a table [dns]");
            read_dns(*node.as_table(), c.dns);
        } else if (key == "listener") {
            auto arr = node.as_array();
            if (!arr || !arr->is_array_of_tables())
                top.fail(node, "listener", "expected [[listener]] tables");
            for (std::size_t i = 0; i < arr->size(); ++i)
                c.listeners.push_back(read_listener(*arr->get(i)->as_table(), i));
        } else if (key == "domains") {
            auto arr = node.as_array();
            if (!arr) top.fail(node, "domains", "expected an array of domain names");
            for (auto& d : *arr) {
                auto v = d.value<std::string>();
                if (!v || v->empty()) top.fail(d, "domains", "expected a domain name string");
                c.domains.push_back(*v);
            }
        }
    }
    // Top-level scalars and the sections above are known; anything else is a typo.
    for (auto& [k, node] : root) {
        std::string key(k.str());
        if (!sections.count(key) && key != "hostname" && key != "data_dir" && key != "log_level" &&
            key != "threads")
            top.fail(node, key.c_str(), "unknown key");
    }
    if (data_dir.empty()) throw ParseError("required: where pecd keeps its data", 0, "data_dir");
    c.data_dir = data_dir;
    if (c.threads == 0 || c.threads > 256) throw ParseError("must be between 1 and 256", 0, "threads");
    if (c.listeners.empty()) throw ParseError("at least one [[listener]] is required", 0, "listener");
    std::set<std::string> names;
    for (std::size_t i = 0; i < c.listeners.size(); ++i)
        if (!names.insert(c.listeners[i].name).second)
            throw ParseError("duplicate listener name '" + c.listeners[i].name + "'", 0,
                             "listener[" + std::to_string(i + 1) + "].name");
    if (c.log_level != "trace" && c.log_level != "debug" && c.log_level != "info" && c.log_level != "warn" &&
        c.log_level != "error")
        throw ParseError("must be one of: trace, debug, info, warn, error", 0, "log_level");
    // Every API request is audited in the legal log, which the PEC service keeps.
    if (c.api.enabled && (!c.pec.enabled || !c.log.enabled))
        throw ParseError("the API's audit trail is the legal log: it needs [pec] and [log] on", 0,
                         "api.enabled");
    // The provider's mail domain defaults to the first PEC domain (its notices come from
    // posta-certificata@ it, and the PEC message ids end in it).
    if (c.pec.enabled && c.pec.domain.empty()) {
        const auto& served = c.pec.domains.empty() ? c.domains : c.pec.domains;
        if (served.empty())
            throw ParseError("no PEC domain: set [pec] domain, or list the domains served", 0, "pec.domain");
        c.pec.domain = served.front();
    }
    return c;
}

Config load_config(const std::filesystem::path& path) {
    auto text = fs::read_file(path);
    auto c = parse_config(text, path.string());
    c.source = path;
    return c;
}

std::optional<std::pair<std::string, unsigned>> split_host_port(const std::string& v) {
    auto colon = v.rfind(':');
    if (colon == std::string::npos || colon == 0) return std::nullopt;
    auto host = v.substr(0, colon);
    auto port = v.substr(colon + 1);
    if (host.front() == '[') {
        if (host.size() < 3 || host.back() != ']') return std::nullopt;
        host = host.substr(1, host.size() - 2);
    }
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
        return std::nullopt;
    auto n = std::stoul(port);
    if (n > 65535) return std::nullopt;
    return std::make_pair(host, static_cast<unsigned>(n));
}

std::filesystem::path quarantine_dir(const Config& c) {
    return c.antivirus.quarantine_dir.empty() ? c.data_dir / "quarantine" : c.antivirus.quarantine_dir;
}

Config embedded_default(const std::filesystem::path& data_dir) {
    Config c;
    c.data_dir = data_dir;
    c.hostname = "localhost";
    c.domains = {"pec.localhost"};
    Listener mx;
    mx.name = "mx";
    mx.port = 2525;
    mx.tls = "starttls";
    Listener sub;
    sub.name = "submission";
    sub.port = 5587;
    sub.tls = "starttls-required";
    sub.auth = sub.require_auth = sub.sender_must_match_auth = true;
    Listener subs = sub;
    subs.name = "submissions";
    subs.port = 5465;
    subs.tls = "implicit";
    c.listeners = {mx, sub, subs};
    // clamd of the embedded default: scripts/run-default.sh starts one there.
    c.antivirus.socket = (std::filesystem::absolute(data_dir) / "clamav" / "clamd.sock").string();
    return c;
}

}  // namespace pecd::config
