// spool_pg_test.cpp - the queue's database-facing cases on a real PostgreSQL server
//
// The spool's own suite (tests/queue/spool_test.cpp) runs on SQLite; these cases repeat
// the parts that depend on the database - envelope rows, group commit under concurrency,
// updates and retirement, restart recovery, the caller's step in the same transaction, a
// store failure at commit - on PostgreSQL (pg_server.hpp), through the Spool's API.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

#include "core/error.hpp"
#include "core/fs.hpp"
#include "queue/spool.hpp"
#include "test_database.hpp"

namespace pecd::queue {
namespace {

Envelope envelope(std::vector<std::string> rcpts, std::string from = "sender@example.test") {
    Envelope e;
    e.mail_from = std::move(from);
    for (auto& r : rcpts) e.recipients.push_back({r, "", ""});
    e.session.client_ip = "127.0.0.1";
    return e;
}

CommitResult commit_and_wait(IncomingMessage& m) {
    std::promise<CommitResult> p;
    auto f = p.get_future();
    m.commit([&](CommitResult r) { p.set_value(std::move(r)); });
    if (f.wait_for(std::chrono::seconds(30)) != std::future_status::ready) return {false, {}, "timeout"};
    return f.get();
}

std::size_t files_in(const std::filesystem::path& d) {
    std::size_t n = 0;
    for (auto& e : std::filesystem::directory_iterator(d)) (void)e, ++n;
    return n;
}

class PgSpoolTest : public ::testing::Test {
protected:
    PgSpoolTest() : db(target.open()) { reopen(); }
    // A restart: a new database handle (new connections) and a new spool over the same dir.
    void reopen() {
        spool.reset();
        db = target.open();
        SpoolOptions o;
        o.min_free_bytes = 1 << 20;
        spool = std::make_unique<Spool>(*db, target.dir() / "queue", SystemClock::instance(), o);
    }
    std::string commit(const Envelope& e, const std::string& body) {
        auto m = spool->begin(e);
        m->write(body);
        auto r = commit_and_wait(*m);
        EXPECT_TRUE(r.ok) << r.error;
        return r.queue_id;
    }
    test::TestDatabase target{"postgresql"};
    std::unique_ptr<store::Database> db;
    std::unique_ptr<Spool> spool;
};

TEST_F(PgSpoolTest, CommittedMessageIsStoredWithItsEnvelope) {
    EXPECT_EQ(db->backend(), "postgresql");
    auto e = envelope({"a@local.test", "b@remote.test"});
    e.recipients[1].notify = "FAILURE,DELAY";
    e.dsn_ret = "HDRS";
    e.dsn_envid = "env-1";
    e.smtputf8 = true;
    e.session.helo = "client.example";
    std::string body = "Subject: x\r\n\r\n";
    for (int i = 0; i < 2000; ++i) body += "line " + std::to_string(i) + "\r\n";
    auto id = commit(e, body);
    ASSERT_FALSE(id.empty());
    EXPECT_EQ(fs::read_file(spool->data_path(id)), body);
    auto q = spool->load(id);
    ASSERT_TRUE(q);
    EXPECT_EQ(q->envelope.mail_from, "sender@example.test");
    EXPECT_EQ(q->envelope.dsn_ret, "HDRS");
    EXPECT_EQ(q->envelope.dsn_envid, "env-1");
    EXPECT_TRUE(q->envelope.smtputf8);
    EXPECT_EQ(q->envelope.session.helo, "client.example");
    EXPECT_EQ(q->size, body.size());
    ASSERT_EQ(q->recipients.size(), 2u);
    EXPECT_EQ(q->recipients[0].address, "a@local.test");
    EXPECT_EQ(q->recipients[1].notify, "FAILURE,DELAY");
    EXPECT_EQ(q->recipients[0].state, RecipientState::pending);
    EXPECT_EQ(spool->due(SystemClock::instance().now(), 10), std::vector<std::string>{id});
}

TEST_F(PgSpoolTest, ManyConcurrentCommitsShareRoundsAndAllLand) {
    constexpr int threads = 8, per_thread = 25;
    std::atomic<int> ok{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t)
        ts.emplace_back([&, t] {
            for (int i = 0; i < per_thread; ++i) {
                auto m = spool->begin(envelope({"r" + std::to_string(t) + "@x.test"}));
                m->write("message " + std::to_string(t) + "/" + std::to_string(i) + "\r\n");
                if (commit_and_wait(*m).ok) ++ok;
            }
        });
    for (auto& t : ts) t.join();
    EXPECT_EQ(ok, threads * per_thread);
    EXPECT_EQ(spool->list(10000).size(), static_cast<std::size_t>(threads * per_thread));
    EXPECT_LT(spool->committer().rounds(), static_cast<std::size_t>(threads * per_thread))
        << "every commit took its own transaction";
}

TEST_F(PgSpoolTest, UpdatesRetireTheMessageWhenNoRecipientIsPending) {
    auto id = commit(envelope({"a@x.test", "b@x.test"}), "x\r\n");
    auto q = *spool->load(id);
    auto later = SystemClock::instance().now() + std::chrono::minutes(5);
    spool->update(id, {{q.recipients[0].id, RecipientState::delivered, 1, {}, ""},
                       {q.recipients[1].id, RecipientState::pending, 1, later, "451 try later"}});
    q = *spool->load(id);
    EXPECT_EQ(q.recipients[0].state, RecipientState::delivered);
    EXPECT_EQ(q.recipients[1].attempts, 1);
    EXPECT_EQ(q.recipients[1].last_error, "451 try later");
    EXPECT_TRUE(spool->due(SystemClock::instance().now(), 10).empty());
    ASSERT_TRUE(spool->next_due());
    EXPECT_EQ(std::chrono::duration_cast<std::chrono::milliseconds>(*spool->next_due() - later).count(), 0);
    spool->update(id, {{q.recipients[1].id, RecipientState::failed, 2, {}, "550 no such user"}});
    EXPECT_FALSE(spool->load(id));
    EXPECT_FALSE(std::filesystem::exists(spool->data_path(id)));
    EXPECT_FALSE(spool->next_due());
}

TEST_F(PgSpoolTest, RestartRemovesUnacknowledgedFilesAndKeepsTheRest) {
    auto id = commit(envelope({"a@x.test"}), "kept\r\n");
    fs::write_file_durable(target.dir() / "queue" / "msg" / "0000orphan", "half");
    reopen();
    EXPECT_FALSE(std::filesystem::exists(target.dir() / "queue" / "msg" / "0000orphan"));
    EXPECT_EQ(fs::read_file(spool->data_path(id)), "kept\r\n");
    EXPECT_TRUE(spool->load(id));
}

TEST_F(PgSpoolTest, EnqueueRunsTheCallersStepInTheSameTransaction) {
    db->migrate("pgspooltest",
                {{1, "CREATE TABLE side_effect (id INTEGER PRIMARY KEY, what TEXT NOT NULL)"}});
    EXPECT_THROW(spool->enqueue(envelope({"x@y.test"}, ""), "dsn", true,
                                [](store::Tx& tx) {
                                    tx.exec("INSERT INTO side_effect (what) VALUES ('rolled back')");
                                    throw TemporaryError("caller step failed");
                                }),
                 TemporaryError);
    EXPECT_TRUE(spool->list().empty());
    EXPECT_EQ(files_in(target.dir() / "queue" / "msg"), 0u);
    auto id = spool->enqueue(envelope({"x@y.test"}, ""), "dsn bytes", true, [](store::Tx& tx) {
        tx.exec("INSERT INTO side_effect (what) VALUES ('kept')");
    });
    auto q = spool->load(id);
    ASSERT_TRUE(q);
    EXPECT_TRUE(q->is_dsn);
    EXPECT_EQ(q->envelope.mail_from, "");
    db->read([](store::Tx& tx) {
        auto rows = tx.query("SELECT what FROM side_effect");
        ASSERT_EQ(rows.size(), 1u);
        EXPECT_EQ(rows[0].text(0), "kept");
    });
}

TEST_F(PgSpoolTest, StoreErrorAtCommitIsReportedAndLeavesNoFile) {
    db->transact([](store::Tx& tx) {
        tx.exec(
            "CREATE FUNCTION fail_insert() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN RAISE EXCEPTION 'injected store failure'; END $$");
        tx.exec(
            "CREATE TRIGGER fail_insert BEFORE INSERT ON queue_messages"
            " FOR EACH ROW EXECUTE FUNCTION fail_insert()");
    });
    auto m = spool->begin(envelope({"a@x.test"}));
    m->write("doomed\r\n");
    auto r = commit_and_wait(*m);
    EXPECT_FALSE(r.ok);
    EXPECT_NE(r.error.find("injected store failure"), std::string::npos) << r.error;
    EXPECT_EQ(files_in(target.dir() / "queue" / "msg"), 0u);
    db->transact([](store::Tx& tx) { tx.exec("DROP TRIGGER fail_insert ON queue_messages"); });
    EXPECT_FALSE(commit(envelope({"a@x.test"}), "fine\r\n").empty());
}

// Two nodes on one database and one spool directory: claims keep them off each other's
// messages until a lease runs out, and an outcome recorded twice rolls back.
TEST_F(PgSpoolTest, NodesClaimMessagesAndAnOutcomeIsRecordedOnce) {
    ManualClock clock(SystemClock::instance().now());
    auto options = [](const std::string& name) {
        SpoolOptions o;
        o.min_free_bytes = 1 << 20;
        o.node = name;
        o.lease = std::chrono::seconds(30);
        o.orphan_age = std::chrono::hours(1);
        return o;
    };
    auto db2 = target.open();
    auto one = std::make_unique<Spool>(*db, target.dir() / "queue", clock, options("node1"));
    auto two = std::make_unique<Spool>(*db2, target.dir() / "queue", clock, options("node2"));

    auto m = one->begin(envelope({"a@x.test"}));
    m->write("x\r\n");
    auto r = commit_and_wait(*m);
    ASSERT_TRUE(r.ok) << r.error;
    const auto id = r.queue_id;
    EXPECT_EQ(two->due(clock.now(), 10), std::vector<std::string>{id}) << "unclaimed: any node may take it";
    ASSERT_TRUE(one->claim(id));
    EXPECT_TRUE(one->claim(id)) << "the holder renews its lease";
    EXPECT_FALSE(two->claim(id));
    EXPECT_TRUE(two->due(clock.now(), 10).empty()) << "another node's live claim is not offered";
    clock.advance(std::chrono::seconds(31));
    EXPECT_EQ(two->due(clock.now(), 10), std::vector<std::string>{id});
    ASSERT_TRUE(two->claim(id)) << "an expired lease is taken over";
    EXPECT_FALSE(one->claim(id));

    // Both nodes finish the same recipient: the second recording changes nothing, and
    // what its transaction would have generated is rolled back with it.
    auto q = *two->load(id);
    const auto rid = q.recipients[0].id;
    two->committer().run([&](store::Tx& tx) {
        Spool::apply_updates(tx, id, {{rid, RecipientState::delivered, 1, {}, "ok"}});
    });
    EXPECT_THROW(one->committer().run([&](store::Tx& tx) {
        tx.exec("CREATE TABLE IF NOT EXISTS side_effect (id BIGINT)");
        tx.exec("INSERT INTO side_effect (id) VALUES (1)");
        Spool::apply_updates(tx, id, {{rid, RecipientState::failed, 1, {}, "late"}});
    }),
                 StaleQueueUpdate);
    EXPECT_EQ(two->load(id)->recipients[0].state, RecipientState::delivered);
    db->read([](store::Tx& tx) {
        // DDL is transactional on PostgreSQL: the rolled-back table does not exist.
        auto t =
            tx.query_one("SELECT count(*) FROM information_schema.tables WHERE table_name = 'side_effect'");
        EXPECT_EQ(t->integer(0), 0);
    });

    // A young file no row names (another node is still writing it) survives a node's
    // restart; an old one is removed.
    auto young = target.dir() / "queue" / "msg" / "0000000000000000000young";
    fs::write_file_durable(young, "partial", 0640);
    two.reset();
    two = std::make_unique<Spool>(*db2, target.dir() / "queue", clock, options("node2"));
    EXPECT_TRUE(std::filesystem::exists(young));
    std::filesystem::last_write_time(young,
                                     std::filesystem::file_time_type::clock::now() - std::chrono::hours(2));
    two.reset();
    two = std::make_unique<Spool>(*db2, target.dir() / "queue", clock, options("node2"));
    EXPECT_FALSE(std::filesystem::exists(young));
}

}  // namespace
}  // namespace pecd::queue
