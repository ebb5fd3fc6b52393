// bench_pec_verify.cpp - verification speed and memory of the PEC reading side
//
//   BM_VerifyEnvelope5KB   pec::verify_message on a ~5 KB signed transport envelope
//                          (messages/s on one core; bar >= 5000/s)
//   BM_CmsOnly5KB          baseline in the same run: the detached CMS verification alone
//                          over the same signed bytes (the cryptographic floor)
//   BM_VerifyEnvelopeCrl/N the same envelope, signed by a provider certificate that a CA
//                          issued, verified with that CA as the trust anchor and a CRL of N
//                          revoked certificates checked (the reception point's work with
//                          the provider CAs' CRLs configured); counters: the CRL's size and,
//                          as the peer, `openssl smime -verify -crl_check` per message
//                          (a process that loads the CRL once, ms).
//   BM_VerifyEnvelopeCrlVaried/N  the same, but every message carries one more certificate
//                          of its own (the certificate set is not signed: a sender can add
//                          one to each copy of a genuine envelope); 8192 such envelopes,
//                          more than the trust cache keeps, are verified in turn.
//   BM_Verify100MB         pec::verify_message on a ~100 MB signed envelope (bytes/s);
//                          its counters report the peak RSS of a fresh process that reads
//                          the file and verifies it (`--verify-file`, bar < 400 MB) and, as
//                          the peer, the peak RSS and time of `openssl smime -verify` on the
//                          same file.
// Every input is checked to verify as a valid envelope before it is timed.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <openssl/pem.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "bench_message.hpp"
#include "bench_pki.hpp"
#include "core/fs.hpp"
#include "crypto/identity.hpp"
#include "crypto/smime.hpp"
#include "pec/verify.hpp"

namespace {

using namespace pecd;

const crypto::SigningIdentity& identity() {
    static const auto id = bench::make_identity();
    return id;
}

struct ChildRun {
    int status = -1;
    double peak_rss_mb = 0;
    double seconds = 0;
};

// Runs argv in a fresh process; wait4 gives its own peak RSS (ru_maxrss, KiB).
ChildRun run_child(std::vector<std::string> args) {
    ChildRun r;
    auto start = std::chrono::steady_clock::now();
    pid_t pid = fork();
    if (pid == 0) {
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execvp(argv[0], argv.data());
        _exit(127);
    }
    int st = 0;
    rusage ru{};
    wait4(pid, &st, 0, &ru);
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    r.peak_rss_mb = static_cast<double>(ru.ru_maxrss) / 1024.0;
    return r;
}

void BM_VerifyEnvelope5KB(benchmark::State& state) {
    static const std::string msg = bench::make_envelope(identity(), 100);
    auto check = pec::verify_message(msg);
    if (!check.valid() || check.classification.kind != pec::MessageKind::transport_envelope) {
        state.SkipWithError("the benchmark envelope does not verify");
        return;
    }
    for (auto _ : state) benchmark::DoNotOptimize(pec::verify_message(msg));
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(msg.size()));
    state.counters["message_bytes"] = static_cast<double>(msg.size());
}
BENCHMARK(BM_VerifyEnvelope5KB)->Unit(benchmark::kMicrosecond);

void BM_CmsOnly5KB(benchmark::State& state) {
    static const std::string msg = bench::make_envelope(identity(), 100);
    auto v = crypto::smime_verify(msg);
    if (!v.intact()) {
        state.SkipWithError("the benchmark envelope does not verify");
        return;
    }
    const std::string der = v.parts.signature_der;
    const std::string content(v.parts.signed_part);
    for (auto _ : state) benchmark::DoNotOptimize(crypto::cms_verify_detached(der, content));
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CmsOnly5KB)->Unit(benchmark::kMicrosecond);

std::string pem_of(X509* cert) {
    BIO* b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, cert);
    char* data = nullptr;
    long n = BIO_get_mem_data(b, &data);
    std::string out(data, static_cast<std::size_t>(n));
    BIO_free(b);
    return out;
}

// The bench CA as the only anchor, with its CRL checked.
crypto::TrustStore crl_trust(const bench::BenchPki& pki) {
    crypto::TrustStore trust;
    trust.anchors.emplace_back(X509_dup(pki.ca.certificate.get()), crypto::X509Free{});
    trust.crls_der.push_back(pki.crl_der);
    trust.check_crl = true;
    return trust;
}

