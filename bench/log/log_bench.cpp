// log_bench.cpp - legal-log costs: sealing a 100 000-record segment, appends with the
//                 chain, a state-change transaction with and without its record, and
//                 writing one canonical record (against the nlohmann::json form it
//                 reproduces)
//
// The "with vs without" pair runs the same transactions (one state row each, durable
// commit) side by side in one process on the same database, so their ratio is the
// share of throughput the log leaves (bar: >= 90 %). Sealing uses the built-in TSA
// in-process and a real CMS signature; the segment's records are re-read and re-hashed
// as the sealer does before every seal.
#include <benchmark/benchmark.h>

#include <chrono>
#include <filesystem>
#include <random>

#include "canonical_json_reference.hpp"
#include "crypto/identity.hpp"
#include "crypto/timestamp.hpp"
#include "log/legal_log.hpp"
#include "log/sealer.hpp"
#include "store/database.hpp"

namespace {

using namespace pecd;

struct BenchDir {
    std::filesystem::path path;
    BenchDir() {
        std::random_device rd;
        path = std::filesystem::temp_directory_path() / ("pecd-log-bench-" + std::to_string(rd()));
        std::filesystem::create_directories(path);
    }
    ~BenchDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
};

log::Event sample(int i) {
    log::Event e;
    e.kind = log::EventKind::delivery;
    e.pec_msgid = "opec210." + std::to_string(i) + "@pec.example.it";
    e.client_msgid = "<" + std::to_string(i) + "@client.example>";
    e.time = SystemClock::instance().now();
    e.utc_offset_minutes = 60;
    e.sender = "mittente@pec.example.it";
    e.recipients = {{"destinatario@pec.other.it", true}, {"altro@pec.other.it", true}};
    e.subject = "Fattura elettronica n. " + std::to_string(i);
    e.generated_ids = {"<receipt-" + std::to_string(i) + "@pec.example.it>"};
    e.peer_provider = "Other PEC";
    e.peer_host = "mx.pec.other.it";
    e.tls = {"TLSv1.3", "TLS_AES_256_GCM_SHA384", "CN=mx.pec.other.it"};
    e.outcome = "ok";
    return e;
}

// The provider's seal identity; an ECDSA key like the TSA's (the CMS code is the same).
crypto::SigningIdentity bench_signer() {
    return crypto::create_tsa_identity("bench provider");
}

void BM_SealSegment100k(benchmark::State& state) {
    BenchDir dir;
    auto db = store::open_sqlite((dir.path / "pecd.db").string());
    log::LegalLog legal(*db);
    constexpr int kRecords = 100000;
    db->transact([&](store::Tx& tx) {
        for (int i = 0; i < kRecords; ++i) legal.append(tx, sample(i));
    });
    auto tsa = std::make_shared<crypto::TimestampAuthority>(crypto::create_tsa_identity("bench TSA"),
                                                            SystemClock::instance());
    log::LocalTimestampSource source(tsa);
    log::SealerOptions options;
    options.retention_months = 0;
    log::Sealer sealer(legal, bench_signer(), source, SystemClock::instance(), options);
    while (legal.index_pending() > 0) {
    }
    legal.close_segment(SystemClock::instance().now());
    for (auto _ : state) {
        state.PauseTiming();
        db->transact(
            [](store::Tx& tx) { tx.exec("UPDATE log_segments SET signature = NULL, timestamp = NULL"); });
        state.ResumeTiming();
        if (sealer.run_once() != 1) state.SkipWithError("segment not sealed");
    }
    state.counters["records"] = kRecords;
}
BENCHMARK(BM_SealSegment100k)->Unit(benchmark::kMillisecond)->Iterations(5);

void BM_IndexSearchKeys(benchmark::State& state) {
    // The sealer's off-hot-path work: search keys for 5000 new records per transaction.
    BenchDir dir;
    auto db = store::open_sqlite((dir.path / "pecd.db").string());
    log::LegalLog legal(*db);
    int i = 0;
    for (auto _ : state) {
        state.PauseTiming();
        db->transact([&](store::Tx& tx) {
            for (int k = 0; k < 5000; ++k) legal.append(tx, sample(i++));
        });
        state.ResumeTiming();
        legal.index_pending(5000);
    }
    state.SetItemsProcessed(state.iterations() * 5000);
}
BENCHMARK(BM_IndexSearchKeys)->Unit(benchmark::kMillisecond);

void BM_AppendBatched(benchmark::State& state) {
    // Raw cost of building, hashing and inserting records: 1000 per transaction.
    BenchDir dir;
    auto db = store::open_sqlite((dir.path / "pecd.db").string());
    log::LegalLog legal(*db);
    int i = 0;
    for (auto _ : state) {
        db->transact([&](store::Tx& tx) {
            for (int k = 0; k < 1000; ++k) legal.append(tx, sample(i++));
        });
    }
    state.SetItemsProcessed(state.iterations() * 1000);
}
BENCHMARK(BM_AppendBatched)->Unit(benchmark::kMillisecond);

// One durable transaction per state change, as the PEC engine does, alternating rounds
// with and without the log record so both see the same disk and cache conditions.
void BM_StateChangeWithAndWithoutLog(benchmark::State& state) {
    BenchDir dir;
    auto db = store::open_sqlite((dir.path / "pecd.db").string());
    log::LegalLog legal(*db);
    db->migrate("logbench", {{1,
                              "CREATE TABLE bench_state (id BIGINT PRIMARY KEY, state TEXT NOT NULL, "
                              "msgid TEXT NOT NULL, sender TEXT NOT NULL, recipients TEXT NOT NULL, "
                              "subject TEXT NOT NULL)"}});
    std::int64_t id = 0;
    auto change = [&](bool with_log) {
        log::Event e = sample(static_cast<int>(id));
        db->transact([&](store::Tx& tx) {
            tx.exec(
                "INSERT INTO bench_state (id, state, msgid, sender, recipients, subject) VALUES (?, ?, ?, ?, "
                "?, ?)",
                {++id, std::string("delivered"), e.pec_msgid, e.sender, e.recipients[0].address, e.subject});
            if (with_log) legal.append(tx, e);
        });
    };
    constexpr int kRound = 200;
    std::chrono::duration<double> with{0}, without{0};
    for (auto _ : state) {
        auto t0 = std::chrono::steady_clock::now();
        for (int k = 0; k < kRound; ++k) change(false);
        auto t1 = std::chrono::steady_clock::now();
        for (int k = 0; k < kRound; ++k) change(true);
        auto t2 = std::chrono::steady_clock::now();
        without += t1 - t0;
        with += t2 - t1;
    }
    double n = static_cast<double>(state.iterations()) * kRound;
    state.counters["tx_per_s_without_log"] = n / without.count();
    state.counters["tx_per_s_with_log"] = n / with.count();
    state.counters["with_over_without"] = without.count() / with.count();
}
BENCHMARK(BM_StateChangeWithAndWithoutLog)->Unit(benchmark::kMillisecond)->MinTime(3.0);

// One canonical record of a typical PEC event, written directly (what LegalLog::append
// does) and through a nlohmann::json object tree (the reference it reproduces).
void BM_CanonicalRecord(benchmark::State& state) {
    const auto e = sample(12345);
    for (auto _ : state) benchmark::DoNotOptimize(log::canonical_record(e, 987654));
}
BENCHMARK(BM_CanonicalRecord);

void BM_CanonicalRecordViaJson(benchmark::State& state) {
    const auto e = sample(12345);
    for (auto _ : state) benchmark::DoNotOptimize(log::test::canonical_record_via_json(e, 987654));
}
BENCHMARK(BM_CanonicalRecordViaJson);

}  // namespace

BENCHMARK_MAIN();
