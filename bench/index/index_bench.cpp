// index_bench.cpp - provider index: load time, memory, lookups per second (one core)
//
// A generated directory of 200 providers and 100 000 managed domains, two certificates
// per provider (renewal overlap), as LDIF and as a signed LDIF (CMS, attached). Measured:
//   BM_Load/plain       LDIF text -> parsed -> indexed
//   BM_Load/signed      CMS verified against the trust anchor, then as above
//   BM_DomainLookup     by_domain() through the LiveIndex, mixed-case names
//   BM_DomainLookupSnapshot the same on the snapshot, without the LiveIndex
//   BM_HashLookup       by_hash() with upper-case hex
//   BM_CertificateLookup by_certificate(): DER, SHA-1, hash probe, full comparison
//   BM_BaselineMap      the same domain keys in a plain std::unordered_map (the floor)
// RSS growth of one loaded index is reported as the counter rss_mb on BM_Load.
// Bars (issue 5): load under 2 s, lookups >= 1 000 000/s.
#include <benchmark/benchmark.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <fstream>
#include <random>
#include <unordered_map>

#include "crypto/cms.hpp"
#include "index/document.hpp"
#include "index/ldif.hpp"
#include "index/provider_index.hpp"

namespace {

using namespace pecd;

constexpr int kProviders = 200;
constexpr int kDomains = 100000;

crypto::X509Ptr make_cert(EVP_PKEY* key, int serial, const std::string& cn, X509* issuer,
                          EVP_PKEY* issuer_key) {
    X509* x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600L * 24 * 365);
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "C", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("IT"), -1, -1,
                               0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()),
                               -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
    X509_set_pubkey(x, key);
    if (!issuer) {  // the trust anchor: a CA certificate
        X509V3_CTX ctx;
        X509V3_set_ctx_nodb(&ctx);
        X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
        if (X509_EXTENSION* ext =
                X509V3_EXT_conf_nid(nullptr, &ctx, NID_basic_constraints, "critical,CA:TRUE")) {
            X509_add_ext(x, ext, -1);
            X509_EXTENSION_free(ext);
        }
    }
    X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256());
    return crypto::X509Ptr(x, crypto::X509Free{});
}

struct Fixture {
    crypto::PkeyPtr key;
    crypto::X509Ptr ca;
    crypto::TrustStore trust;
    std::vector<crypto::X509Ptr> certs;
    std::vector<std::string> domains;  // mixed case, shuffled
    std::vector<std::string> hashes;   // upper-case
    std::string ldif, signed_ldif;

