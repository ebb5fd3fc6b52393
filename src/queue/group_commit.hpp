// group_commit.hpp - many small durable changes, one transaction and one fsync round
//
// Each durable commit of SQLite (WAL, synchronous=FULL) costs an fsync. Under load the
// queue has hundreds of tiny changes per second (a message accepted, a recipient
// delivered); committing each alone would bound throughput by the disk's fsync rate.
// GroupCommitter runs one background thread that takes every change submitted since its
// last round and applies them in one transaction, after one `before_commit` hook (the
// spool's directory fsync), then reports to every submitter.
//
// Contract:
// - done(nullptr) is called once the change is durable; done(error) if it was not applied
//   (its effects rolled back). done runs on the committer thread and must be short.
// - A change that throws does not sink the others: the batch is rolled back and its
//   changes are retried one by one, so each gets its own verdict.
// - The destructor applies everything already submitted, then stops. submit() after
//   stop() reports an error at once.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
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
    void loop();
    void apply(std::deque<Item>& batch);
    void count_round();

    store::Database& db_;
    std::function<void()> before_commit_;
    std::size_t max_batch_;
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<Item> pending_;
    bool stopping_ = false;
    std::size_t rounds_ = 0;
    std::thread thread_;
};

}  // namespace pecd::queue
