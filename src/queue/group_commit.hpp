// group_commit.hpp - many small durable changes, one transaction and one fsync round
//
// Each durable commit of SQLite (WAL, synchronous=FULL) costs an fsync. Under load the
// queue has hundreds of tiny changes per second (a message accepted, a recipient
// delivered); committing each alone would bound throughput by the disk's fsync rate.
// GroupCommitter runs a background thread (two with a hook, below) that takes every
// change submitted since its last round and applies them in one transaction, after one
// `before_commit` hook (the spool's directory fsync or file system sync), then reports to
// every submitter.
//
// With a hook, a round is two stages on two threads: one runs the hook for the next
// batch while the other commits the batch before it. Both mostly wait for the disk, and
// in series a round took the sum of the two waits while every submitter in it waited
// too. The hook stage runs at most one batch ahead, and takes its batch only when the
// commit stage has taken the previous one, so what is submitted meanwhile joins one
// batch. While a commit runs, the hook stage starts so as to end a little before the
// commit is expected to (running averages of both durations): a hook that finished sooner
// would only make its batch wait for the commit stage, while the changes submitted in
// that time would wait for the round after. Rows never commit before their hook has run:
// a batch is committed only after its own hook.
//
// Contract:
// - done(nullptr) is called once the change is durable; done(error) if it was not applied
//   (its effects rolled back). done runs on the committer thread and must be short.
// - A change that throws does not sink the others: the batch is rolled back and its
//   changes are retried one by one, so each gets its own verdict.
// - The destructor applies everything already submitted, then stops. submit() after
//   stop() reports an error at once.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include "store/database.hpp"

namespace pecd::queue {

class GroupCommitter {
public:
    using Work = std::function<void(store::Tx&)>;
    using Done = std::function<void(std::exception_ptr)>;

    explicit GroupCommitter(store::Database& db, std::function<void()> before_commit = {},
                            std::size_t max_batch = 1024);
    ~GroupCommitter();
    GroupCommitter(const GroupCommitter&) = delete;
    GroupCommitter& operator=(const GroupCommitter&) = delete;

    void submit(Work work, Done done);
    // Submits and waits; rethrows the change's error.
    void run(Work work);
    void stop();
    // Batches committed (or failed) so far, counted before their callbacks run (diagnostics
    // and tests).
    std::size_t rounds() const;

private:
    struct Item {
        Work work;
        Done done;
    };
    using Batch = std::deque<Item>;
    using Clock = std::chrono::steady_clock;
    bool take_pending(std::unique_lock<std::mutex>& lock, Batch& batch);
    void wait_for_commit_stage(std::unique_lock<std::mutex>& lock);
    void hook_loop();
    void commit_loop();
    bool take_hooked(Batch& batch, bool& hook_done);  // false: the hook stage has ended
    void end_commit(Clock::duration took);
    bool run_hook() noexcept;
    void apply(Batch& batch, bool hook_done);
    void count_round();

    store::Database& db_;
    std::function<void()> before_commit_;
    std::size_t max_batch_;
    mutable std::mutex mutex_;
    std::condition_variable pending_cv_;  // the stage that takes pending_ waits here
    std::condition_variable handoff_cv_;  // the commit stage waits for a hooked batch
    Batch pending_;
    bool stopping_ = false;
    std::size_t rounds_ = 0;
    // The batch whose hook has run, waiting for the commit stage.
    std::optional<Batch> hooked_;
    bool hooked_ok_ = false;  // false: the hook failed, the commit stage runs it again
    bool hook_stage_done_ = false;
    // The commit stage's current round, and the running averages that time the next hook.
    bool committing_ = false;
    bool hook_timing_ = false;  // the hook stage waits for the commit to near its end
    Clock::time_point commit_started_;
    Clock::duration hook_average_{};
    Clock::duration commit_average_{};
    std::thread hook_thread_;
    std::thread commit_thread_;
};

}  // namespace pecd::queue
