// spool_test.cpp - the durable queue through its MessageSink interface and runner API
#include "queue/spool.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <future>
#include <mutex>
#include <thread>

#include "core/calendar.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "temp_dir.hpp"

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
    if (f.wait_for(std::chrono::seconds(20)) != std::future_status::ready) return {false, {}, "timeout"};
    return f.get();
}

std::size_t files_in(const std::filesystem::path& d) {
    std::size_t n = 0;
    for (auto& e : std::filesystem::directory_iterator(d)) (void)e, ++n;
    return n;
}

// Every field load() returns, for comparing two loads of one message.
std::string describe(const QueuedMessage& q) {
    const auto& e = q.envelope;
    std::string out = q.id + "|" + e.mail_from + "|" + e.dsn_ret + "|" + e.dsn_envid + "|" + e.body_type +
                      "|" + std::to_string(e.smtputf8) + "|" + std::to_string(q.size) + "|" +
                      std::to_string(e.received_at.time_since_epoch().count()) + "|" +
                      std::to_string(q.is_dsn) + "|" + e.session.listener + "|" + e.session.client_ip + "|" +
                      e.session.helo + "|" + e.session.auth_user + "|" + e.session.tls_protocol + "|" +
                      e.session.tls_cipher + "|" + std::to_string(static_cast<int>(q.message_class)) + "|" +
                      std::to_string(q.delay_warned) + "|" + std::to_string(e.recipients.size());
    for (const auto& r : q.recipients)
        out += "\n" + std::to_string(r.id) + "|" + r.address + "|" + r.notify + "|" + r.orcpt + "|" +
               std::to_string(static_cast<int>(r.state)) + "|" + std::to_string(r.attempts) + "|" +
               std::to_string(r.next_attempt.time_since_epoch().count()) + "|" + r.last_error;
    return out;
}

class SpoolTest : public ::testing::Test {
protected:
    SpoolTest() : db(store::open_sqlite((dir.path() / "pecd.db").string())) { reopen(); }
    void reopen() {
        spool.reset();
        SpoolOptions o;
        o.min_free_bytes = 1 << 20;
        spool = std::make_unique<Spool>(*db, dir.path() / "queue", SystemClock::instance(), o);
    }
    test::TempDir dir;
    std::unique_ptr<store::Database> db;
    std::unique_ptr<Spool> spool;
};

