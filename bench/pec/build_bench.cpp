// build_bench.cpp - PEC build+sign throughput and memory
//
//   BM_RawRsa2048Sign         baseline: EVP_PKEY_sign of a SHA-256 digest with the same
//                             RSA-2048 key (PKCS#1 v1.5), i.e. the most a signer can do
//   BM_CmsSignDetached        crypto::cms_sign_detached alone over 11 KB (the CMS share)
//   BM_BuildTransportEnvelope build+sign of a transport envelope for a 5 KB original
//   BM_Build100MBOriginal     one transport envelope around a 100 MB original; the
//                             process's peak RSS (getrusage) is reported as a counter
// Bars: build+sign >= 70 % of the raw signing rate; 100 MB original < 400 MB peak RSS.
#include <benchmark/benchmark.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <sys/resource.h>

#include <iostream>

#include "crypto/cms.hpp"
#include "crypto/identity.hpp"
#include "pec/builder.hpp"
#include "tls/certificate.hpp"

using namespace pecd;

namespace {

const crypto::SigningIdentity& identity() {
    static const crypto::SigningIdentity id = [] {
        auto key = tls::generate_key(tls::KeyType::rsa2048);
        tls::CertificateSpec spec;
        spec.common_name = "posta-certificata@pec.bench.it";
        spec.usage = tls::Usage::client;
        auto cert =
            tls::issue_certificate(spec, key.get(), nullptr, key.get(), std::chrono::system_clock::now());
        crypto::SigningIdentity i;
        i.certificate = crypto::X509Ptr(cert.release(), crypto::X509Free{});
        i.key = crypto::PkeyPtr(key.release(), crypto::PkeyFree{});
        return i;
    }();
    return id;
}

std::string original_of_size(std::size_t size) {
    std::string m =
        "From: Mario Rossi <mario@pec.bench.it>\r\nTo: anna@pec.altro.it\r\nSubject: Fattura\r\n"
        "Message-ID: <bench@mua.bench.it>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: "
        "text/plain\r\n\r\nTesto.\r\n"
        "--b\r\nContent-Type: application/pdf; name=\"f.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n";
    m.reserve(size + 128);
    const std::string line =
        "JVBERi0xLjQKJcOkw7zDtsOfCjIgMCBvYmoKPDwvTGVuZ3RoIDMgMCBSL0ZpbHRlci9GbGF0ZURl\r\n";
    while (m.size() + line.size() + 8 < size) m += line;
    m += "--b--\r\n";
    return m;
}

pec::TransactionContext context() {
    pec::TransactionContext tx;
    tx.time = std::chrono::system_clock::now();
    tx.provider_domain = "pec.bench.it";
    tx.provider_name = "Bench PEC";
    tx.pec_msgid = "pecd.bench.1@pec.bench.it";
    return tx;
}

Envelope envelope() {
    Envelope e;
    e.mail_from = "mario@pec.bench.it";
    e.recipients = {{"anna@pec.altro.it", {}, {}}};
    return e;
}

long peak_rss_mb() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024;  // KiB on Linux
}

void BM_RawRsa2048Sign(benchmark::State& state) {
    EVP_PKEY* key = identity().key.get();
    unsigned char digest[32] = {1, 2, 3};
    unsigned char sig[512];
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new(key, nullptr);
    EVP_PKEY_sign_init(ctx);
    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING);
    EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256());
    for (auto _ : state) {
        size_t len = sizeof sig;
        if (EVP_PKEY_sign(ctx, sig, &len, digest, sizeof digest) != 1)
            state.SkipWithError("EVP_PKEY_sign failed");
        benchmark::DoNotOptimize(sig);
        digest[0]++;
    }
    EVP_PKEY_CTX_free(ctx);
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RawRsa2048Sign)->Unit(benchmark::kMicrosecond)->MinTime(3.0)->Threads(1)->Threads(2);

// CMS SignedData alone over a built message's size: splits the build overhead into
// CMS (signed attributes, certificate, DER) and pecd's own assembly.
void BM_CmsSignDetached(benchmark::State& state) {
    std::string data(11 * 1024, 'x');
    for (auto _ : state) {
        auto sig = crypto::cms_sign_detached(identity(), data, crypto::Digest::sha256);
        benchmark::DoNotOptimize(sig.data());
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CmsSignDetached)->Unit(benchmark::kMicrosecond)->MinTime(3.0)->Threads(1)->Threads(2);

void BM_BuildTransportEnvelope(benchmark::State& state) {
    auto original = original_of_size(5 * 1024);
    auto env = envelope();
    auto tx = context();
    std::size_t bytes = 0;
    for (auto _ : state) {
        auto built = pec::build_message(pec::MessageKind::transport_envelope, original, env, tx, identity());
        bytes = built.data.size();
        benchmark::DoNotOptimize(built.data.data());
    }
    state.SetItemsProcessed(state.iterations());
    state.counters["message_bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_BuildTransportEnvelope)->Unit(benchmark::kMicrosecond)->MinTime(3.0);

void BM_Build100MBOriginal(benchmark::State& state) {
    auto original = original_of_size(100u * 1024 * 1024);
    auto env = envelope();
    auto tx = context();
    for (auto _ : state) {
        auto built = pec::build_message(pec::MessageKind::transport_envelope, original, env, tx, identity());
        benchmark::DoNotOptimize(built.data.data());
        state.counters["message_MB"] = static_cast<double>(built.data.size()) / (1024 * 1024);
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * original.size()));
    state.counters["peak_rss_MB"] = static_cast<double>(peak_rss_mb());
}
BENCHMARK(BM_Build100MBOriginal)->Unit(benchmark::kMillisecond)->Iterations(1);

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    std::cout << "peak RSS of the process: " << peak_rss_mb() << " MB\n";
    return 0;
}
