// tracking_test.cpp - sender-side per-recipient tracking (pec.md 5.4) on a real SQLite file
//
// Covers: the four cases of the 5.4 table (persisted, driven by ManualClock), closing on
// errore-consegna and virus notices, late polling (events settle overdue timers first),
// external recipients not tracked, each notice exactly once with due() called
// repeatedly, across re-opened databases and across a process killed in the middle of a
// hand-over, and the 22 h - 24 h window of the 24 h notice.
#include "pec/tracking.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <memory>
#include <thread>

#include "core/error.hpp"
#include "test_database.hpp"

namespace pecd::pec::tracking {
namespace {

using namespace std::chrono_literals;

const TimePoint kT0 = TimePoint(std::chrono::seconds(1'780'000'000));

// The hand-over target: a table in the same database, so emission and "done" commit
// together; emitted() counts emissions per notice key.
const std::vector<store::Migration> kSinkMigrations = {
    {1, "CREATE TABLE emitted (notice_key TEXT NOT NULL, recipient TEXT NOT NULL, kind TEXT NOT NULL)"}};

class TrackingTest : public ::testing::TestWithParam<std::string> {
protected:
    void SetUp() override { open(); }

    void open(Policy p = {}) {
        tracker_.reset();
        db_.reset();
        db_ = target_.open();
        db_->migrate("test_sink", kSinkMigrations);
        tracker_ = std::make_unique<Tracker>(*db_, p);
    }

    void start(const std::vector<std::string>& rcpts, TimePoint t0 = kT0,
               const std::string& id = "<pec-1@p>") {
        tracker_->start({id, "mittente@pec.example", "<client-1@mua>", "Fattura 12", t0}, rcpts);
    }

    // Runs due() at t0+offset, then drains into the sink table.
    void tick(std::chrono::seconds offset) {
        auto now = kT0 + offset;
        clock_.set(now);
        tracker_->due(clock_.now());
        tracker_->drain(clock_.now(), [](store::Tx& tx, const Notice& n) {
            tx.exec("INSERT INTO emitted (notice_key, recipient, kind) VALUES (?, ?, ?)",
                    {n.key(), n.recipient, std::string(to_string(n.kind))});
        });
    }

    // kind -> count for a recipient, plus a check that no key appears twice.
    std::map<std::string, int> emitted(const std::string& recipient) {
        std::map<std::string, int> out;
        db_->read([&](store::Tx& tx) {
            for (auto& r : tx.query("SELECT kind, COUNT(*) FROM emitted WHERE recipient = ? GROUP BY kind",
                                    {recipient}))
                out[r.text(0)] = static_cast<int>(r.integer(1));
            auto dup = tx.query("SELECT notice_key FROM emitted GROUP BY notice_key HAVING COUNT(*) > 1");
            EXPECT_TRUE(dup.empty()) << "a notice was emitted twice: " << dup.front().text(0);
        });
        return out;
    }

    Closure closure(const std::string& rcpt) {
        auto r = tracker_->find("<pec-1@p>", rcpt);
        EXPECT_TRUE(r.has_value());
        return r ? r->state.closure : Closure::open;
    }

    test::TestDatabase target_{GetParam()};
    ManualClock clock_{kT0};
    std::unique_ptr<store::Database> db_;
    std::unique_ptr<Tracker> tracker_;
};

TEST_P(TrackingTest, PresaWithin12hNoDeliveryGivesOnly24hNotice) {
    start({"dest@pec.other"});
    tick(1h);
    ASSERT_EQ(tracker_->record_event("<pec-1@p>", "dest@pec.other", EventType::presa_in_carico, kT0 + 2h),
              EventOutcome::applied);
    tick(12h);
    tick(13h);
    EXPECT_TRUE(emitted("dest@pec.other").empty());
    tick(24h);
    EXPECT_EQ(emitted("dest@pec.other"), (std::map<std::string, int>{{"24h", 1}}));
    EXPECT_EQ(closure("dest@pec.other"), Closure::timed_out);
    // After the 24 h notice tracking is over: a late receipt changes nothing.
    EXPECT_EQ(tracker_->record_event("<pec-1@p>", "dest@pec.other", EventType::delivered, kT0 + 30h),
              EventOutcome::closed);
}

TEST_P(TrackingTest, NoPresaDeliveryBetween12hAnd24hGivesOnly12hNotice) {
    start({"dest@pec.other"});
    tick(11h);
    EXPECT_TRUE(emitted("dest@pec.other").empty());
    tick(12h);
    EXPECT_EQ(emitted("dest@pec.other"), (std::map<std::string, int>{{"12h", 1}}));
    ASSERT_EQ(tracker_->record_event("<pec-1@p>", "DEST@pec.other", EventType::delivered, kT0 + 15h),
              EventOutcome::applied);
    tick(24h);
    tick(48h);
    EXPECT_EQ(emitted("dest@pec.other"), (std::map<std::string, int>{{"12h", 1}}));
    EXPECT_EQ(closure("dest@pec.other"), Closure::delivered);
}

TEST_P(TrackingTest, NeitherPresaNorDeliveryGivesBothNotices) {
    start({"dest@pec.other"});
    for (auto h : {1h, 6h, 12h, 13h, 20h, 22h, 23h, 24h, 25h}) tick(h);
    EXPECT_EQ(emitted("dest@pec.other"), (std::map<std::string, int>{{"12h", 1}, {"24h", 1}}));
    EXPECT_EQ(closure("dest@pec.other"), Closure::timed_out);
}

TEST_P(TrackingTest, PresaOrDeliveryWithin12hAndDeliveryWithin24hGivesNone) {
    start({"a@pec.other", "b@pec.other"});
    // a: presa in carico at 3 h, delivery at 20 h; b: delivery receipt at 11 h directly.
    tracker_->record_event("<pec-1@p>", "a@pec.other", EventType::presa_in_carico, kT0 + 3h);
    tracker_->record_event("<pec-1@p>", "b@pec.other", EventType::delivered, kT0 + 11h);
    for (auto h : {6h, 12h, 18h}) tick(h);
    tracker_->record_event("<pec-1@p>", "a@pec.other", EventType::delivered, kT0 + 20h);
    for (auto h : {22h, 24h, 36h}) tick(h);
    EXPECT_TRUE(emitted("a@pec.other").empty());
    EXPECT_TRUE(emitted("b@pec.other").empty());
    EXPECT_EQ(closure("a@pec.other"), Closure::delivered);
    EXPECT_EQ(closure("b@pec.other"), Closure::delivered);
}

TEST_P(TrackingTest, NonDeliveryAndVirusNoticesCloseTracking) {
    start({"a@pec.other", "b@pec.other", "c@pec.other"});
    tracker_->record_event("<pec-1@p>", "a@pec.other", EventType::non_delivery, kT0 + 1h);
    tracker_->record_event("<pec-1@p>", "b@pec.other", EventType::virus, kT0 + 2h);
    tracker_->record_event("<pec-1@p>", "c@pec.other", EventType::presa_in_carico, kT0 + 2h);
    // c: errore-consegna after the 12 h mark, before 24 h: no 24 h notice afterwards.
    tracker_->record_event("<pec-1@p>", "c@pec.other", EventType::non_delivery, kT0 + 14h);
    for (auto h : {12h, 24h, 30h}) tick(h);
    EXPECT_TRUE(emitted("a@pec.other").empty());
    EXPECT_TRUE(emitted("b@pec.other").empty());
    EXPECT_TRUE(emitted("c@pec.other").empty());
    EXPECT_EQ(closure("a@pec.other"), Closure::non_delivery);
    EXPECT_EQ(closure("b@pec.other"), Closure::virus);
    EXPECT_EQ(closure("c@pec.other"), Closure::non_delivery);
    EXPECT_EQ(tracker_->record_event("<pec-1@p>", "b@pec.other", EventType::delivered, kT0 + 3h),
              EventOutcome::closed);
}

TEST_P(TrackingTest, VirusNoticeAfter12hWithoutPresaStillGivesThe12hNotice) {
    start({"dest@pec.other"});
    // No due() ran in between: the event settles the overdue 12 h timer first.
    tracker_->record_event("<pec-1@p>", "dest@pec.other", EventType::virus, kT0 + 13h);
    tick(25h);
    EXPECT_EQ(emitted("dest@pec.other"), (std::map<std::string, int>{{"12h", 1}}));
    EXPECT_EQ(closure("dest@pec.other"), Closure::virus);
}

TEST_P(TrackingTest, LatePollingGivesTheSameNoticesAsPromptPolling) {
    start({"late@pec.other", "never@pec.other"});
    // Nothing polled for 30 hours (pecd was down); the delivery receipt is stamped 18 h.
    tracker_->record_event("<pec-1@p>", "late@pec.other", EventType::delivered, kT0 + 18h);
    tick(30h);
    EXPECT_EQ(emitted("late@pec.other"), (std::map<std::string, int>{{"12h", 1}}));
    EXPECT_EQ(emitted("never@pec.other"), (std::map<std::string, int>{{"12h", 1}, {"24h", 1}}));
}

TEST_P(TrackingTest, EventStampedExactlyAt12hCountsAsWithin) {
    start({"dest@pec.other"});
    tracker_->record_event("<pec-1@p>", "dest@pec.other", EventType::presa_in_carico, kT0 + 12h);
    tick(12h);
    EXPECT_TRUE(emitted("dest@pec.other").empty());
}

TEST_P(TrackingTest, UntrackedRecipientsAreUnknown) {
    // Only certified recipients are started; an external one gets no tracking.
    start({"dest@pec.other"});
    EXPECT_EQ(tracker_->record_event("<pec-1@p>", "friend@gmail.example", EventType::delivered, kT0 + 1h),
              EventOutcome::unknown);
    EXPECT_EQ(tracker_->record_event("<other@p>", "dest@pec.other", EventType::delivered, kT0 + 1h),
              EventOutcome::unknown);
    EXPECT_FALSE(tracker_->find("<pec-1@p>", "friend@gmail.example").has_value());
}

TEST_P(TrackingTest, ExternalRecipientsOfAClassifiedListAreNotTracked) {
    db_->transact([&](store::Tx& tx) {
        tracker_->start(tx, {"<pec-1@p>", "mittente@pec.example", "<c@m>", "s", kT0},
                        std::vector<ClassifiedRecipient>{{"dest@pec.other", RecipientType::certificato},
                                                         {"friend@mail.example", RecipientType::esterno}});
    });
    auto tracked = tracker_->recipients("<pec-1@p>");
    ASSERT_EQ(tracked.size(), 1u);
    EXPECT_EQ(tracked[0].recipient, "dest@pec.other");
    tick(25h);
    EXPECT_TRUE(emitted("friend@mail.example").empty());
    EXPECT_EQ(emitted("dest@pec.other"), (std::map<std::string, int>{{"12h", 1}, {"24h", 1}}));
}

TEST_P(TrackingTest, DuplicateRecipientsAndReplayedStartAreTrackedOnce) {
    start({"dest@pec.other", "DEST@PEC.OTHER", " dest@pec.other"});
    start({"dest@pec.other"}, kT0 + 5h);  // replayed dispatch: keeps the first t0
    EXPECT_EQ(tracker_->recipients("<pec-1@p>").size(), 1u);
    EXPECT_EQ(tracker_->find("<pec-1@p>", "dest@pec.other")->state.t0, kT0);
    tick(24h);
    EXPECT_EQ(emitted("dest@pec.other"), (std::map<std::string, int>{{"12h", 1}, {"24h", 1}}));
}

TEST_P(TrackingTest, RepeatedDueAndReopenedDatabaseEmitEachNoticeOnce) {
    start({"dest@pec.other"});
    clock_.set(kT0 + 12h);
    auto first = tracker_->due(clock_.now());
    ASSERT_EQ(first.size(), 1u);
    EXPECT_EQ(first[0].kind, NoticeKind::timeout_12h);
    EXPECT_EQ(first[0].deadline, kT0 + 12h);
    EXPECT_EQ(first[0].sender, "mittente@pec.example");
    EXPECT_EQ(first[0].client_msgid, "<client-1@mua>");
    EXPECT_EQ(first[0].subject, "Fattura 12");
    for (int i = 0; i < 5; ++i) EXPECT_TRUE(tracker_->due(clock_.now()).empty());
    // "Crash" after the state change, before the hand-over: the outbox survives.
    open();
    EXPECT_TRUE(tracker_->due(clock_.now()).empty());
    ASSERT_EQ(tracker_->pending_notices().size(), 1u);
    tick(12h);
    open();
    tick(12h);
    tick(12h);
    EXPECT_TRUE(tracker_->pending_notices().empty());
    EXPECT_EQ(emitted("dest@pec.other"), (std::map<std::string, int>{{"12h", 1}}));
    for (int i = 0; i < 3; ++i) {
        open();
        tick(24h);
    }
    EXPECT_EQ(emitted("dest@pec.other"), (std::map<std::string, int>{{"12h", 1}, {"24h", 1}}));
}

TEST_P(TrackingTest, FailedHandOverLeavesTheNoticePending) {
    start({"dest@pec.other"});
    clock_.set(kT0 + 12h);
    tracker_->due(clock_.now());
    EXPECT_THROW(tracker_->drain(clock_.now(),
                                 [](store::Tx& tx, const Notice& n) {
                                     tx.exec(
                                         "INSERT INTO emitted (notice_key, recipient, kind) VALUES (?, ?, ?)",
                                         {n.key(), n.recipient, std::string(to_string(n.kind))});
                                     throw TemporaryError("spool full");
                                 }),
                 TemporaryError);
    EXPECT_TRUE(emitted("dest@pec.other").empty());
    ASSERT_EQ(tracker_->pending_notices().size(), 1u);
    tick(12h);
    EXPECT_EQ(emitted("dest@pec.other"), (std::map<std::string, int>{{"12h", 1}}));
}

TEST_P(TrackingTest, CompleteTwiceIsRefused) {
    start({"dest@pec.other"});
    auto notices = tracker_->due(kT0 + 12h);
    ASSERT_EQ(notices.size(), 1u);
    bool first = false, second = true;
    db_->transact([&](store::Tx& tx) { first = tracker_->complete(tx, notices[0], kT0 + 12h); });
    db_->transact([&](store::Tx& tx) { second = tracker_->complete(tx, notices[0], kT0 + 12h); });
    EXPECT_TRUE(first);
    EXPECT_FALSE(second);
}

// A separate process is killed (SIGKILL from inside the hand-over, i.e. with the
// hand-over transaction open); the survivor emits each notice exactly once.
TEST_P(TrackingTest, KillDuringHandOverEmitsExactlyOnce) {
    std::vector<std::string> rcpts;
    for (int i = 0; i < 20; ++i) rcpts.push_back("r" + std::to_string(i) + "@pec.other");
    start(rcpts);
    tracker_.reset();
    db_.reset();
    for (int round = 0; round < 2; ++round) {
        pid_t pid = ::fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            auto db = target_.open();
            Tracker t(*db);
            auto now = kT0 + (round == 0 ? 12h : 24h);
            t.due(now);
            int handed = 0;
            t.drain(now, [&](store::Tx& tx, const Notice& n) {
                tx.exec("INSERT INTO emitted (notice_key, recipient, kind) VALUES (?, ?, ?)",
                        {n.key(), n.recipient, std::string(to_string(n.kind))});
                if (++handed == 7) ::kill(::getpid(), SIGKILL);
            });
            ::_exit(0);
        }
        int status = 0;
        ASSERT_EQ(::waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "round " << round;
        open();
        auto now = kT0 + (round == 0 ? 12h : 24h);
        tick(std::chrono::duration_cast<std::chrono::seconds>(now - kT0));
        tracker_.reset();
        db_.reset();
    }
    open();
    tick(48h);
    for (auto& r : rcpts) EXPECT_EQ(emitted(r), (std::map<std::string, int>{{"12h", 1}, {"24h", 1}})) << r;
}

TEST_P(TrackingTest, The24hNoticeFiresInsideThe22To24HourWindow) {
    for (auto after : {22h, 23h, 24h}) {
        Policy p;
        p.notice24_after = after;
        open(p);
        auto id = "<pec-w" + std::to_string(after.count()) + "@p>";
        tracker_->start({id, "s@pec.example", "<c@m>", "s", kT0}, {"w@pec.other"});
        tracker_->record_event(id, "w@pec.other", EventType::presa_in_carico, kT0 + 1h);
        EXPECT_TRUE(tracker_->due(kT0 + 22h - 1s).empty()) << "not before t0+22h";
        auto fired = tracker_->due(kT0 + after);
        ASSERT_EQ(fired.size(), 1u) << "by t0+" << after.count() << "s";
        EXPECT_EQ(fired[0].kind, NoticeKind::timeout_24h);
        EXPECT_GE(fired[0].deadline, kT0 + 22h);
        EXPECT_LE(fired[0].deadline, kT0 + 24h);
    }
    // The default policy fires inside the window too.
    RecipientState s;
    s.t0 = kT0;
    s.presa_at = kT0 + 1h;
    s.notice12 = NoticeState::not_needed;
    Policy def;
    EXPECT_TRUE(advance(s, kT0 + 22h - 1s, def).empty());
    EXPECT_EQ(advance(s, kT0 + 24h, def), std::vector<NoticeKind>{NoticeKind::timeout_24h});
}

TEST_P(TrackingTest, PolicyOutsideTheWindowIsRejected) {
    for (std::chrono::seconds bad : {std::chrono::seconds(21h), 24h + 1s, std::chrono::seconds(12h)}) {
        Policy p;
        p.notice24_after = bad;
        EXPECT_THROW(p.validate(), Error);
        EXPECT_THROW(Tracker(*db_, p), Error);
    }
}

TEST(TrackingStateMachine, NextDeadlineFollowsTheTimers) {
    Policy p;
    RecipientState s;
    s.t0 = kT0;
    EXPECT_EQ(next_deadline(s, p), kT0 + 12h);
    EXPECT_TRUE(apply(s, EventType::presa_in_carico, kT0 + 1h, p).empty());
    EXPECT_EQ(next_deadline(s, p), kT0 + p.notice24_after);
    EXPECT_TRUE(apply(s, EventType::delivered, kT0 + 2h, p).empty());
    EXPECT_FALSE(next_deadline(s, p).has_value());
    EXPECT_FALSE(s.open());
    // Closed: further events and time change nothing.
    auto copy = s;
    EXPECT_TRUE(apply(s, EventType::virus, kT0 + 3h, p).empty());
    EXPECT_TRUE(advance(s, kT0 + 48h, p).empty());
    EXPECT_EQ(s.closure, copy.closure);
    EXPECT_EQ(s.closed_at, copy.closed_at);
}

TEST_P(TrackingTest, PurgeRemovesOnlyClosedAndHandedOverRows) {
    start({"a@pec.other", "b@pec.other"});
    tracker_->record_event("<pec-1@p>", "a@pec.other", EventType::delivered, kT0 + 1h);
    tracker_->due(kT0 + 24h);  // b: two notices enqueued, not yet handed over
    EXPECT_EQ(tracker_->purge_closed(kT0 + 48h), 1);
    EXPECT_FALSE(tracker_->find("<pec-1@p>", "a@pec.other").has_value());
    EXPECT_TRUE(tracker_->find("<pec-1@p>", "b@pec.other").has_value());
    tick(24h);
    EXPECT_EQ(tracker_->purge_closed(kT0 + 48h), 1);
    EXPECT_TRUE(tracker_->recipients("<pec-1@p>").empty());
}

// Several workers (separate Database handles, like separate processes or nodes) run
// due() and drain() at the same time: every notice is handed over exactly once.
TEST_P(TrackingTest, ConcurrentWorkersEmitEachNoticeOnce) {
    std::vector<std::string> rcpts;
    for (int i = 0; i < 30; ++i) rcpts.push_back("c" + std::to_string(i) + "@pec.other");
    start(rcpts);
    std::atomic<int> handed{0};
    for (auto at : {12h, 24h}) {
        std::vector<std::thread> workers;
        for (int w = 0; w < 4; ++w)
            workers.emplace_back([&, at] {
                auto db = target_.open();
                Tracker t(*db);
                for (int round = 0; round < 3; ++round) {
                    t.due(kT0 + at, 7);
                    handed += static_cast<int>(t.drain(kT0 + at, [](store::Tx& tx, const Notice& n) {
                        tx.exec("INSERT INTO emitted (notice_key, recipient, kind) VALUES (?, ?, ?)",
                                {n.key(), n.recipient, std::string(to_string(n.kind))});
                    }));
                }
            });
        for (auto& w : workers) w.join();
    }
    EXPECT_EQ(handed.load(), 60);
    for (auto& r : rcpts) EXPECT_EQ(emitted(r), (std::map<std::string, int>{{"12h", 1}, {"24h", 1}})) << r;
    EXPECT_TRUE(tracker_->pending_notices().empty());
}

INSTANTIATE_TEST_SUITE_P(Backends, TrackingTest, test::all_backends(), test::backend_name);

}  // namespace
}  // namespace pecd::pec::tracking
