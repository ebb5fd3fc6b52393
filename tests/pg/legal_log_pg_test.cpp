// legal_log_pg_test.cpp - the legal log's database-facing cases on a real PostgreSQL server
//
// The log's own suite (tests/log) runs on SQLite; these cases repeat on PostgreSQL
// (pg_server.hpp) what depends on the database: records and search keys, a record and
// its state change committing or rolling back together, several nodes appending at once
// into one gapless chain (appenders serialise on log_head; conflicts are replayed), and
// seals (BYTEA) plus retention verified end to end.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "core/error.hpp"
#include "log/sealer.hpp"
#include "log/verify.hpp"
#include "log_fixture.hpp"
#include "test_database.hpp"

namespace pecd::log::test {
namespace {

using namespace std::chrono;

class PgLegalLogTest : public LogFixture {
protected:
    void SetUp() override {
        db = target.open();
        log.emplace(*db);
        db->migrate("logtest", {{1, "CREATE TABLE test_state (id BIGINT PRIMARY KEY, state TEXT NOT NULL)"}});
        provider = make_provider_identity(dir);
    }
    ::pecd::test::TestDatabase target{"postgresql"};
};

TEST_F(PgLegalLogTest, RecordsAreSearchableBeforeAndAfterIndexingAndVerify) {
    EXPECT_EQ(db->backend(), "postgresql");
    for (int i = 1; i <= 12; ++i)
        change_and_log(i, pec_event(i % 2 ? EventKind::acceptance : EventKind::delivery,
                                    "msg-" + std::to_string(i % 3), clock.now(), i));
    EXPECT_EQ(log->head_seq(), 12);
    SearchQuery q;
    q.message_id = "msg-1";
    EXPECT_EQ(log->search(q).size(), 4u);
    q = {};
    q.address = "ESTERNO@mail.example";
    EXPECT_EQ(log->search(q).size(), 12u);
    // Keys come with the append; a tail without them (an older log) is caught up.
    EXPECT_EQ(log->index_pending(), 0);
    db->transact([](store::Tx& tx) {
        tx.exec("DELETE FROM log_keys WHERE seq > 3");
        tx.exec("UPDATE log_head SET indexed_seq = 3 WHERE id = 1");
    });
    q = {};
    q.message_id = "msg-1";
    EXPECT_EQ(log->search(q).size(), 4u);
    EXPECT_EQ(log->index_pending(5), 5);
    EXPECT_EQ(log->index_pending(), 4);
    EXPECT_EQ(log->index_pending(), 0);
    q = {};
    q.message_id = "<client-msg-2>";
    auto found = log->search(q);
    ASSERT_EQ(found.size(), 4u);
    EXPECT_EQ(parse_record(found[0].record).event.pec_msgid, "msg-2");
    EXPECT_EQ(found[0].seq, 2);
    auto report = verify_log(*log);
    EXPECT_TRUE(report.ok()) << report.problems.front().what;
}

TEST_F(PgLegalLogTest, NoRecordWithoutItsStateChangeAndNoChangeWithoutRecord) {
    change_and_log(1, pec_event(EventKind::acceptance, "m", clock.now()));
    EXPECT_THROW(db->transact([&](store::Tx& tx) {
        tx.exec("INSERT INTO test_state (id, state) VALUES (?, ?)", {std::int64_t{99}, std::string("x")});
        log->append(tx, pec_event(EventKind::delivery, "rolled-back", clock.now()));
        throw TemporaryError("delivery failed before commit");
    }),
                 TemporaryError);
    // A record whose state change fails (duplicate key) rolls back too.
    EXPECT_THROW(change_and_log(1, pec_event(EventKind::delivery, "dup", clock.now())), Error);
    SearchQuery q;
    q.message_id = "rolled-back";
    EXPECT_TRUE(log->search(q).empty());
    q.message_id = "dup";
    EXPECT_TRUE(log->search(q).empty());
    db->read(
        [](store::Tx& tx) { EXPECT_EQ(tx.query_one("SELECT COUNT(*) FROM test_state")->integer(0), 1); });
    EXPECT_EQ(change_and_log(2, pec_event(EventKind::delivery, "m", clock.now())), 2);
    EXPECT_TRUE(verify_log(*log).ok());
}

TEST_F(PgLegalLogTest, NodesAppendingAtOnceFormOneGaplessChain) {
    // Two nodes (two Database handles, each with its own LegalLog), two threads each.
    auto other_db = target.open();
    LegalLog other_log(*other_db);
    constexpr int threads = 4, per_thread = 20;
    std::atomic<int> next_id{1};
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t)
        ts.emplace_back([&, t] {
            store::Database& d = t % 2 ? *other_db : *db;
            LegalLog& l = t % 2 ? other_log : *log;
            for (int i = 0; i < per_thread; ++i) {
                std::int64_t id = next_id++;
                auto e = pec_event(EventKind::delivery, "node" + std::to_string(t % 2), clock.now(),
                                   static_cast<int>(id));
                d.transact([&](store::Tx& tx) {
                    tx.exec("INSERT INTO test_state (id, state) VALUES (?, 'delivered')", {id});
                    l.append(tx, e);
                });
            }
        });
    for (auto& t : ts) t.join();
    EXPECT_EQ(log->head_seq(), threads * per_thread);
    auto all = log->records(1, 1000);
    ASSERT_EQ(all.size(), static_cast<std::size_t>(threads * per_thread));
    for (std::size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i].seq, static_cast<std::int64_t>(i + 1));
    auto report = verify_log(*log);
    EXPECT_TRUE(report.ok()) << report.problems.front().what;
}

TEST_F(PgLegalLogTest, SealsAndRetentionVerifyAnchored) {
    auto tsa_identity = crypto::create_tsa_identity("pg test TSA");
    LocalTimestampSource source(std::make_shared<crypto::TimestampAuthority>(tsa_identity, clock));
    SealerOptions options;
    options.retention_months = 30;
    Sealer sealer(*log, provider, source, clock, options);
    for (int i = 1; i <= 4; ++i) change_and_log(i, pec_event(EventKind::acceptance, "old", clock.now(), i));
    ASSERT_EQ(sealer.run_once(true), 1);
    clock.advance(hours(24 * 400));
    for (int i = 5; i <= 7; ++i) change_and_log(i, pec_event(EventKind::delivery, "new", clock.now(), i));
    ASSERT_EQ(sealer.run_once(true), 1);
    auto segs = log->segments();
    ASSERT_EQ(segs.size(), 2u);
    EXPECT_TRUE(segs[0].sealed());
    // The seal's DER bytes survive BYTEA intact: the anchored check verifies them.
    VerifyOptions anchored{{provider.certificate}, {tsa_identity.certificate}};
    auto report = verify_log(*log, anchored);
    EXPECT_TRUE(report.ok()) << report.problems.front().what;
    EXPECT_EQ(report.segments_sealed, 2);
    clock.advance(hours(24 * 520));
    sealer.run_once(true);
    auto kept = log->records(1, 100);
    ASSERT_EQ(kept.size(), 4u);  // records 5..7 and the purge record 8
    EXPECT_EQ(kept.front().seq, 5);
    EXPECT_EQ(parse_record(kept.back().record).event.kind, EventKind::purge);
    report = verify_log(*log, anchored);
    EXPECT_TRUE(report.ok()) << report.problems.front().what;
    EXPECT_EQ(report.segments_purged, 1);
}

}  // namespace
}  // namespace pecd::log::test