    Fixture() {
        key = crypto::PkeyPtr(EVP_EC_gen("P-256"), crypto::PkeyFree{});
        ca = make_cert(key.get(), 1, "Bench CA", nullptr, nullptr);
        trust.anchors.push_back(ca);
        ldif = "version: 1\n\ndn: o=postacert\nobjectClass: top\nobjectClass: organization\no: postacert\n\n";
        int per = kDomains / kProviders;
        for (int p = 0; p < kProviders; ++p) {
            std::string name = "Provider " + std::to_string(p) + " S.p.A.";
            ldif += "dn: providerName=" + name + ",o=postacert\nobjectClass: top\nobjectClass: provider\n";
            ldif +=
                "providerName: " + name + "\nmailReceipt: ricevute@pec" + std::to_string(p) + ".example\n";
            for (int d = 0; d < per; ++d) {
                std::string dom = "dom" + std::to_string(d) + ".pec" + std::to_string(p) + ".example";
                ldif += "managedDomains: " + dom + "\n";
                dom[0] = 'D';
                domains.push_back(dom);
            }
            for (int c = 0; c < 2; ++c) {
                auto cert = make_cert(key.get(), 100 + 2 * p + c, name, ca.get(), key.get());
                auto hex = crypto::certificate_sha1_hex(cert.get());
                std::string upper = hex;
                for (auto& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
                ldif += "providerCertificateHash: " + upper + "\n";
                ldif +=
                    index::write_ldif_line("providerCertificate;binary", crypto::certificate_der(cert.get()));
                certs.push_back(cert);
                hashes.push_back(upper);
            }
            ldif += "\n";
        }
        crypto::SigningIdentity id;
        id.certificate = make_cert(key.get(), 2, "Bench Index Signer", ca.get(), key.get());
        id.key = key;
        signed_ldif = crypto::cms_sign_attached(id, ldif);
        // Certificates as the reception point sees them: parsed from DER.
        for (auto& c : certs) {
            auto der = crypto::certificate_der(c.get());
            const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
            c = crypto::X509Ptr(d2i_X509(nullptr, &p, static_cast<long>(der.size())), crypto::X509Free{});
        }
        std::mt19937 rng(42);
        std::shuffle(domains.begin(), domains.end(), rng);
        std::shuffle(certs.begin(), certs.end(), rng);
        std::shuffle(hashes.begin(), hashes.end(), rng);
    }
};

Fixture& fixture() {
    static Fixture f;
    return f;
}

double rss_mb() {
    std::ifstream in("/proc/self/statm");
    long pages = 0, resident = 0;
    in >> pages >> resident;
    return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

void BM_Load(benchmark::State& state) {
    auto& f = fixture();
    bool signed_doc = state.range(0) == 1;
    index::DocumentPolicy policy;
    policy.trust = &f.trust;
    policy.require_signature = signed_doc;
    double growth = 0;
    for (auto _ : state) {
        double before = rss_mb();
        auto loaded = index::load_document(signed_doc ? f.signed_ldif : f.ldif, policy);
        // Only the first load grows the heap; later ones reuse the freed memory.
        growth = std::max(growth, rss_mb() - before);
        if (loaded.index->counts().domains != static_cast<std::size_t>(kDomains))
            state.SkipWithError("wrong count");
        benchmark::DoNotOptimize(loaded);
    }
    state.counters["rss_mb"] = growth;
    state.counters["ldif_mb"] = static_cast<double>(f.ldif.size()) / (1024.0 * 1024.0);
}
BENCHMARK(BM_Load)->Arg(0)->Arg(1)->ArgNames({"signed"})->Unit(benchmark::kMillisecond)->Iterations(5);

index::LiveIndex& live() {
    static index::LiveIndex l;
    static bool loaded = [] {
        l.store(index::index_from_ldif(fixture().ldif));
        return true;
    }();
    (void)loaded;
    return l;
}

void BM_DomainLookup(benchmark::State& state) {
    auto& f = fixture();
    auto& l = live();
    std::size_t i = 0, found = 0;
    for (auto _ : state) {
        auto p = l.by_domain(f.domains[i]);
        found += p != nullptr;
        if (++i == f.domains.size()) i = 0;
    }
    if (found != static_cast<std::size_t>(state.iterations())) state.SkipWithError("a lookup missed");
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DomainLookup);

// The same lookups on the snapshot itself: what the LiveIndex indirection costs.
void BM_DomainLookupSnapshot(benchmark::State& state) {
    auto& f = fixture();
    auto index = live().current();
    std::size_t i = 0, found = 0;
    for (auto _ : state) {
        found += index->by_domain(f.domains[i]) != nullptr;
        if (++i == f.domains.size()) i = 0;
    }
    if (found != static_cast<std::size_t>(state.iterations())) state.SkipWithError("a lookup missed");
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DomainLookupSnapshot);

void BM_HashLookup(benchmark::State& state) {
    auto& f = fixture();
    auto index = live().current();
    std::size_t i = 0, found = 0;
    for (auto _ : state) {
        found += index->by_hash(f.hashes[i]) != nullptr;
        if (++i == f.hashes.size()) i = 0;
    }
    if (found != static_cast<std::size_t>(state.iterations())) state.SkipWithError("a lookup missed");
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_HashLookup);

void BM_CertificateLookup(benchmark::State& state) {
    auto& f = fixture();
    auto& l = live();
    std::size_t i = 0, found = 0;
    for (auto _ : state) {
        found += l.by_certificate(f.certs[i].get()) != nullptr;
        if (++i == f.certs.size()) i = 0;
    }
    if (found != static_cast<std::size_t>(state.iterations())) state.SkipWithError("a lookup missed");
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CertificateLookup);

void BM_BaselineMap(benchmark::State& state) {
    auto& f = fixture();
    static std::unordered_map<std::string, int> map = [&] {
        std::unordered_map<std::string, int> m;
        for (std::size_t k = 0; k < f.domains.size(); ++k) m.emplace(f.domains[k], static_cast<int>(k));
        return m;
    }();
    std::size_t i = 0, found = 0;
    for (auto _ : state) {
        found += map.find(f.domains[i]) != map.end();
        if (++i == f.domains.size()) i = 0;
    }
    if (found != static_cast<std::size_t>(state.iterations())) state.SkipWithError("a lookup missed");
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_BaselineMap);

}  // namespace

BENCHMARK_MAIN();
