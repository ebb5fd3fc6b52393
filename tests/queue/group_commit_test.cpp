// group_commit_test.cpp - the group committer's rounds: the hook of the next batch beside
// the commit of the one before, the hook always before its own batch's commit, failures
#include "queue/group_commit.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "temp_dir.hpp"

namespace pecd::queue {
namespace {

using namespace std::chrono_literals;

// A latch the test opens; waits are bounded so a broken committer fails the test instead
// of hanging it.
class Gate {
public:
    void open() {
        std::lock_guard lock(mutex_);
        open_ = true;
        cv_.notify_all();
    }
    bool wait() {
        std::unique_lock lock(mutex_);
        return cv_.wait_for(lock, 10s, [&] { return open_; });
    }

private:
    std::mutex mutex_;
    std::condition_variable cv_;
    bool open_ = false;
};

template <class Pred>
bool eventually(Pred pred) {
    for (auto end = std::chrono::steady_clock::now() + 10s; std::chrono::steady_clock::now() < end;) {
        if (pred()) return true;
        std::this_thread::sleep_for(1ms);
    }
    return pred();
}

class GroupCommitTest : public ::testing::Test {
protected:
    GroupCommitTest() : db(store::open_sqlite((dir.path() / "t.db").string())) {
        db->transact([](store::Tx& tx) { tx.exec("CREATE TABLE t (v INTEGER)"); });
    }
    long long count() {
        long long n = 0;
        db->transact([&](store::Tx& tx) { n = tx.query_one("SELECT count(*) FROM t")->integer(0); });
        return n;
    }
    test::TempDir dir;
    std::unique_ptr<store::Database> db;
};

TEST_F(GroupCommitTest, TheNextBatchsHookRunsWhileTheBatchBeforeCommits) {
    std::atomic<int> hooks{0};
    GroupCommitter committer(*db, [&] { ++hooks; });
    Gate release, first_inside;
    std::atomic<int> done{0};
    committer.submit(
        [&](store::Tx& tx) {
            first_inside.open();
            ASSERT_TRUE(release.wait());
            tx.exec("INSERT INTO t VALUES (1)");
        },
        [&](std::exception_ptr e) { done += e ? 100 : 1; });
    ASSERT_TRUE(first_inside.wait());
    EXPECT_EQ(hooks.load(), 1);
    // The first round is inside its transaction; the second batch's hook runs meanwhile.
    committer.submit([](store::Tx& tx) { tx.exec("INSERT INTO t VALUES (2)"); },
                     [&](std::exception_ptr e) { done += e ? 100 : 1; });
    EXPECT_TRUE(eventually([&] { return hooks.load() == 2; })) << "the hook waited for the commit";
    EXPECT_EQ(done.load(), 0);
    // One batch ahead at most: what is submitted now waits for the next round's hook.
    committer.submit([](store::Tx& tx) { tx.exec("INSERT INTO t VALUES (3)"); },
                     [&](std::exception_ptr e) { done += e ? 100 : 1; });
    std::this_thread::sleep_for(50ms);
    EXPECT_EQ(hooks.load(), 2);
    release.open();
    EXPECT_TRUE(eventually([&] { return done.load() == 3; })) << done.load();
    EXPECT_EQ(hooks.load(), 3);
    EXPECT_EQ(committer.rounds(), 3u);
    EXPECT_EQ(count(), 3);
}

// Eight rounds whose commits take `commit` (and a sync of the database, which on a busy
// disk takes tens of milliseconds) and hooks 1 ms: the committer's running averages then
// expect a commit to take two thirds of `commit` or more.
void warm_up(GroupCommitter& committer, std::chrono::milliseconds commit) {
    for (int i = 0; i < 8; ++i)
        committer.run([&](store::Tx& tx) {
            std::this_thread::sleep_for(commit);
            tx.exec("INSERT INTO t VALUES (0)");
        });
}

TEST_F(GroupCommitTest, WhileALongCommitRunsTheNextHookWaitsAndLaterChangesJoinItsBatch) {
    GroupCommitter committer(*db, [] { std::this_thread::sleep_for(1ms); });
    warm_up(committer, 200ms);
    Gate inside;
    std::atomic<int> done{0};
    std::atomic<long> round_of_first{-1}, round_of_second{-1};
    committer.submit(
        [&](store::Tx& tx) {
            inside.open();
            std::this_thread::sleep_for(200ms);
            tx.exec("INSERT INTO t VALUES (1)");
        },
        [&](std::exception_ptr e) { done += e ? 100 : 1; });
    ASSERT_TRUE(inside.wait());
    // Two changes 15 ms apart while that commit runs: a hook begun at the first would be
    // over long before the commit, and the second would wait a round more.
    auto record_round = [&](std::atomic<long>& into) {
        return [&](store::Tx& tx) {
            into = static_cast<long>(committer.rounds());
            tx.exec("INSERT INTO t VALUES (2)");
        };
    };
    committer.submit(record_round(round_of_first), [&](std::exception_ptr e) { done += e ? 100 : 1; });
    std::this_thread::sleep_for(15ms);
    committer.submit(record_round(round_of_second), [&](std::exception_ptr e) { done += e ? 100 : 1; });
    EXPECT_TRUE(eventually([&] { return done.load() == 3; })) << done.load();
    EXPECT_EQ(round_of_first.load(), 9);
    EXPECT_EQ(round_of_second.load(), 9) << "the second change had a round of its own";
    EXPECT_EQ(committer.rounds(), 10u);
    EXPECT_EQ(count(), 11);
}

TEST_F(GroupCommitTest, AHookWaitingForACommitStartsWhenTheCommitEndsEarly) {
    GroupCommitter committer(*db, [] { std::this_thread::sleep_for(1ms); });
    warm_up(committer, 200ms);
    // This commit takes 5 ms (and its sync) where the averages expect 130 ms or more: the
    // change submitted during it must not wait for the expected end.
    Gate inside;
    committer.submit(
        [&](store::Tx& tx) {
            inside.open();
            std::this_thread::sleep_for(5ms);
            tx.exec("INSERT INTO t VALUES (1)");
        },
        [](std::exception_ptr) {});
    ASSERT_TRUE(inside.wait());
    const auto submitted = std::chrono::steady_clock::now();
    committer.run([](store::Tx& tx) { tx.exec("INSERT INTO t VALUES (2)"); });
    const auto waited = std::chrono::steady_clock::now() - submitted;
    EXPECT_LT(waited, 90ms) << std::chrono::duration_cast<std::chrono::milliseconds>(waited).count() << " ms";
    EXPECT_EQ(count(), 10);
}

TEST_F(GroupCommitTest, EveryChangeCommitsAfterAHookThatBeganAfterItWasSubmitted) {
    // The hook stands for the file system sync: a change's files are written before it is
    // submitted, so only a hook begun after the submission, and finished, covers them.
    std::atomic<int> hooks_begun{0};
    std::atomic<int> last_finished{0};  // the number of the last hook to finish
    GroupCommitter committer(*db, [&] {
        const int mine = ++hooks_begun;
        std::this_thread::sleep_for(200us);
        last_finished = mine;
    });
    constexpr int threads = 8, per_thread = 50;
    std::atomic<int> uncovered{0}, ok{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t)
        ts.emplace_back([&] {
            for (int i = 0; i < per_thread; ++i) {
                const int before = hooks_begun.load();
                committer.run([&](store::Tx& tx) {
                    if (last_finished.load() <= before) ++uncovered;
                    tx.exec("INSERT INTO t VALUES (1)");
                });
                ++ok;
            }
        });
    for (auto& t : ts) t.join();
    EXPECT_EQ(ok.load(), threads * per_thread);
    EXPECT_EQ(uncovered.load(), 0);
    EXPECT_EQ(count(), threads * per_thread);
    EXPECT_LT(committer.rounds(), static_cast<std::size_t>(threads * per_thread));
}

TEST_F(GroupCommitTest, AHookThatFailsOnceIsRunAgainBeforeTheCommit) {
    std::atomic<int> calls{0};
    GroupCommitter committer(*db, [&] {
        if (++calls == 1) throw std::runtime_error("disk busy");
    });
    committer.run([](store::Tx& tx) { tx.exec("INSERT INTO t VALUES (1)"); });
    EXPECT_EQ(calls.load(), 2);
    EXPECT_EQ(count(), 1);
}

TEST_F(GroupCommitTest, AHookThatKeepsFailingFailsEveryChangeAndCommitsNothing) {
    GroupCommitter committer(*db, [] { throw std::runtime_error("syncfs: I/O error"); });
    std::atomic<int> failed{0};
    Gate all;
    for (int i = 0; i < 5; ++i)
        committer.submit([](store::Tx& tx) { tx.exec("INSERT INTO t VALUES (1)"); },
                         [&](std::exception_ptr e) {
                             if (!e) return;
                             try {
                                 std::rethrow_exception(e);
                             } catch (const std::runtime_error& err) {
                                 if (std::string(err.what()) == "syncfs: I/O error" && ++failed == 5)
                                     all.open();
                             }
                         });
    EXPECT_TRUE(all.wait());
    EXPECT_EQ(count(), 0);
}

TEST_F(GroupCommitTest, StopAppliesEverythingSubmittedThenRefuses) {
    auto committer = std::make_unique<GroupCommitter>(*db, [] { std::this_thread::sleep_for(1ms); });
    std::atomic<int> ok{0};
    for (int i = 0; i < 200; ++i)
        committer->submit([](store::Tx& tx) { tx.exec("INSERT INTO t VALUES (1)"); },
                          [&](std::exception_ptr e) { ok += e ? 0 : 1; });
    committer->stop();
    EXPECT_EQ(ok.load(), 200);
    EXPECT_EQ(count(), 200);
    bool refused = false;
    committer->submit([](store::Tx&) {}, [&](std::exception_ptr e) { refused = e != nullptr; });
    EXPECT_TRUE(refused);
    committer.reset();
}

TEST_F(GroupCommitTest, WithoutAHookOneThreadCommits) {
    GroupCommitter committer(*db);
    for (int i = 0; i < 10; ++i) committer.run([](store::Tx& tx) { tx.exec("INSERT INTO t VALUES (1)"); });
    EXPECT_EQ(count(), 10);
    EXPECT_EQ(committer.rounds(), 10u);
}

}  // namespace
}  // namespace pecd::queue
