// legal_log_test.cpp - the legal log on SQLite: records, atomicity, seals checked by
//                      openssl, tamper detection, TSA outage, schedule, retention
#include <gtest/gtest.h>

#include <chrono>

#include "core/calendar.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "log/builtin_tsa.hpp"
#include "log/bundle.hpp"
#include "log/log_service.hpp"
#include "log/verify.hpp"
#include "log_fixture.hpp"

namespace pecd::log::test {
namespace {

using namespace std::chrono;

const EventKind kPecKinds[] = {
    EventKind::acceptance,         EventKind::non_acceptance,     EventKind::non_acceptance_virus,
    EventKind::transport_envelope, EventKind::take_in_charge,     EventKind::anomaly,
    EventKind::virus_detected,     EventKind::non_delivery_virus, EventKind::delivery,
    EventKind::non_delivery,       EventKind::timeout_12h,        EventKind::timeout_24h,
    EventKind::receipt_received,   EventKind::api_audit};

class LegalLogTest : public LogFixture {
protected:
    // n records over message ids m0, m1, ...; returns nothing, records are seq 1..n.
    void fill(int n, int first_id = 0) {
        for (int i = 0; i < n; ++i)
            change_and_log(first_id + i,
                           pec_event(kPecKinds[i % 14], "m" + std::to_string((first_id + i) % 3), clock.now(),
                                     first_id + i + 1));
    }
    int seal_all(TimestampSource& source) {
        Sealer sealer(*log, provider, source, clock, {});
        return sealer.run_once(true);
    }
};

TEST_F(LegalLogTest, EveryEventKindIsRecordedWithItsFields) {
    int id = 0;
    for (auto kind : kPecKinds) {
        ++id;
        change_and_log(id, pec_event(kind, "msg-1", clock.now(), id));
    }
    ++id;
    change_and_log(id, pec_event(EventKind::delivery, "msg-2", clock.now(), id));
    SearchQuery q;
    q.message_id = "msg-1";
    auto found = log->search(q);
    ASSERT_EQ(found.size(), 14u);
    for (std::size_t i = 0; i < found.size(); ++i) {
        ParsedRecord r = parse_record(found[i].record);
        EXPECT_EQ(r.seq, static_cast<std::int64_t>(i + 1));
        EXPECT_EQ(r.event.kind, kPecKinds[i]);
        EXPECT_EQ(r.event.pec_msgid, "msg-1");
        EXPECT_EQ(r.event.client_msgid, "<client-msg-1>");
        EXPECT_EQ(r.event.sender, "mittente@pec.example.it");
        ASSERT_EQ(r.event.recipients.size(), 2u);
        EXPECT_TRUE(r.event.recipients[0].certified);
        EXPECT_FALSE(r.event.recipients[1].certified);
        EXPECT_EQ(r.event.subject, "Prova " + std::to_string(i + 1));
        EXPECT_EQ(r.event.generated_ids.size(), 1u);
        EXPECT_EQ(r.event.tls.protocol, "TLSv1.3");
        EXPECT_EQ(r.event.peer_provider, "Other PEC");
        EXPECT_EQ(r.event.time, time_point_cast<microseconds>(clock.now()));
        EXPECT_EQ(r.event.utc_offset_minutes, italy_utc_offset_minutes(clock.now()));
    }
    // By address (case-insensitive) and by client id.
    q = {};
    q.address = "esterno@mail.example";
    EXPECT_EQ(log->search(q).size(), 15u);
    q = {};
    q.message_id = "<client-msg-2>";
    EXPECT_EQ(log->search(q).size(), 1u);
    // Keys are written on append: nothing is left to index.
    EXPECT_EQ(log->index_pending(), 0);
    // A tail appended without keys (a log of an older version): searches scan it, and
    // the same answers come once it is indexed, and with part indexed, part not.
    db->transact([](store::Tx& tx) {
        tx.exec("DELETE FROM log_keys WHERE seq > 5");
        tx.exec("UPDATE log_head SET indexed_seq = 5 WHERE id = 1");
    });
    q = {};
    q.message_id = "msg-1";
    EXPECT_EQ(log->search(q).size(), 14u);
    EXPECT_EQ(log->index_pending(4), 4);
    EXPECT_EQ(log->search(q).size(), 14u);
    EXPECT_EQ(log->index_pending(), 6);
    EXPECT_EQ(log->index_pending(), 0);
    EXPECT_EQ(log->search(q).size(), 14u);
    q = {};
    q.address = "esterno@mail.example";
    EXPECT_EQ(log->search(q).size(), 15u);
    q.message_id = "msg-2";
    EXPECT_EQ(log->search(q).size(), 1u);
    EXPECT_TRUE(verify_log(*log).ok());
}

TEST_F(LegalLogTest, SearchByTimeRange) {
    TimePoint t0 = clock.now();
    fill(3);
    clock.advance(hours(2));
    fill(2, 10);
    SearchQuery q;
    q.from = t0 + hours(1);
    EXPECT_EQ(log->search(q).size(), 2u);
    q = {};
    q.to = t0 + hours(1);
    EXPECT_EQ(log->search(q).size(), 3u);
    // Across closed, indexed segments too.
    log->index_pending();
    log->close_segment(clock.now());
    clock.advance(hours(2));
    fill(4, 20);
    log->index_pending();
    log->close_segment(clock.now());
    q = {};
    q.from = t0 + hours(1);
    q.to = t0 + hours(3);
    EXPECT_EQ(log->search(q).size(), 2u);
    q.to = {};
    EXPECT_EQ(log->search(q).size(), 6u);
}

TEST_F(LegalLogTest, NoRecordWithoutItsStateChangeAndNoChangeWithoutRecord) {
    fill(2);
    EXPECT_THROW(db->transact([&](store::Tx& tx) {
        tx.exec("INSERT INTO test_state (id, state) VALUES (?, ?)", {std::int64_t{99}, std::string("x")});
        log->append(tx, pec_event(EventKind::delivery, "rolled-back", clock.now()));
        throw TemporaryError("delivery failed before commit");
    }),
                 TemporaryError);
    SearchQuery q;
    q.message_id = "rolled-back";
    EXPECT_TRUE(log->search(q).empty());
    std::int64_t rows = -1;
    db->read([&](store::Tx& tx) {
        rows = tx.query_one("SELECT COUNT(*) FROM test_state WHERE id = 99")->integer(0);
    });
    EXPECT_EQ(rows, 0);
    // A record whose state change fails rolls back too (duplicate key).
    EXPECT_ANY_THROW(change_and_log(0, pec_event(EventKind::delivery, "dup", clock.now())));
    q.message_id = "dup";
    EXPECT_TRUE(log->search(q).empty());
    EXPECT_EQ(change_and_log(3, pec_event(EventKind::delivery, "m", clock.now())), 3);
    EXPECT_TRUE(verify_log(*log).ok());
}

TEST_F(LegalLogTest, SealsVerifyWithStockOpenssl) {
    TsaService tsa(clock);
    HttpTimestampSource source(tsa.url());
    fill(10);
    ASSERT_EQ(seal_all(source), 1);
    auto segs = log->segments();
    ASSERT_EQ(segs.size(), 1u);
    EXPECT_EQ(segs[0].first_seq, 1);
    EXPECT_EQ(segs[0].last_seq, 10);
    ASSERT_TRUE(segs[0].sealed());
    write_file(dir / "manifest.txt", segs[0].manifest);
    write_file(dir / "seal.p7s", segs[0].signature);
    write_file(dir / "ts.tsr", segs[0].timestamp);
    write_file(dir / "tsa.pem", crypto::certificate_pem(tsa.identity().certificate.get()));
    auto cms = run_command("openssl cms -verify -binary -inform DER -in " + quote(dir / "seal.p7s") +
                           " -content " + quote(dir / "manifest.txt") + " -CAfile " +
                           quote(dir / "provider.pem") + " -purpose any -out /dev/null");
    EXPECT_EQ(cms.status, 0) << cms.output;
    auto ts = run_command("openssl ts -verify -data " + quote(dir / "manifest.txt") + " -in " +
                          quote(dir / "ts.tsr") + " -CAfile " + quote(dir / "tsa.pem"));
    EXPECT_EQ(ts.status, 0) << ts.output;

    VerifyOptions anchored{{provider.certificate}, {tsa.identity().certificate}};
    auto report = verify_log(*log, anchored);
    EXPECT_TRUE(report.ok()) << report.problems.front().what;
    EXPECT_TRUE(report.anchored);
    EXPECT_EQ(report.segments_sealed, 1);
    // Someone else's TSA is not trusted.
    crypto::SigningIdentity stranger = crypto::create_tsa_identity("stranger");
    EXPECT_FALSE(verify_log(*log, {{provider.certificate}, {stranger.certificate}}).ok());
}

TEST_F(LegalLogTest, ExportBundleChecksWithShellToolsAndDetectsTampering) {
    TsaService tsa(clock);
    HttpTimestampSource source(tsa.url());
    fill(9);
    ASSERT_EQ(seal_all(source), 1);
    fill(2, 100);  // an open, unsealed tail
    SearchQuery q;
    q.message_id = "m1";
    auto summary = export_bundle(*log, dir / "bundle", &q);
    EXPECT_EQ(summary.records, 4u);  // seq 2, 5, 8 sealed, 10 (id 100 -> m1) unsealed
    EXPECT_EQ(summary.segments, 1u);
    EXPECT_EQ(summary.unsealed, 1u);
    write_file(dir / "tsa.pem", crypto::certificate_pem(tsa.identity().certificate.get()));
    auto ok = run_command("sh " + quote(dir / "bundle" / "verify.sh") + " " + quote(dir / "provider.pem") +
                          " " + quote(dir / "tsa.pem"));
    EXPECT_EQ(ok.status, 0) << ok.output;
    EXPECT_NE(ok.output.find("bundle OK: 4 records intact"), std::string::npos) << ok.output;
    EXPECT_EQ(run_command("sh " + quote(dir / "bundle" / "verify.sh")).status, 0);

    // One byte of a disclosed record flipped.
    std::string records = read_file(dir / "bundle" / "records.jsonl");
    std::string flipped = records;
    flipped[flipped.find("Prova")] = 'p';
    write_file(dir / "bundle" / "records.jsonl", flipped);
    auto bad = run_command("sh " + quote(dir / "bundle" / "verify.sh"));
    EXPECT_EQ(bad.status, 1) << bad.output;
    EXPECT_NE(bad.output.find("FAIL record on line 1 (seq 2)"), std::string::npos) << bad.output;
    write_file(dir / "bundle" / "records.jsonl", records);

    // A digest line removed from the segment.
    std::string digests = read_file(dir / "bundle" / "segments" / "1" / "digests.txt");
    std::string removed = digests;
    auto line3 = removed.find("\n3 ");
    removed.erase(line3 + 1, removed.find('\n', line3 + 1) - line3);
    write_file(dir / "bundle" / "segments" / "1" / "digests.txt", removed);
    bad = run_command("sh " + quote(dir / "bundle" / "verify.sh"));
    EXPECT_EQ(bad.status, 1);
    EXPECT_NE(bad.output.find("FAIL segment 1"), std::string::npos) << bad.output;
    write_file(dir / "bundle" / "segments" / "1" / "digests.txt", digests);

    // The manifest altered: signature and time stamp fail.
    std::string manifest = read_file(dir / "bundle" / "segments" / "1" / "manifest.txt");
    std::string forged = manifest;
    forged[forged.find("records: 9") + 9] = '8';
    write_file(dir / "bundle" / "segments" / "1" / "manifest.txt", forged);
    bad = run_command("sh " + quote(dir / "bundle" / "verify.sh"));
    EXPECT_EQ(bad.status, 1);
    EXPECT_NE(bad.output.find("seal signature does not verify"), std::string::npos) << bad.output;
    EXPECT_NE(bad.output.find("time stamp does not verify"), std::string::npos) << bad.output;
    EXPECT_THROW(export_bundle(*log, dir / "bundle", nullptr), Error);  // not empty
}

TEST_F(LegalLogTest, AlteredRecordIsNamed) {
    LocalTimestampSource source(
        std::make_shared<crypto::TimestampAuthority>(crypto::create_tsa_identity("t"), clock));
    fill(12);
    ASSERT_EQ(seal_all(source), 1);
    sql("UPDATE log_records SET record = replace(record, 'Prova 7', 'Prova 8') WHERE seq = 7");
    auto report = verify_log(*log);
    ASSERT_FALSE(report.ok());
    EXPECT_EQ(report.problems.front().seq, 7);
    EXPECT_NE(report.problems.front().what.find("record 7 was altered"), std::string::npos)
        << report.problems.front().what;
}

TEST_F(LegalLogTest, RewrittenDigestsAndChainAreCaughtByTheSeal) {
    LocalTimestampSource source(
        std::make_shared<crypto::TimestampAuthority>(crypto::create_tsa_identity("t"), clock));
    fill(6);
    ASSERT_EQ(seal_all(source), 1);
    // A careful forger rewrites record 4 and recomputes digest and chain of 4..6.
    auto recs = log->records(1, 6);
    std::string chain = recs[2].chain;
    std::string statements;
    for (std::size_t i = 3; i < 6; ++i) {
        std::string rec = recs[i].record;
        if (i == 3) rec.replace(rec.find("Prova"), 5, "Forgd");
        std::string digest = record_digest(rec);
        chain = chain_link(chain, digest);
        statements += "UPDATE log_records SET record = '" + rec + "', digest = '" + digest + "', chain = '" +
                      chain + "' WHERE seq = " + std::to_string(i + 1) + "; ";
    }
    statements += "UPDATE log_head SET chain = '" + chain + "';";
    write_file(dir / "forge.sql", statements);
    log.reset();
    db.reset();
    auto r = run_command("sqlite3 " + quote(db_path()) + " < " + quote(dir / "forge.sql"));
    ASSERT_EQ(r.status, 0) << r.output;
    db = store::open_sqlite(db_path().string());
    log.emplace(*db);
    auto report = verify_log(*log);
    ASSERT_FALSE(report.ok());
    EXPECT_EQ(report.problems.front().segment, 1);
    EXPECT_NE(report.problems.front().what.find("do not lead to the sealed head"), std::string::npos)
        << report.problems.front().what;
}

TEST_F(LegalLogTest, DeletedRecordIsNamed) {
    LocalTimestampSource source(
        std::make_shared<crypto::TimestampAuthority>(crypto::create_tsa_identity("t"), clock));
    fill(12);
    ASSERT_EQ(seal_all(source), 1);
    fill(3, 50);
    sql("DELETE FROM log_records WHERE seq = 5");
    auto report = verify_log(*log);
    ASSERT_FALSE(report.ok());
    EXPECT_EQ(report.problems.front().seq, 5);
    EXPECT_NE(report.problems.front().what.find("record 5 is missing"), std::string::npos);
    // The tail (unsealed) too, including its last record.
    sql("DELETE FROM log_records WHERE seq = 15");
    report = verify_log(*log);
    ASSERT_GE(report.problems.size(), 2u);
    EXPECT_EQ(report.problems.back().seq, 15);
}

TEST_F(LegalLogTest, InsertedRecordIsNamed) {
    LocalTimestampSource source(
        std::make_shared<crypto::TimestampAuthority>(crypto::create_tsa_identity("t"), clock));
    fill(8);
    ASSERT_EQ(seal_all(source), 1);
    // Shift 5..8 up by one and put a well-formed record at 5.
    auto recs = log->records(4, 4);
    std::string forged = canonical_record(pec_event(EventKind::delivery, "forged", clock.now()), 5);
    std::string digest = record_digest(forged);
    std::string chain = chain_link(recs[0].chain, digest);
    sql("UPDATE log_records SET seq = seq + 1000 WHERE seq >= 5; UPDATE log_records SET seq = seq - 999 "
        "WHERE seq "
        ">= 1000; INSERT INTO log_records (seq, at_us, record, digest, chain) "
        "VALUES (5, 0, '" +
        forged + "', '" + digest + "', '" + chain + "')");
    auto report = verify_log(*log);
    ASSERT_FALSE(report.ok());
    EXPECT_EQ(report.problems.front().seq, 5);
    EXPECT_NE(report.problems.front().what.find("inserted at position 5"), std::string::npos)
        << report.problems.front().what;

    // Rows past the head (the shifted last record here) are reported as inserted, and
    // the next append refuses to overwrite one.
    report = verify_log(*log);
    EXPECT_NE(report.problems.back().what.find("record 9 lies beyond the head of the log"), std::string::npos)
        << report.problems.back().what;
    EXPECT_ANY_THROW(change_and_log(70, pec_event(EventKind::delivery, "next", clock.now())));
}

TEST_F(LegalLogTest, TsaDownRecordsKeepFlowingAndSealingCatchesUp) {
    // A port with nobody listening, later used by the TSA.
    auto probe = std::make_unique<TsaService>(clock);
    unsigned short port = probe->port();
    probe.reset();
    HttpTimestampSource source("http://127.0.0.1:" + std::to_string(port) + "/tsa", seconds(2));
    Sealer sealer(*log, provider, source, clock, {});
    fill(5);
    EXPECT_EQ(sealer.run_once(true), 0);
    EXPECT_TRUE(sealer.status().alert());
    EXPECT_EQ(sealer.status().unsealed_segments, 1);
    auto segs = log->segments();
    ASSERT_EQ(segs.size(), 1u);
    EXPECT_FALSE(segs[0].sealed());
    EXPECT_NE(segs[0].last_error.find("unavailable"), std::string::npos) << segs[0].last_error;
    fill(5, 20);  // appends are not blocked
    EXPECT_EQ(sealer.run_once(true), 0);
    EXPECT_EQ(sealer.status().unsealed_segments, 2);
    EXPECT_EQ(log->head_seq(), 10);

    TsaService tsa(clock, port);  // the TSA comes back
    EXPECT_EQ(sealer.run_once(), 2);
    EXPECT_FALSE(sealer.status().alert());
    EXPECT_EQ(sealer.status().unsealed_segments, 0);
    auto report = verify_log(*log, {{provider.certificate}, {tsa.identity().certificate}});
    EXPECT_TRUE(report.ok());
    EXPECT_EQ(report.segments_sealed, 2);
    EXPECT_EQ(report.records, 10);
}

TEST_F(LegalLogTest, SegmentsCloseOnHourBoundaries) {
    LocalTimestampSource source(
        std::make_shared<crypto::TimestampAuthority>(crypto::create_tsa_identity("t"), clock));
    clock.set(TimePoint(floor<hours>(system_clock::now()).time_since_epoch()) + minutes(10));
    Sealer sealer(*log, provider, source, clock, {});
    fill(3);
    EXPECT_EQ(sealer.run_once(), 1);  // first pass closes what exists
    fill(2, 10);
    clock.advance(minutes(40));  // hh:50, same hour
    EXPECT_EQ(sealer.run_once(), 0);
    EXPECT_EQ(log->segments().size(), 1u);
    clock.advance(minutes(10) + seconds(1));  // next hour
    EXPECT_EQ(sealer.run_once(), 1);
    auto segs = log->segments();
    ASSERT_EQ(segs.size(), 2u);
    EXPECT_EQ(segs[1].first_seq, 4);
    EXPECT_EQ(segs[1].last_seq, 5);
    clock.advance(hours(3));  // nothing new: no empty segment
    EXPECT_EQ(sealer.run_once(), 0);
    EXPECT_EQ(log->segments().size(), 2u);
}

TEST_F(LegalLogTest, BackgroundSealerSealsWhileRecordsFlow) {
    LocalTimestampSource source(
        std::make_shared<crypto::TimestampAuthority>(crypto::create_tsa_identity("t"), clock));
    SealerOptions options;
    options.tick = milliseconds(20);
    options.segment_interval = seconds(1);
    Sealer sealer(*log, provider, source, SystemClock::instance(), options);
    sealer.start();
    auto deadline = steady_clock::now() + seconds(20);
    int id = 0;
    while (log->segments().size() < 3 && steady_clock::now() < deadline) {
        ++id;
        change_and_log(id, pec_event(EventKind::acceptance, "bg", system_clock::now(), id));
        std::this_thread::sleep_for(milliseconds(5));
    }
    sealer.stop();
    EXPECT_GE(log->segments().size(), 3u);
    EXPECT_TRUE(verify_log(*log).ok());
}

TEST_F(LegalLogTest, RetentionPurgesOldSegmentsWithARecord) {
    LocalTimestampSource source(
        std::make_shared<crypto::TimestampAuthority>(crypto::create_tsa_identity("t"), clock));
    SealerOptions options;
    options.retention_months = 30;
    Sealer sealer(*log, provider, source, clock, options);
    fill(4);
    ASSERT_EQ(sealer.run_once(true), 1);
    clock.advance(hours(24 * 400));  // ~13 months: kept
    fill(3, 10);
    ASSERT_EQ(sealer.run_once(true), 1);
    EXPECT_EQ(log->records(1, 100).size(), 7u);
    clock.advance(hours(24 * 520));  // first segment is now > 30 months old, second ~17
    sealer.run_once(true);
    auto kept = log->records(1, 100);
    ASSERT_EQ(kept.size(), 4u);  // records 5..7 and the purge record 8
    EXPECT_EQ(kept.front().seq, 5);
    ParsedRecord purge = parse_record(kept.back().record);
    EXPECT_EQ(purge.event.kind, EventKind::purge);
    EXPECT_EQ(purge.event.details.at("first_seq"), "1");
    EXPECT_EQ(purge.event.details.at("last_seq"), "4");
    EXPECT_EQ(purge.event.details.at("records"), "4");
    auto report = verify_log(*log);
    EXPECT_TRUE(report.ok()) << report.problems.front().what;
    EXPECT_EQ(report.segments_purged, 1);
    EXPECT_EQ(months_before(TimePoint(sys_days{2026y / 8 / 31}.time_since_epoch()), 30),
              TimePoint(sys_days{2024y / 2 / 29}.time_since_epoch()));
}

// A retention beyond the calendar must purge nothing. Two thousand million months wrapped
// around the system clock's range into a cut-off in the future, and a purge against it
// removed every sealed segment of the log.
TEST_F(LegalLogTest, RetentionBeyondTheCalendarPurgesNothing) {
    LocalTimestampSource source(
        std::make_shared<crypto::TimestampAuthority>(crypto::create_tsa_identity("t"), clock));
    fill(4);
    ASSERT_EQ(seal_all(source), 1);
    clock.advance(hours(24 * 2000));
    for (int months : {2000000000, kMaxRetentionMonths + 1, -1})
        EXPECT_THROW(log->purge(clock.now(), months, 60), Error) << months;
    SealerOptions options;
    options.retention_months = 2000000000;
    Sealer sealer(*log, provider, source, clock, options);
    sealer.run_once(true);  // the purge fails and is logged; the pass goes on
    EXPECT_EQ(log->records(1, 100).size(), 4u);
    EXPECT_EQ(verify_log(*log).segments_purged, 0);
    // The longest retention accepted still yields a cut-off in the past.
    const auto now = clock.now();
    EXPECT_LT(months_before(now, kMaxRetentionMonths), now - hours(24 * 365 * 99));
}

}  // namespace
}  // namespace pecd::log::test

