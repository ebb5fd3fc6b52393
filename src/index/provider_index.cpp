// provider_index.cpp - building and querying the in-memory provider index
#include "index/provider_index.hpp"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <algorithm>
#include <array>

#include "core/strings.hpp"
#include "crypto/cms.hpp"

namespace pecd::index {
namespace {

constexpr std::size_t kMaxDomain = 255;

// Lower-cases into a caller's buffer so that a lookup allocates nothing.
std::string_view lower_into(std::string_view s, std::array<char, kMaxDomain>& buf) {
    if (s.size() > buf.size()) return {};
    for (std::size_t i = 0; i < s.size(); ++i) buf[i] = ascii_lower(s[i]);
    return {buf.data(), s.size()};
}

bool is_hex40(std::string_view h) {
    return h.size() == 40 && std::all_of(h.begin(), h.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
           });
}

bool valid_domain(std::string_view d) {
    if (d.empty() || d.size() > 253 || d.front() == '.' || d.find("..") != std::string_view::npos)
        return false;
    return std::all_of(d.begin(), d.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
    });
}

// addr-spec with dot-atom on both sides, as pec.md 6.1 requires of mailReceipt.
bool valid_mailbox(std::string_view a) {
    auto at = a.find('@');
    if (at == std::string_view::npos || at == 0 || at + 1 >= a.size() || a.find('@', at + 1) != a.npos)
        return false;
    return std::none_of(a.begin(), a.end(), [](char c) {
        return c == ' ' || c == '<' || c == '>' || c == '"' || c == '(' || c == ')' || c == ',';
    });
}

std::string sha1_hex(std::string_view der) {
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const unsigned char*>(der.data()), der.size(), md);
    return to_hex(std::string_view(reinterpret_cast<char*>(md), sizeof md));
}

bool parses_as_x509(std::string_view der) {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
    X509* x = d2i_X509(nullptr, &p, static_cast<long>(der.size()));
    if (!x) return false;
    bool whole = p == reinterpret_cast<const unsigned char*>(der.data()) + der.size();
    X509_free(x);
    return whole;
}

// The whole certificate: X509_cmp compares the cached SHA-1 and the to-be-signed encoding;
// the signature algorithm and value complete it (all cached at parse time, no re-encoding).
bool same_certificate(X509* a, X509* b) {
    if (X509_cmp(a, b) != 0) return false;
    const ASN1_BIT_STRING *sig_a = nullptr, *sig_b = nullptr;
    const X509_ALGOR *alg_a = nullptr, *alg_b = nullptr;
    X509_get0_signature(&sig_a, &alg_a, a);
    X509_get0_signature(&sig_b, &alg_b, b);
    return sig_a && sig_b && ASN1_STRING_cmp(sig_a, sig_b) == 0 && X509_ALGOR_cmp(alg_a, alg_b) == 0;
}

bool is_provider_entry(const LdifEntry& e) {
    for (auto* oc : e.values("objectClass"))
        if (iequals(oc->value, "provider")) return true;
    return !e.has("objectClass") && e.has("providerName");
}

bool first_rdn_is(std::string_view dn, std::string_view type) {
    auto n = normalize_dn(dn);
    return istarts_with(n, std::string(type) + "=");
}

struct Builder {
    std::vector<Problem>* problems;
    void report(const LdifEntry& e, std::string message) {
        if (problems) problems->push_back({e.line, e.dn, std::move(message)});
    }