TEST_F(SpoolTest, CommittedMessageIsStoredWithItsEnvelope) {
    auto e = envelope({"a@local.test", "b@remote.test"});
    e.recipients[1].notify = "FAILURE,DELAY";
    e.dsn_ret = "HDRS";
    e.dsn_envid = "env-1";
    auto m = spool->begin(e);
    std::string body = "Subject: x\r\n\r\n";
    for (int i = 0; i < 5000; ++i) body += "line " + std::to_string(i) + "\r\n";
    for (std::size_t i = 0; i < body.size(); i += 777) m->write(std::string_view(body).substr(i, 777));
    std::mutex notified_mutex;  // on_committed runs on the committer thread
    std::vector<std::string> notified;
    std::vector<Spool::Origin> origins;
    spool->on_committed([&](const std::vector<std::string>& ids, Spool::Origin origin) {
        std::lock_guard lock(notified_mutex);
        notified.insert(notified.end(), ids.begin(), ids.end());
        origins.push_back(origin);
    });
    auto r = commit_and_wait(*m);
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_FALSE(r.queue_id.empty());
    EXPECT_EQ(fs::read_file(spool->data_path(r.queue_id)), body);
    auto q = spool->load(r.queue_id);
    ASSERT_TRUE(q);
    EXPECT_EQ(q->envelope.mail_from, "sender@example.test");
    EXPECT_EQ(q->envelope.dsn_ret, "HDRS");
    EXPECT_EQ(q->envelope.dsn_envid, "env-1");
    EXPECT_EQ(q->envelope.session.client_ip, "127.0.0.1");
    EXPECT_EQ(q->size, body.size());
    ASSERT_EQ(q->recipients.size(), 2u);
    EXPECT_EQ(q->recipients[1].address, "b@remote.test");
    EXPECT_EQ(q->recipients[1].notify, "FAILURE,DELAY");
    EXPECT_EQ(q->recipients[0].state, RecipientState::pending);
    EXPECT_EQ(spool->due(SystemClock::instance().now(), 10), std::vector<std::string>{r.queue_id});
    // The notification may follow the commit callback; wait for it, bounded.
    for (int i = 0; i < 500; ++i) {
        {
            std::lock_guard lock(notified_mutex);
            if (!notified.empty()) break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::lock_guard lock(notified_mutex);
    EXPECT_EQ(notified, std::vector<std::string>{r.queue_id});
    EXPECT_EQ(origins, std::vector<Spool::Origin>{Spool::Origin::received});
}

// A damaged or hand-edited database may hold times the clock cannot hold: they are read
// as the ends of the stored range (a retry not due for 170 years, not one due at once).
TEST_F(SpoolTest, StoredTimesOutsideTheClocksRangeReadAsItsEnds) {
    auto m = spool->begin(envelope({"a@remote.test"}));
    m->write("Subject: x\r\n\r\nbody\r\n");
    auto r = commit_and_wait(*m);
    ASSERT_TRUE(r.ok) << r.error;
    db->transact([&](store::Tx& tx) {
        tx.exec("UPDATE queue_recipients SET next_attempt = 9223372036854775807");
        tx.exec("UPDATE queue_messages SET received_at = -9223372036854775807");
    });
    reopen();
    auto q = spool->load(r.queue_id);
    ASSERT_TRUE(q);
    EXPECT_EQ(q->recipients[0].next_attempt, TimePoint(kLatestStoredDay));
    EXPECT_EQ(q->envelope.received_at, TimePoint(kEarliestStoredDay));
    EXPECT_EQ(spool->next_due(), TimePoint(kLatestStoredDay));
    EXPECT_TRUE(spool->due(SystemClock::instance().now(), 10).empty());
}

TEST_F(SpoolTest, AbortAndUncommittedLeaveNothing) {
    {
        auto m = spool->begin(envelope({"a@local.test"}));
        m->write("partial");
        m->abort();
    }
    {
        auto m = spool->begin(envelope({"a@local.test"}));
        m->write("dropped without commit");
    }
    EXPECT_EQ(files_in(dir.path() / "queue" / "msg"), 0u);
    EXPECT_TRUE(spool->list().empty());
}

// Commits threads x per_thread small messages from `threads` threads at once; returns how
// many were acknowledged.
int commit_concurrently(Spool& spool, int threads, int per_thread) {
    std::atomic<int> ok{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t)
        ts.emplace_back([&, t] {
            for (int i = 0; i < per_thread; ++i) {
                auto m = spool.begin(envelope({"r" + std::to_string(t) + "@x.test"}));
                m->write("message " + std::to_string(t) + "/" + std::to_string(i) + "\r\n");
                if (commit_and_wait(*m).ok) ++ok;
            }
        });
    for (auto& t : ts) t.join();
    return ok;
}

TEST_F(SpoolTest, ManyConcurrentCommitsShareRounds) {
    constexpr int threads = 8, per_thread = 40;
    EXPECT_EQ(commit_concurrently(*spool, threads, per_thread), threads * per_thread);
    EXPECT_EQ(spool->list(10000).size(), static_cast<std::size_t>(threads * per_thread));
    EXPECT_LT(spool->committer().rounds(), static_cast<std::size_t>(threads * per_thread))
        << "every commit took its own transaction";
}

TEST_F(SpoolTest, UpdatesRetireTheMessageWhenNoRecipientIsPending) {
    auto m = spool->begin(envelope({"a@x.test", "b@x.test"}));
    m->write("x\r\n");
    auto id = commit_and_wait(*m).queue_id;
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
}

TEST_F(SpoolTest, AFinishedMessagesFileIsReusedByTheNextOne) {
    auto m = spool->begin(envelope({"a@x.test"}));
    m->write("first\r\n");
    auto first = commit_and_wait(*m).queue_id;
    struct stat st {};
    ASSERT_EQ(::stat(spool->data_path(first).c_str(), &st), 0);
    auto q = *spool->load(first);
    spool->update(first, {{q.recipients[0].id, RecipientState::delivered, 1, {}, ""}});
    EXPECT_FALSE(std::filesystem::exists(spool->data_path(first)));
    EXPECT_EQ(files_in(dir.path() / "queue" / "spare"), 1u);

    auto second = spool->enqueue(envelope({"b@x.test"}), "second", false);
    struct stat again {};
    ASSERT_EQ(::stat(spool->data_path(second).c_str(), &again), 0);
    EXPECT_EQ(again.st_ino, st.st_ino);
    EXPECT_EQ(fs::read_file(spool->data_path(second)), "second");
    EXPECT_EQ(files_in(dir.path() / "queue" / "spare"), 0u);
    reopen();  // a reused file is a message like any other across a restart
    EXPECT_EQ(fs::read_file(spool->data_path(second)), "second");
}

TEST_F(SpoolTest, AReceivedMessageInALongerReusedFileKeepsOnlyItsOwnBytes) {
    auto m = spool->begin(envelope({"a@x.test"}));
    m->write(std::string(3000, 'x') + "\r\n");
    auto first = commit_and_wait(*m).queue_id;
    auto q = *spool->load(first);
    spool->update(first, {{q.recipients[0].id, RecipientState::delivered, 1, {}, ""}});
    ASSERT_EQ(files_in(dir.path() / "queue" / "spare"), 1u);

    auto next = spool->begin(envelope({"b@x.test"}));
    next->write("short\r\n");
    auto second = commit_and_wait(*next).queue_id;
    EXPECT_EQ(files_in(dir.path() / "queue" / "spare"), 0u);  // the spare was taken
    EXPECT_EQ(fs::read_file(spool->data_path(second)), "short\r\n");
    EXPECT_EQ(spool->load(second)->size, 7u);
}

TEST_F(SpoolTest, RestartRemovesUnacknowledgedFilesAndKeepsTheRest) {
    auto m = spool->begin(envelope({"a@x.test"}));
    m->write("kept\r\n");
    auto id = commit_and_wait(*m).queue_id;
    // A file that never got its rows, as left by a crash between write and commit.
    fs::write_file_durable(dir.path() / "queue" / "msg" / "0000orphan", "half");
    reopen();
    EXPECT_FALSE(std::filesystem::exists(dir.path() / "queue" / "msg" / "0000orphan"));
    EXPECT_EQ(fs::read_file(spool->data_path(id)), "kept\r\n");
    EXPECT_TRUE(spool->load(id));
}

TEST_F(SpoolTest, LinkedGeneratedMessageOutlivesItsSourceAndAnUncommittedLinkIsRemoved) {
    auto m = spool->begin(envelope({"a@x.test"}));
    m->write("handed on unchanged\r\n");
    auto source = commit_and_wait(*m).queue_id;
    auto linked = spool->link_generated(source);
    auto unreferenced = spool->link_generated(source);
    EXPECT_NE(linked, source);
    spool->committer().run([&](store::Tx& tx) {
        spool->insert_generated(tx, linked, envelope({"b@x.test"}), 21, false, MessageClass::pec);
    });
    auto q = *spool->load(source);
    spool->update(source, {{q.recipients[0].id, RecipientState::delivered, 1, {}, ""}});
    EXPECT_FALSE(std::filesystem::exists(spool->data_path(source)));
    EXPECT_EQ(fs::read_file(spool->data_path(linked)), "handed on unchanged\r\n");
    // The second name never got rows: the next open removes it, and only it.
    reopen();
    EXPECT_FALSE(std::filesystem::exists(spool->data_path(unreferenced)));
    EXPECT_EQ(fs::read_file(spool->data_path(linked)), "handed on unchanged\r\n");
    ASSERT_TRUE(spool->load(linked));
    EXPECT_EQ(spool->load(linked)->recipients[0].address, "b@x.test");
    EXPECT_THROW(spool->link_generated("no-such-message"), TemporaryError);
}

TEST_F(SpoolTest, FirstLoadAfterCommitReturnsExactlyTheStoredRows) {
    // The first load() of a message just committed comes from memory; a second Spool on
    // the same database (as pecctl opens it) reads the rows. Both must agree, field by
    // field, for a received, an enqueued and a generated message.
    SpoolOptions reader_options;
    reader_options.recover = false;
    reader_options.spare_files = 0;
    Spool reader(*db, dir.path() / "queue", SystemClock::instance(), reader_options);
    auto e = envelope({"a@local.test", "b@remote.test"});
    e.recipients[0].notify = "SUCCESS,FAILURE";
    e.recipients[1].orcpt = "rfc822;b@remote.test";
    e.dsn_ret = "FULL";
    e.dsn_envid = "env-7";
    e.body_type = "8BITMIME";
    e.smtputf8 = true;
    e.declared_size = 999;  // not kept: load() never returns it
    e.session.listener = "submission";
    e.session.helo = "client.test";
    e.session.auth_user = "a@local.test";
    e.session.tls_protocol = "TLSv1.3";
    e.session.tls_cipher = "TLS_AES_128_GCM_SHA256";
    e.received_at = TimePoint(std::chrono::microseconds(1'700'000'000'123'456));
    auto m = spool->begin(e);
    m->write("received\r\n");
    auto received = commit_and_wait(*m).queue_id;
    auto enqueued = spool->enqueue(e, "generated\r\n", true, {}, MessageClass::pec);
    auto generated = spool->write_generated("receipt\r\n");
    spool->committer().run(
        [&](store::Tx& tx) { spool->insert_generated(tx, generated, e, 9, false, MessageClass::pec); });
    for (const auto& id : {received, enqueued, generated}) {
        auto fresh = spool->load(id);
        auto stored = reader.load(id);
        ASSERT_TRUE(fresh && stored) << id;
        EXPECT_EQ(describe(*fresh), describe(*stored));
        EXPECT_EQ(describe(*spool->load(id)), describe(*stored));  // the second load reads the rows
    }
    EXPECT_EQ(reader.load(received)->envelope.session.tls_cipher, "TLS_AES_128_GCM_SHA256");
    // An update goes to the rows the first load named.
    auto q = *spool->load(received);
    spool->update(received, {{q.recipients[1].id, RecipientState::failed, 1, {}, "550 no"}});
    auto after = reader.load(received);
    ASSERT_TRUE(after);
    EXPECT_EQ(after->recipients[1].state, RecipientState::failed);
    EXPECT_EQ(after->recipients[0].state, RecipientState::pending);
}

TEST_F(SpoolTest, RolledBackInsertIsNotLoaded) {
    EXPECT_THROW(spool->enqueue(envelope({"x@y.test"}), "dsn", true,
                                [](store::Tx&) { throw TemporaryError("caller step failed"); }),
                 TemporaryError);
    auto generated = spool->write_generated("receipt\r\n");
    EXPECT_THROW(spool->committer().run([&](store::Tx& tx) {
        spool->insert_generated(tx, generated, envelope({"b@x.test"}), 9, false, MessageClass::pec);
        throw TemporaryError("stage failed");
    }),
                 TemporaryError);
    spool->discard(generated);
    EXPECT_FALSE(spool->load(generated));
    EXPECT_TRUE(spool->list().empty());
    // What a rolled-back enqueue generated is neither in memory nor in the rows: the
    // only message left is the next one committed.
    auto id = spool->enqueue(envelope({"z@y.test"}), "dsn", true);
    auto all = spool->list();
    ASSERT_EQ(all.size(), 1u);
    EXPECT_EQ(all[0].id, id);
}

TEST_F(SpoolTest, EnqueueRunsTheCallersStepInTheSameTransaction) {
    EXPECT_THROW(spool->enqueue(envelope({"x@y.test"}, ""), "dsn", true,
                                [](store::Tx&) { throw TemporaryError("caller step failed"); }),
                 TemporaryError);
    EXPECT_TRUE(spool->list().empty());
    EXPECT_EQ(files_in(dir.path() / "queue" / "msg"), 0u);
    auto id = spool->enqueue(envelope({"x@y.test"}, ""), "dsn bytes", true);
    auto q = spool->load(id);
    ASSERT_TRUE(q);
    EXPECT_TRUE(q->is_dsn);
    EXPECT_EQ(q->envelope.mail_from, "");
}

TEST_F(SpoolTest, TooLittleFreeSpaceIsATemporaryRefusal) {
    SpoolOptions o;
    o.min_free_bytes = std::uint64_t{1} << 60;
    spool.reset();
    spool = std::make_unique<Spool>(*db, dir.path() / "queue", SystemClock::instance(), o);
    EXPECT_THROW(spool->begin(envelope({"a@x.test"})), TemporaryError);
}

}  // namespace
}  // namespace pecd::queue

namespace pecd::queue {
namespace {

// A real full disk: the spool on a 2 MB tmpfs (the tests run as root in their sandbox).
class FullDiskTest : public ::testing::Test {
protected:
    void SetUp() override {
        mount_point = dir.path() / "small";
        std::filesystem::create_directories(mount_point);
        auto cmd = "mount -t tmpfs -o size=2m tmpfs " + mount_point.string();
        ASSERT_EQ(std::system(cmd.c_str()), 0) << "cannot mount a tmpfs for the disk-full test";
        mounted = true;
    }
    void TearDown() override {
        spool.reset();
        if (mounted) std::system(("umount " + mount_point.string()).c_str());
    }
    test::TempDir dir;
    std::filesystem::path mount_point;
    bool mounted = false;
    std::unique_ptr<store::Database> db = store::open_sqlite((dir.path() / "pecd.db").string());
    std::unique_ptr<Spool> spool;
};

TEST_F(FullDiskTest, DiskFullWhileReceivingIsTemporaryAndLeavesNothing) {
    SpoolOptions o;
    o.min_free_bytes = 0;  // let the write itself hit the full disk
    spool = std::make_unique<Spool>(*db, mount_point / "queue", SystemClock::instance(), o);
    auto m = spool->begin(envelope({"a@x.test"}));
    std::string chunk(64 * 1024, 'x');
    bool refused = false;
    for (int i = 0; i < 64 && !refused; ++i) {  // 4 MB into a 2 MB file system
        try {
            m->write(chunk);
        } catch (const TemporaryError& e) {
            refused = true;
            EXPECT_NE(std::string(e.what()).find("No space"), std::string::npos) << e.what();
        }
    }
    if (!refused) {
        auto r = commit_and_wait(*m);
        EXPECT_FALSE(r.ok) << "a message larger than the disk was acknowledged";
        refused = !r.ok;
    } else {
        m->abort();
    }
    EXPECT_TRUE(refused);
    EXPECT_EQ(files_in(mount_point / "queue" / "msg"), 0u) << "half-written message left in the spool";
    EXPECT_TRUE(spool->list().empty());
    // Space is back: the next message goes through.
    auto ok = spool->begin(envelope({"a@x.test"}));
    ok->write("small\r\n");
    EXPECT_TRUE(commit_and_wait(*ok).ok);
    // And the free-space check refuses up front when the declared SIZE cannot fit.
    auto big = envelope({"a@x.test"});
    big.declared_size = 10ull << 20;
    EXPECT_THROW(spool->begin(big), TemporaryError);
}

TEST_F(SpoolTest, StoreErrorAtCommitIsReportedAndLeavesNoFile) {
    db->transact([](store::Tx& tx) {
        tx.exec(
            "CREATE TRIGGER fail_insert BEFORE INSERT ON queue_messages"
            " BEGIN SELECT RAISE(ABORT, 'injected store failure'); END");
    });
    auto m = spool->begin(envelope({"a@x.test"}));
    m->write("doomed\r\n");
    auto r = commit_and_wait(*m);
    EXPECT_FALSE(r.ok);
    EXPECT_NE(r.error.find("injected store failure"), std::string::npos) << r.error;
    EXPECT_EQ(files_in(dir.path() / "queue" / "msg"), 0u);
    db->transact([](store::Tx& tx) { tx.exec("DROP TRIGGER fail_insert"); });
    auto again = spool->begin(envelope({"a@x.test"}));
    again->write("fine\r\n");
    EXPECT_TRUE(commit_and_wait(*again).ok);
}

// [store] file_sync = "file_system": files are not synced one by one; each round that
// commits rows naming new files syncs the file system once, and a round without new
// files does not.
TEST_F(SpoolTest, WithAFileSystemSyncEachRoundOfNewFilesSyncsOnce) {
    auto sync = std::make_shared<FileSystemSync>(std::vector{dir.path()});
    spool.reset();
    SpoolOptions o;
    o.min_free_bytes = 1 << 20;
    o.file_system_sync = sync;
    spool = std::make_unique<Spool>(*db, dir.path() / "queue", SystemClock::instance(), o);
    constexpr int threads = 8, per_thread = 20;
    ASSERT_EQ(commit_concurrently(*spool, threads, per_thread), threads * per_thread);
    const auto syncs = sync->rounds();
    EXPECT_GT(syncs, 0u);
    EXPECT_LE(syncs, spool->committer().rounds());
    EXPECT_LT(syncs, static_cast<std::size_t>(threads * per_thread)) << "a sync per message";

    // A round that only changes rows has nothing to sync.
    auto listed = spool->list(1);
    ASSERT_EQ(listed.size(), 1u);
    auto q = *spool->load(listed[0].id);
    const auto rounds = spool->committer().rounds();
    spool->update(q.id, {{q.recipients[0].id, RecipientState::pending, 1,
                          SystemClock::instance().now() + std::chrono::minutes(5), "451 later"}});
    EXPECT_EQ(spool->committer().rounds(), rounds + 1);
    EXPECT_EQ(spool->load(q.id)->recipients[0].last_error, "451 later");
    EXPECT_EQ(sync->rounds(), syncs);

    // A generated file committed by a round is synced by that round.
    auto id = spool->write_generated("generated\r\n");
    spool->committer().run([&](store::Tx& tx) {
        spool->insert_generated(tx, id, envelope({"g@x.test"}), 11, false, MessageClass::pec);
    });
    EXPECT_EQ(sync->rounds(), syncs + 1);
    EXPECT_EQ(fs::read_file(spool->data_path(id)), "generated\r\n");
    // Outside a round, sync_generated() syncs at once.
    spool->sync_generated();
    EXPECT_EQ(sync->rounds(), syncs + 2);
}

}  // namespace
}  // namespace pecd::queue
