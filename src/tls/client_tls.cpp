// client_tls.cpp - outbound TLS: per-destination policies, peer verification, client contexts
//
// See client_tls.hpp for the contract. The handshake itself never fails on certificate
// grounds (SSL_VERIFY_NONE): OpenSSL still verifies the chain and records the result, and
// judge_peer() decides afterwards, so `may` and `encrypt` deliver over TLS with an
// untrusted certificate and every policy logs the same verification details.
//
// Name matching is written here rather than taken from X509_check_host() because the
// delivery log and `tls-check` must say which presented name matched which reference,
// and because ".domain" references (sub-domains of the destination) are a policy notion.
#include "tls/client_tls.hpp"

#include <openssl/err.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <ctime>
#include <deque>

#include "core/calendar.hpp"
#include "core/error.hpp"
#include "core/strings.hpp"
#include "tls/certificate.hpp"
#include "tls/openssl_error.hpp"

namespace pecd::tls {
namespace {

// AEAD suites with forward secrecy, as on the server, plus DHE-RSA-GCM for older peers:
// still AEAD + forward secrecy, and better than falling back to plain text.
constexpr const char* kClientTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384";

std::string normalized(std::string_view name) {
    std::string n = to_lower(trim(name));
    if (!n.empty() && n.back() == '.') n.pop_back();
    return n;
}

bool is_below(std::string_view name, std::string_view parent) {
    return name.size() > parent.size() + 1 && name.ends_with(parent) &&
           name[name.size() - parent.size() - 1] == '.';
}

int policy_rank(Policy p) {
    return static_cast<int>(p);
}

}  // namespace

Policy parse_policy(std::string_view s) {
    auto v = to_lower(trim(s));
    if (v == "none") return Policy::none;
    if (v == "may") return Policy::may;
    if (v == "encrypt") return Policy::encrypt;
    if (v == "verify") return Policy::verify;
    if (v == "secure") return Policy::secure;
    throw Error("unknown TLS policy '" + std::string(s) +
                "' (expected none, may, encrypt, verify or secure)");
}

std::string_view to_string(Policy p) {
    switch (p) {
        case Policy::none:
            return "none";
        case Policy::may:
            return "may";
        case Policy::encrypt:
            return "encrypt";
        case Policy::verify:
            return "verify";
        case Policy::secure:
            return "secure";
    }
    return "?";
}

void PolicyMap::set(std::string_view key, DestinationPolicy p) {
    auto k = normalized(key);
    if (k.empty() || k == ".") throw Error("TLS policy map: empty destination");
    entries_[k] = std::move(p);
}

DestinationPolicy PolicyMap::lookup(std::string_view domain, bool pec_provider) const {
    auto d = normalized(domain);
    DestinationPolicy found = default_;
    if (auto it = entries_.find(d); it != entries_.end()) {
        found = it->second;
    } else {
        for (auto pos = d.find('.'); pos != std::string::npos; pos = d.find('.', pos + 1)) {
            if (auto parent = entries_.find(std::string_view(d).substr(pos)); parent != entries_.end()) {
                found = parent->second;
                break;
            }
        }
    }
    if (pec_provider && policy_rank(found.policy) < policy_rank(Policy::verify))
        found.policy = Policy::verify;
    return found;
}

bool dns_name_matches(std::string_view presented_in, std::string_view reference_in) {
    auto presented = normalized(presented_in);
    auto reference = normalized(reference_in);
    if (presented.empty() || reference.empty()) return false;
    bool wildcard = presented.starts_with("*.");
    std::string_view rest = wildcard ? std::string_view(presented).substr(2) : std::string_view(presented);
    // '*' anywhere else is a partial-label or nested wildcard: never a match.
    if (rest.find('*') != std::string_view::npos) return false;
    // "*.test" would cover a whole top-level domain.
    if (wildcard && rest.find('.') == std::string_view::npos) return false;
    if (reference.front() == '.') {
        std::string_view parent = std::string_view(reference).substr(1);
        if (wildcard) return rest == parent || is_below(rest, parent);
        return is_below(presented, parent);
    }
    if (!wildcard) return presented == reference;
    auto dot = reference.find('.');
    if (dot == std::string::npos || dot == 0) return false;
    return std::string_view(reference).substr(dot + 1) == rest;
}

NameMatch match_names(const std::vector<std::string>& dns_sans, const std::string& common_name,
                      const std::vector<std::string>& references) {
    bool use_cn = dns_sans.empty();
    std::vector<std::string> presented = use_cn ? std::vector<std::string>{} : dns_sans;
    if (use_cn && !common_name.empty()) presented.push_back(common_name);
    for (const auto& ref : references)
        for (const auto& p : presented)
            if (dns_name_matches(p, ref)) return {true, p, ref, use_cn};
    return {};
}

NameMatch match_certificate(X509* cert, const std::vector<std::string>& references) {
    if (!cert) return {};
    auto info = describe(cert);
    return match_names(info.dns_names, info.common_name, references);
}

std::vector<std::string> reference_names(const DestinationPolicy& p, std::string_view mx_host,
                                         std::string_view destination_domain) {
    if (p.policy == Policy::secure) {
        if (!p.match_names.empty()) return p.match_names;
        auto d = normalized(destination_domain);
        return {d, "." + d};
    }
    return {normalized(mx_host)};
}

StartDecision decide_starttls(Policy p, bool starttls_offered) {
    if (p == Policy::none) return {TlsStep::plain, "TLS policy none"};
    if (starttls_offered) return {TlsStep::starttls, {}};
    if (p == Policy::may) return {TlsStep::plain, "STARTTLS not offered"};
    return {TlsStep::defer, "TLS is required (policy " + std::string(to_string(p)) +
                                ") but the server does not offer STARTTLS"};
}

StartDecision decide_after_handshake_failure(Policy p, std::string_view error) {
    if (p == Policy::none || p == Policy::may)
        return {TlsStep::plain, "TLS handshake failed (" + std::string(error) + "), retrying without TLS"};
    return {TlsStep::defer, "TLS handshake failed: " + std::string(error)};
}

PeerVerdict judge_peer(Policy p, const PeerVerification& v) {
    if (!v.tls) {
        if (p == Policy::none || p == Policy::may) return {true, "delivered without TLS"};
        return {false, "TLS is required (policy " + std::string(to_string(p)) + ")"};
    }
    if (p != Policy::verify && p != Policy::secure) return {true, "TLS without certificate check"};
    if (!v.chain_ok) return {false, "certificate not trusted: " + v.chain_error};
    if (!v.name.matched) {
        std::string presented, expected;
        for (const auto& n : v.certificate_names) presented += (presented.empty() ? "" : ", ") + n;
        for (const auto& n : v.reference_names) expected += (expected.empty() ? "" : ", ") + n;
        return {false, "certificate names [" + presented + "] do not match [" + expected + "]"};
    }
    return {true, "certificate verified, name " + v.name.reference + " matched " + v.name.presented};
}

std::string describe_tls(Policy p, const PeerVerification& v) {
    std::string s = "tls_policy=" + std::string(to_string(p));
    if (!v.tls) return s + " tls=none";
    s += " tls=" + v.protocol + " cipher=" + v.cipher + (v.session_reused ? " resumed=yes" : "");
    s += " chain=" + (v.chain_ok ? std::string("trusted") : "untrusted(" + v.chain_error + ")");
    s += " name=" + (v.name.matched ? v.name.presented + "~" + v.name.reference : std::string("mismatch"));
    return s;
}

ChainReport chain_report(const std::vector<X509*>& sent, const std::vector<X509*>& verified) {
    ChainReport r;
    for (X509* c : sent) r.sent_subjects.push_back(describe(c).subject);
    if (sent.empty()) {
        r.missing = "no certificate sent";
        return r;
    }
    auto was_sent = [&](X509* c) {
        return std::any_of(sent.begin(), sent.end(), [&](X509* s) { return X509_cmp(s, c) == 0; });
    };
    if (!verified.empty()) {
        // The last element is the trust anchor, which servers may leave out.
        for (std::size_t i = 0; i + 1 < verified.size(); ++i) {
            if (!was_sent(verified[i])) {
                r.missing = "intermediate not sent: " + describe(verified[i]).subject;
                return r;
            }
        }
        r.complete = true;
        return r;
    }
    // No chain could be built: follow what was sent to name where it breaks.
    X509* cur = sent.front();
    for (std::size_t steps = 0; steps <= sent.size(); ++steps) {
        auto info = describe(cur);
        if (info.self_issued) {
            r.missing = "root not trusted: " + info.subject;
            return r;
        }
        auto issuer = std::find_if(sent.begin(), sent.end(), [&](X509* c) {
            return c != cur && X509_check_issued(c, cur) == X509_V_OK;
        });
        if (issuer == sent.end()) {
            r.missing = "issuer not sent and not trusted: " + info.issuer;
            return r;
        }
        cur = *issuer;
    }
    r.missing = "certificate chain loops";
    return r;
}

// --- ClientTls ---

// Per destination, a few sessions, newest first. TLS 1.3 tickets are preferably used once
// (RFC 8446 C.4; servers with stateful tickets accept each only once), so get() takes
// one out while others remain. The last one is kept and offered again: some servers
// (Postfix's smtpd among them) send no new ticket on a resumed handshake but accept
// their stateless tickets repeatedly, and a refused ticket only costs a full handshake,
// which brings fresh ones. TLS 1.2 sessions stay for every later connection. Expired
// sessions are dropped.
struct ClientTls::SessionCache {
    static constexpr std::size_t kPerDestination = 8;
    mutable std::mutex mutex;
    std::map<std::string, std::deque<SSL_SESSION*>> sessions;
    ~SessionCache() {
        for (auto& [k, list] : sessions)
            for (SSL_SESSION* s : list) SSL_SESSION_free(s);
    }
    void put(const std::string& key, SSL_SESSION* s) {
        std::lock_guard lock(mutex);
        auto& list = sessions[key];
        list.push_back(s);
        while (list.size() > kPerDestination) {
            SSL_SESSION_free(list.front());
            list.pop_front();
        }
    }
    static bool usable(SSL_SESSION* s) {
        long age = static_cast<long>(std::time(nullptr)) - SSL_SESSION_get_time(s);
        return SSL_SESSION_is_resumable(s) && age < SSL_SESSION_get_timeout(s);
    }
    // Returns a reference the caller owns, or null.
    SSL_SESSION* get(const std::string& key) {
        std::lock_guard lock(mutex);
        auto it = sessions.find(key);
        if (it == sessions.end()) return nullptr;
        auto& list = it->second;
        while (!list.empty()) {
            SSL_SESSION* s = list.back();  // the newest first
            if (!usable(s)) {
                list.pop_back();
                SSL_SESSION_free(s);
                continue;
            }
            if (SSL_SESSION_get_protocol_version(s) >= TLS1_3_VERSION && list.size() > 1) {
                list.pop_back();
                return s;
            }
            // A copy: OpenSSL marks a session not resumable when a connection using it
            // ends without close_notify, which must not spoil the cached one.
            if (SSL_SESSION* copy = SSL_SESSION_dup(s)) return copy;
            return nullptr;
        }
        return nullptr;
    }
    std::size_t size() const {
        std::lock_guard lock(mutex);
        std::size_t n = 0;
        for (const auto& [k, list] : sessions) n += list.size();
        return n;
    }
    void clear() {
        std::lock_guard lock(mutex);
        for (auto& [k, list] : sessions)
            for (SSL_SESSION* s : list) SSL_SESSION_free(s);
        sessions.clear();
    }
};

// The client certificate as each connection gets it: the intermediates are stacked once
// per pair rather than at every handshake.
struct ClientTls::Identity {
    explicit Identity(CheckedPair p) : pair(std::move(p)), intermediates(sk_X509_new_null()) {
        if (!intermediates) throw Error("out of memory for a certificate chain");
        for (std::size_t i = 1; i < pair.chain.size(); ++i) {
            X509_up_ref(pair.chain[i].get());
            sk_X509_push(intermediates, pair.chain[i].get());
        }
    }
    ~Identity() { sk_X509_pop_free(intermediates, X509_free); }
    Identity(const Identity&) = delete;
    Identity& operator=(const Identity&) = delete;
    CheckedPair pair;
    STACK_OF(X509) * intermediates;
};

namespace {

// The trusted roots of a CA file, as a store of their own that connections share.
std::shared_ptr<X509_STORE> read_anchors(const std::filesystem::path& ca_file) {
    std::shared_ptr<X509_STORE> store(X509_STORE_new(), X509_STORE_free);
    if (!store || X509_STORE_load_file(store.get(), ca_file.c_str()) != 1)
        throw Error(openssl_error("CA file " + ca_file.string()));
    return store;
}

int session_key_index() {
    static const int index = SSL_get_ex_new_index(
        0, nullptr, nullptr, nullptr,
        [](void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) { delete static_cast<std::string*>(ptr); });
    return index;
}

int session_cache_index() {
    static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return index;
}

}  // namespace

int ClientTls::on_new_session(SSL* ssl, SSL_SESSION* session) {
    auto* key = static_cast<std::string*>(SSL_get_ex_data(ssl, session_key_index()));
    auto* cache =
        static_cast<SessionCache*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), session_cache_index()));
    if (!key || !cache) return 0;
    // A copy, because OpenSSL marks the original not resumable when the connection ends
    // without close_notify - common once an SMTP peer has answered QUIT - and the SMTP
    // dialogue has its own end-of-session, so truncation is not a concern here.
    if (SSL_SESSION* copy = SSL_SESSION_dup(session)) cache->put(*key, copy);
    return 0;  // OpenSSL keeps its own reference to the original
}