namespace pecd::log::test {
namespace {

TEST(BuiltinTsa, CreatedOnceThenReloadedAndUsable) {
    TempDir dir;
    auto first = load_or_create_builtin_tsa(dir / "tsa");
    auto second = load_or_create_builtin_tsa(dir / "tsa");
    EXPECT_EQ(X509_cmp(first.certificate.get(), second.certificate.get()), 0);
    EXPECT_EQ(std::filesystem::status(dir / "tsa" / "tsa.key").permissions() & std::filesystem::perms::all,
              std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    crypto::TimestampAuthority tsa(second, SystemClock::instance());
    std::string digest = crypto::sha256("x");
    auto v = crypto::verify_timestamp_response(tsa.respond(crypto::make_timestamp_request(digest).der),
                                               digest, {first.certificate});
    EXPECT_TRUE(v.ok) << v.error;
}

}  // namespace
}  // namespace pecd::log::test

namespace pecd::log::test {
namespace {

// Instance A serves its built-in TSA over HTTP; each test builds a client B of it.
class LogServiceTest : public ::testing::Test {
protected:
    LogServiceTest()
        : provider(make_provider_identity(dir)),
          signer(std::make_shared<crypto::FixedIdentity>(provider)),
          db_a(store::open_sqlite((dir / "a.db").string())),
          db_b(store::open_sqlite((dir / "b.db").string())),
          work(boost::asio::make_work_guard(io)) {
        LogServiceOptions serving;
        serving.data_dir = dir / "a";
        serving.tsa_listen = boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0);
        a = std::make_unique<LogService>(*db_a, signer, SystemClock::instance(), io, serving);
        io_thread = std::thread([this] { io.run(); });
    }
    ~LogServiceTest() override {
        b.reset();
        a->stop();
        work.reset();
        io.stop();
        io_thread.join();
    }
    // B, using A's TSA and the roots in `anchors`.
    LogService& start_client(const std::filesystem::path& anchors) {
        LogServiceOptions client;
        client.data_dir = dir / "b";
        client.tsa_url = "http://127.0.0.1:" + std::to_string(a->tsa_port()) + "/";
        client.tsa_trust = trust = std::make_shared<crypto::TrustFiles>("log: TSA", anchors, "");
        b = std::make_unique<LogService>(*db_b, signer, SystemClock::instance(), io, client);
        return *b;
    }
    void append(LogService& to, const char* id) {
        to.log().append(pec_event(EventKind::acceptance, id, SystemClock::instance().now()));
    }