    // The record as a Provider, or null when a MUST attribute is missing or unusable.
    std::shared_ptr<Provider> make(const LdifEntry& e) {
        static constexpr const char* kMust[] = {"providerName", "mailReceipt", "managedDomains",
                                                "providerCertificateHash", "providerCertificate"};
        for (auto* must : kMust)
            if (!e.has(must)) {
                report(e, std::string("missing required attribute ") + must + "; record left out");
                return nullptr;
            }
        auto p = std::make_shared<Provider>();
        p->dn = e.dn;
        p->name = e.first("providerName");
        p->unit = e.first("providerUnit");
        if (p->unit.empty() && first_rdn_is(e.dn, "providerUnit")) {
            auto n = e.dn.substr(e.dn.find('=') + 1);
            p->unit = std::string(trim(n.substr(0, n.find(','))));
        }
        p->mail_receipt = std::string(trim(e.first("mailReceipt")));
        if (!valid_mailbox(p->mail_receipt))
            report(e, "mailReceipt \"" + p->mail_receipt + "\" is not an address");
        p->ldif_url = e.first("LDIFLocationURL");
        p->description = e.first("description");
        if (!p->unit.empty() && !p->ldif_url.empty())
            report(e, "a providerUnit record must not carry LDIFLocationURL");
        for (auto* v : e.values("managedDomains")) {
            std::string d = to_lower(trim(v->value));
            if (!d.empty() && d.back() == '.') d.pop_back();
            if (!valid_domain(d)) {
                report(e, "managedDomains value \"" + v->value + "\" is not a domain name; ignored");
                continue;
            }
            if (std::find(p->domains.begin(), p->domains.end(), d) == p->domains.end())
                p->domains.push_back(d);
        }
        for (auto* v : e.values("providerCertificate")) {
            if (!parses_as_x509(v->value)) {
                report(e, "providerCertificate (line " + std::to_string(v->line) +
                              ") is not a DER X.509 certificate; record left out");
                return nullptr;
            }
            p->certificates_der.push_back(v->value);
        }
        std::vector<std::string> computed;
        for (auto& der : p->certificates_der) computed.push_back(sha1_hex(der));
        for (auto* v : e.values("providerCertificateHash")) {
            std::string h = to_lower(trim(v->value));
            if (!is_hex40(h)) {
                report(e, "providerCertificateHash \"" + v->value + "\" is not a hex SHA-1; ignored");
                continue;
            }
            if (std::find(computed.begin(), computed.end(), h) == computed.end())
                report(e, "providerCertificateHash " + h + " matches none of the record's certificates");
            p->certificate_hashes.push_back(h);
        }
        for (auto& h : computed)
            if (std::find(p->certificate_hashes.begin(), p->certificate_hashes.end(), h) ==
                p->certificate_hashes.end())
                report(e, "certificate with SHA-1 " + h +
                              " has no providerCertificateHash; not usable for lookups");
        if (p->certificate_hashes.empty()) {
            report(e, "no usable providerCertificateHash; record left out");
            return nullptr;
        }
        if (p->domains.empty()) report(e, "no usable managedDomains");
        return p;
    }
};

}  // namespace

std::string Problem::describe() const {
    std::string s;
    if (line) s += "line " + std::to_string(line) + ": ";
    if (!dn.empty()) s += dn + ": ";
    return s + message;
}