ClientTls::ClientTls(ClientTlsSettings settings)
    : context_(std::make_unique<boost::asio::ssl::context>(boost::asio::ssl::context::tls_client)),
      sessions_(std::make_unique<SessionCache>()) {
    SSL_CTX* ctx = context_->native_handle();
    if (settings.min_version != "1.2" && settings.min_version != "1.3")
        throw Error("tls min_version must be \"1.2\" or \"1.3\", not \"" + settings.min_version + "\"");
    SSL_CTX_set_min_proto_version(ctx, settings.min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    if (SSL_CTX_set_cipher_list(ctx, kClientTls12Ciphers) != 1) throw Error(openssl_error("cipher list"));
    // The stamps are taken before each first read: a change while reading is seen at the
    // next check.
    if (settings.ca_file.empty()) {
        // The system store's directory is looked up as certificates are needed: nothing to reload.
        if (SSL_CTX_set_default_verify_paths(ctx) != 1) throw Error(openssl_error("system trust store"));
    } else {
        ca_file_ = settings.ca_file;
        anchors_watch_ = std::make_unique<FileWatch>(std::vector<std::filesystem::path>{ca_file_});
        anchors_ = read_anchors(ca_file_);
        SSL_CTX_set1_cert_store(ctx, anchors_.get());
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    if (settings.client_certificate) {
        client_pair_ = settings.client_certificate;
        identity_watch_ = std::make_unique<FileWatch>(
            std::vector<std::filesystem::path>{client_pair_->certificate, client_pair_->key});
        identity_ =
            std::make_shared<const Identity>(read_pair(*client_pair_, std::chrono::system_clock::now()));
    }
    if (settings.reuse_sessions) {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
        SSL_CTX_set_ex_data(ctx, session_cache_index(), sessions_.get());
        SSL_CTX_sess_set_new_cb(ctx, &ClientTls::on_new_session);
    } else {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    }
}

ClientTls::~ClientTls() = default;

std::shared_ptr<const ClientTls::Identity> ClientTls::identity() const {
    std::lock_guard lock(mutex_);
    return identity_;
}

void ClientTls::prepare(SSL* ssl, const std::string& server_name, const std::string& session_key) {
    if (!server_name.empty()) SSL_set_tlsext_host_name(ssl, server_name.c_str());
    std::shared_ptr<const Identity> id;
    std::shared_ptr<X509_STORE> anchors;
    std::uint64_t generation = 0;
    {
        std::lock_guard lock(mutex_);
        id = identity_;
        anchors = anchors_;
        generation = generation_;
    }
    // A local fault (the pair was checked when read): the delivery waits, nothing bounces.
    if (id && SSL_use_cert_and_key(ssl, id->pair.leaf(), id->pair.key.get(), id->intermediates, 1) != 1)
        throw TemporaryError(openssl_error("client certificate " + client_pair_->certificate.string()));
    if (anchors && SSL_set1_verify_cert_store(ssl, anchors.get()) != 1)
        throw TemporaryError(openssl_error("CA file " + ca_file_.string()));
    if (session_key.empty()) return;
    // Sessions are kept per client certificate and trust: one resumed after a renewal
    // would still stand for the old certificate at the server, and keep a verification
    // made against roots no longer trusted.
    const std::string key = std::to_string(generation) + " " + session_key;
    delete static_cast<std::string*>(SSL_get_ex_data(ssl, session_key_index()));
    SSL_set_ex_data(ssl, session_key_index(), new std::string(key));
    if (SSL_SESSION* s = sessions_->get(key)) {
        SSL_set_session(ssl, s);
        SSL_SESSION_free(s);
    }
}

PeerVerification ClientTls::inspect(SSL* ssl, const std::vector<std::string>& references) const {
    PeerVerification v;
    v.tls = true;
    v.protocol = SSL_get_version(ssl);
    v.cipher = SSL_get_cipher_name(ssl);
    v.session_reused = SSL_session_reused(ssl) == 1;
    v.reference_names = references;
    X509* peer = SSL_get0_peer_certificate(ssl);
    long result = SSL_get_verify_result(ssl);
    v.chain_ok = peer && result == X509_V_OK;
    v.chain_error = peer ? (result == X509_V_OK ? "" : X509_verify_cert_error_string(result))
                         : "no certificate presented";
    if (peer) {
        auto info = describe(peer);
        v.subject = info.subject;
        v.certificate_names = info.dns_names.empty() && !info.common_name.empty()
                                  ? std::vector<std::string>{info.common_name}
                                  : info.dns_names;
        v.name = match_names(info.dns_names, info.common_name, references);
    }
    return v;
}

ChainReport ClientTls::inspect_chain(SSL* ssl) const {
    STACK_OF(X509)* sent_stack = SSL_get_peer_cert_chain(ssl);
    std::vector<X509*> sent;
    for (int i = 0; sent_stack && i < sk_X509_num(sent_stack); ++i)
        sent.push_back(sk_X509_value(sent_stack, i));
    if (sent.empty()) return chain_report(sent, {});
    // Rebuild the chain ignoring dates, so an expired certificate does not hide whether
    // the intermediates were sent.
    X509_STORE_CTX* sctx = X509_STORE_CTX_new();
    X509_STORE* store = nullptr;  // the connection's own roots (set by prepare()), else the context's
    SSL_get0_verify_cert_store(ssl, &store);
    if (!store) store = SSL_CTX_get_cert_store(SSL_get_SSL_CTX(ssl));
    X509_STORE_CTX_init(sctx, store, sent.front(), sent_stack);
    X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(sctx), X509_V_FLAG_NO_CHECK_TIME);
    std::vector<X509*> verified;
    if (X509_verify_cert(sctx) == 1) {
        STACK_OF(X509)* built = X509_STORE_CTX_get0_chain(sctx);
        for (int i = 0; i < sk_X509_num(built); ++i) verified.push_back(sk_X509_value(built, i));
    }
    auto report = chain_report(sent, verified);
    X509_STORE_CTX_free(sctx);
    ERR_clear_error();
    return report;
}

std::size_t ClientTls::cached_sessions() const {
    return sessions_->size();
}

bool ClientTls::reload_if_changed() {
    const auto now = std::chrono::system_clock::now();
    const bool identity = client_pair_ && reload_identity(now);
    const bool anchors = !ca_file_.empty() && reload_anchors(now);
    if (!identity && !anchors) return false;
    {
        std::lock_guard lock(mutex_);
        ++generation_;
    }
    sessions_->clear();
    return true;
}

bool ClientTls::reload_identity(TimePoint now) {
    std::optional<FileStamps> due;
    {
        std::lock_guard lock(mutex_);
        due = identity_watch_->due(now);
    }
    if (!due) return false;
    const auto& path = client_pair_->certificate;
    try {
        auto fresh = std::make_shared<const Identity>(read_pair(*client_pair_, now));
        {
            std::lock_guard lock(mutex_);
            identity_ = std::move(fresh);
            identity_watch_->read(std::move(*due));
        }
        spdlog::info("tls: reloaded outbound client certificate {}", path.string());
        log_expiry();
        return true;
    } catch (const NotYetValid& e) {
        std::lock_guard lock(mutex_);
        if (auto at = to_time_point(e.from)) identity_watch_->defer_until(*at);
        spdlog::warn(
            "tls: outbound client certificate reload deferred, keeping the previous one: {}; it is "
            "tried again then",
            e.what());
    } catch (const std::exception& e) {
        spdlog::error("tls: outbound client certificate reload refused, keeping the previous one: {}",
                      e.what());
    }
    return false;
}

bool ClientTls::reload_anchors(TimePoint now) {
    std::optional<FileStamps> due;
    {
        std::lock_guard lock(mutex_);
        due = anchors_watch_->due(now);
    }
    if (!due) return false;
    try {
        auto fresh = read_anchors(ca_file_);
        {
            std::lock_guard lock(mutex_);
            anchors_ = std::move(fresh);
            anchors_watch_->read(std::move(*due));
        }
        spdlog::info("tls: reloaded outbound CA file {}", ca_file_.string());
        return true;
    } catch (const std::exception& e) {
        spdlog::error("tls: outbound CA file reload refused, keeping the roots in use: {}", e.what());
    }
    return false;
}

void ClientTls::log_expiry() const {
    if (auto id = identity())
        log_validity("tls: outbound client certificate", client_pair_->certificate.string(), id->pair.leaf(),
                     "servers that require a client certificate refuse the handshakes",
                     std::chrono::system_clock::now());
}

}  // namespace pecd::tls