void BM_VerifyEnvelopeCrl(benchmark::State& state) {
    const auto pki = bench::make_pki(state.range(0));
    const std::string msg = bench::make_envelope(pki.provider, 100);
    auto trust = crl_trust(pki);
    pec::VerifyOptions options;
    options.trust = &trust;
    auto check = pec::verify_message(msg, options);
    if (!check.valid() || !check.cms.chain_ok) {
        state.SkipWithError(
            ("the benchmark envelope does not verify with its CA and CRL: " + check.cms.error).c_str());
        return;
    }
    for (auto _ : state) benchmark::DoNotOptimize(pec::verify_message(msg, options));
    state.SetItemsProcessed(state.iterations());
    state.counters["crl_kb"] = static_cast<double>(pki.crl_der.size()) / 1024.0;

    auto dir = std::filesystem::temp_directory_path() / ("pecd-bench-crl-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    fs::write_file_durable(dir / "msg.eml", msg);
    fs::write_file_durable(dir / "ca.pem", pem_of(pki.ca.certificate.get()));
    fs::write_file_durable(dir / "crl.der", pki.crl_der);
    // The peer reads the CA and the CRL from one PEM file (-CAfile loads both kinds).
    auto peer_ok = run_child(
        {"sh", "-c",
         "openssl crl -inform DER -in " + (dir / "crl.der").string() + " >> " + (dir / "ca.pem").string()});
    auto peer = run_child({"openssl", "smime", "-verify", "-crl_check", "-CAfile", (dir / "ca.pem").string(),
                           "-in", (dir / "msg.eml").string(), "-out", "/dev/null"});
    state.counters["openssl_exit"] = peer_ok.status == 0 ? peer.status : peer_ok.status;
    state.counters["openssl_process_ms"] = peer.seconds * 1000.0;
    std::filesystem::remove_all(dir);
}
BENCHMARK(BM_VerifyEnvelopeCrl)->Arg(0)->Arg(10000)->Arg(100000)->Unit(benchmark::kMicrosecond);

std::string der_of(X509* certificate) {
    unsigned char* der = nullptr;
    int n = i2d_X509(certificate, &der);
    std::string out(n > 0 ? reinterpret_cast<char*>(der) : "", n > 0 ? static_cast<std::size_t>(n) : 0);
    OPENSSL_free(der);
    return out;
}

void BM_VerifyEnvelopeCrlVaried(benchmark::State& state) {
    const auto pki = bench::make_pki(state.range(0));
    auto trust = crl_trust(pki);
    pec::VerifyOptions options;
    options.trust = &trust;
    // A copy of the CA certificate with a serial number of its own rides along in each
    // message: a different certificate set every time, the same signer and chain.
    std::vector<std::string> messages;
    for (long i = 0; i < 8192; ++i) {
        crypto::SigningIdentity id;
        id.certificate = crypto::X509Ptr(X509_dup(pki.provider.certificate.get()), crypto::X509Free{});
        id.key = crypto::PkeyPtr(pki.provider.key.get(), crypto::PkeyFree{});
        EVP_PKEY_up_ref(pki.provider.key.get());
        X509* extra = X509_dup(pki.ca.certificate.get());
        ASN1_INTEGER* serial = ASN1_INTEGER_new();
        ASN1_INTEGER_set(serial, 500000 + i);
        X509_set_serialNumber(extra, serial);
        ASN1_INTEGER_free(serial);
        X509_sign(extra, pki.ca.key.get(), EVP_sha256());  // encoded afresh, with its new serial
        id.chain.emplace_back(extra, crypto::X509Free{});
        messages.push_back(bench::make_envelope(id, 100));
    }
    std::vector<std::string> extras;
    for (const auto& m : {messages.front(), messages.back()}) {
        auto check = pec::verify_message(m, options);
        if (!check.valid() || !check.cms.chain_ok || check.cms.certificates.size() != 2) {
            state.SkipWithError(
                ("a varied envelope does not verify with its CA and CRL: " + check.cms.error).c_str());
            return;
        }
        for (const auto& c : check.cms.certificates)
            if (X509_cmp(c.get(), pki.provider.certificate.get()) != 0) extras.push_back(der_of(c.get()));
    }
    if (extras.size() != 2 || extras[0] == extras[1]) {
        state.SkipWithError("the envelopes do not carry certificate sets of their own");
        return;
    }
    std::size_t next = 0;
    for (auto _ : state) {
        benchmark::DoNotOptimize(pec::verify_message(messages[next], options));
        next = (next + 1) % messages.size();
    }
    state.SetItemsProcessed(state.iterations());
    state.counters["crl_kb"] = static_cast<double>(pki.crl_der.size()) / 1024.0;
}
BENCHMARK(BM_VerifyEnvelopeCrlVaried)->Arg(100000)->Unit(benchmark::kMicrosecond)->MinTime(5.0);

std::string self_exe() {
    return std::filesystem::read_symlink("/proc/self/exe").string();
}

void BM_Verify100MB(benchmark::State& state) {
    auto path =
        std::filesystem::temp_directory_path() / ("pecd-bench-100mb-" + std::to_string(getpid()) + ".eml");
    {
        auto msg = bench::make_envelope(identity(), 75u * 1000 * 1000);
        fs::write_file_durable(path, msg);
    }
    std::string msg = fs::read_file(path);
    if (!pec::verify_message(msg).valid()) {
        state.SkipWithError("the 100 MB envelope does not verify");
        std::filesystem::remove(path);
        return;
    }
    for (auto _ : state) benchmark::DoNotOptimize(pec::verify_message(msg));
    state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(msg.size()));
    state.counters["message_mb"] = static_cast<double>(msg.size()) / (1024.0 * 1024.0);
    msg = std::string();

    auto ours = run_child({self_exe(), "--verify-file", path.string()});
    state.counters["pecd_exit"] = ours.status;
    state.counters["pecd_peak_rss_mb"] = ours.peak_rss_mb;
    state.counters["pecd_process_s"] = ours.seconds;
    auto peer =
        run_child({"openssl", "smime", "-verify", "-noverify", "-in", path.string(), "-out", "/dev/null"});
    state.counters["openssl_exit"] = peer.status;
    state.counters["openssl_peak_rss_mb"] = peer.peak_rss_mb;
    state.counters["openssl_process_s"] = peer.seconds;
    std::filesystem::remove(path);
}
BENCHMARK(BM_Verify100MB)->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace

// `--verify-file FILE`: read and verify one file, exit 0 when valid (the RSS probe).
int main(int argc, char** argv) {
    if (argc == 3 && std::strcmp(argv[1], "--verify-file") == 0) {
        auto raw = pecd::fs::read_file(argv[2]);
        return pecd::pec::verify_message(raw).valid() ? 0 : 1;
    }
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