IndexPtr build_index(const std::vector<LdifEntry>& entries, std::vector<Problem>* problems) {
    auto index = std::make_shared<ProviderIndex>();
    Builder b{problems};
    std::vector<std::pair<const LdifEntry*, ProviderPtr>> units;
    for (auto& e : entries) {
        if (!is_provider_entry(e)) {
            if (iequals(normalize_dn(e.dn), "o=postacert"))
                index->directory_url_ = e.first("LDIFLocationURL");
            continue;
        }
        auto p = b.make(e);
        if (!p) continue;
        ProviderPtr rec = p;
        auto name = to_lower(p->name);
        if (p->unit.empty()) {
            if (!index->main_by_name_.emplace(name, rec).second) {
                b.report(e, "a second main record for provider \"" + p->name + "\"; record left out");
                continue;
            }
            ++index->counts_.providers;
        } else {
            units.emplace_back(&e, rec);
            ++index->counts_.units;
        }
        index->records_.push_back(rec);
        index->counts_.certificates += p->certificates_der.size();
        for (auto& d : p->domains) {
            auto [it, inserted] = index->domains_.emplace(d, rec);
            if (!inserted)
                b.report(e, "domain " + d + " is already managed by " + it->second->dn + "; ignored here");
        }
        for (auto& der : p->certificates_der) {
            auto h = sha1_hex(der);
            if (std::find(p->certificate_hashes.begin(), p->certificate_hashes.end(), h) ==
                p->certificate_hashes.end())
                continue;
            const unsigned char* in = reinterpret_cast<const unsigned char*>(der.data());
            std::shared_ptr<X509> x(d2i_X509(nullptr, &in, static_cast<long>(der.size())), X509_free);
            if (x) index->certificates_[h].emplace_back(rec, std::move(x));
        }
        for (auto& h : p->certificate_hashes) {
            auto& list = index->hashes_[h];
            for (auto& other : list)
                if (!iequals(other->name, p->name))
                    b.report(e, "certificate hash " + h + " is also published by " + other->dn);
            list.push_back(rec);
        }
    }
    for (auto& [e, rec] : units)
        if (!index->main_by_name_.count(to_lower(rec->name)))
            b.report(*e, "providerUnit record without a main record for provider \"" + rec->name + "\"");
    index->counts_.domains = index->domains_.size();
    // Rebuilt in one pass so the keys sit together in memory rather than interleaved with
    // the parse's allocations: fewer cache misses per lookup.
    ProviderIndex::Map compact;
    compact.max_load_factor(0.5f);
    compact.reserve(index->domains_.size());
    for (auto& [k, v] : index->domains_) compact.emplace(k, v);
    index->domains_.swap(compact);
    return index;
}

IndexPtr index_from_ldif(std::string_view text, std::vector<Problem>* problems) {
    return build_index(apply_ldif(parse_ldif(text)), problems);
}

ProviderPtr ProviderIndex::by_domain(std::string_view domain) const {
    if (!domain.empty() && domain.back() == '.') domain.remove_suffix(1);
    std::array<char, kMaxDomain> buf;
    auto key = lower_into(domain, buf);
    if (key.empty()) return nullptr;
    auto it = domains_.find(key);
    return it == domains_.end() ? nullptr : it->second;
}

ProviderPtr ProviderIndex::by_hash(std::string_view sha1_hex) const {
    std::array<char, kMaxDomain> buf;
    auto key = lower_into(trim(sha1_hex), buf);
    auto it = hashes_.find(key);
    return it == hashes_.end() || it->second.empty() ? nullptr : it->second.front();
}

ProviderPtr ProviderIndex::by_certificate(X509* cert) const {
    if (!cert) return nullptr;
    // X509_digest returns the SHA-1 OpenSSL cached when it parsed the certificate.
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!X509_digest(cert, EVP_sha1(), md, &n) || n != SHA_DIGEST_LENGTH) return nullptr;
    static constexpr char kHex[] = "0123456789abcdef";
    std::array<char, 2 * SHA_DIGEST_LENGTH> hex;
    for (unsigned i = 0; i < n; ++i) {
        hex[2 * i] = kHex[md[i] >> 4];
        hex[2 * i + 1] = kHex[md[i] & 15];
    }
    auto it = certificates_.find(std::string_view(hex.data(), hex.size()));
    if (it == certificates_.end()) return nullptr;
    for (auto& [provider, published] : it->second)
        if (same_certificate(cert, published.get())) return provider;
    return nullptr;
}

ProviderPtr ProviderIndex::main_record(const Provider& p) const {
    auto it = main_by_name_.find(to_lower(p.name));
    return it == main_by_name_.end() ? nullptr : it->second;
}

LiveIndex::LiveIndex() : current_(std::make_shared<const ProviderIndex>()) {}

void LiveIndex::store(IndexPtr index) {
    {
        std::lock_guard lock(current_mutex_);
        current_.swap(index);
    }  // the index replaced goes with `index`, outside the lock
    {
        std::lock_guard lock(ready_mutex_);
        ready_.store(true, std::memory_order_release);
    }
    ready_cv_.notify_all();
}

bool LiveIndex::wait_ready(std::chrono::milliseconds timeout) const {
    std::unique_lock lock(ready_mutex_);
    return ready_cv_.wait_for(lock, timeout, [&] { return ready(); });
}

}  // namespace pecd::index