    TempDir dir;
    crypto::SigningIdentity provider;
    std::shared_ptr<crypto::FixedIdentity> signer;
    std::unique_ptr<store::Database> db_a, db_b;
    boost::asio::io_context io;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work;
    std::thread io_thread;
    std::unique_ptr<LogService> a, b;
    std::shared_ptr<crypto::TrustFiles> trust;
};

TEST_F(LogServiceTest, OneInstanceServesItsTsaToAnother) {
    ASSERT_NE(a->tsa_port(), 0);
    fs::write_file_durable(dir / "tsa-anchors.pem",
                           crypto::certificate_pem(a->builtin_tsa_certificate().get()));
    auto& client = start_client(dir / "tsa-anchors.pem");
    EXPECT_FALSE(client.builtin_tsa_certificate());

    append(*a, "a-1");
    append(client, "b-1");
    EXPECT_EQ(a->seal_now(), 1);
    EXPECT_EQ(client.seal_now(), 1);
    EXPECT_FALSE(client.status().alert()) << client.status().last_error;
    VerifyOptions anchors{{provider.certificate}, {a->builtin_tsa_certificate()}};
    EXPECT_TRUE(verify_log(a->log(), anchors).ok());
    EXPECT_TRUE(verify_log(client.log(), anchors).ok());
    EXPECT_TRUE(std::filesystem::exists(dir / "a" / "tsa" / "tsa.pem"));
}

// [log] tsa_anchors changes when the TSA moves to another CA: the file written in place
// of the old one is used from the next seal, without a restart; a broken one is refused
// and the roots in use stay.
TEST_F(LogServiceTest, TsaAnchorsRenewedOnDiskVerifyTheNextSeal) {
    // Roots of another authority: the TSA's tokens do not verify under them.
    auto anchors = dir / "tsa-anchors.pem";
    fs::write_file_durable(anchors, crypto::certificate_pem(provider.certificate.get()));
    auto& client = start_client(anchors);

    append(client, "b-1");
    EXPECT_EQ(client.seal_now(), 0);
    EXPECT_TRUE(client.status().alert());
    EXPECT_NE(client.status().last_error.find("does not verify"), std::string::npos)
        << client.status().last_error;

    auto replace = [&](const std::string& text) {
        fs::write_file_durable(dir / "next.pem", text);
        std::filesystem::rename(dir / "next.pem", anchors);
    };
    replace(crypto::certificate_pem(a->builtin_tsa_certificate().get()));
    EXPECT_TRUE(trust->reload_if_changed());
    append(client, "b-2");
    EXPECT_EQ(client.seal_now(), 2) << client.status().last_error;  // the segment left unsealed and this one
    EXPECT_FALSE(client.status().alert()) << client.status().last_error;

    replace("-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n");
    EXPECT_FALSE(trust->reload_if_changed());
    EXPECT_FALSE(trust->reload_if_changed()) << "the same broken file read again";
    append(client, "b-3");
    EXPECT_EQ(client.seal_now(), 1) << client.status().last_error;
    VerifyOptions verify{{provider.certificate}, {a->builtin_tsa_certificate()}};
    EXPECT_TRUE(verify_log(client.log(), verify).ok());
}

}  // namespace
}  // namespace pecd::log::test
