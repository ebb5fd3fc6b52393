// group_commit.cpp - batching durable changes into one transaction (see group_commit.hpp)
#include "queue/group_commit.hpp"

#include "core/error.hpp"

namespace pecd::queue {

GroupCommitter::GroupCommitter(store::Database& db, std::function<void()> before_commit,
                               std::size_t max_batch)
    : db_(db), before_commit_(std::move(before_commit)), max_batch_(max_batch), thread_([this] { loop(); }) {}

GroupCommitter::~GroupCommitter() {
    stop();
}

void GroupCommitter::stop() {
    {
        std::lock_guard lock(mutex_);
        if (stopping_ && !thread_.joinable()) return;
        stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

std::size_t GroupCommitter::rounds() const {
    std::lock_guard lock(mutex_);
    return rounds_;
}

void GroupCommitter::submit(Work work, Done done) {
    {
        std::lock_guard lock(mutex_);
        if (!stopping_) {
            pending_.push_back({std::move(work), std::move(done)});
            cv_.notify_one();
            return;
        }
    }
    done(std::make_exception_ptr(TemporaryError("queue is shutting down")));
}

void GroupCommitter::run(Work work) {
    // A mutex and condition variable rather than std::promise: completing a promise runs
    // std::call_once, whose glibc pthread_once makes a futex wake system call every time,
    // whether or not anyone waits, and every queue step of every message comes through here.
    struct Waiter {
        std::mutex mutex;
        std::condition_variable cv;
        bool finished = false;
        std::exception_ptr error;
    } w;
    submit(std::move(work), [&w](std::exception_ptr e) {
        std::lock_guard lock(w.mutex);
        w.error = std::move(e);
        w.finished = true;
        w.cv.notify_one();  // under the lock: w lives on the waiter's stack
    });
    std::unique_lock lock(w.mutex);
    w.cv.wait(lock, [&] { return w.finished; });
    if (w.error) std::rethrow_exception(w.error);
}

void GroupCommitter::loop() {
    for (;;) {
        std::deque<Item> batch;
        {
            std::unique_lock lock(mutex_);
            cv_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
            if (pending_.empty()) return;  // stopping and drained
            while (!pending_.empty() && batch.size() < max_batch_) {
                batch.push_back(std::move(pending_.front()));
                pending_.pop_front();
            }
        }
        apply(batch);
    }
}

void GroupCommitter::count_round() {
    // Before the round's callbacks run: whoever a callback wakes sees the round counted.
    std::lock_guard lock(mutex_);
    ++rounds_;
}

void GroupCommitter::apply(std::deque<Item>& batch) {
    try {
        if (before_commit_) before_commit_();
        db_.transact([&](store::Tx& tx) {
            for (auto& item : batch) item.work(tx);
        });
        count_round();
        for (auto& item : batch) item.done(nullptr);
        return;
    } catch (...) {
        if (batch.size() == 1) {
            count_round();
            batch.front().done(std::current_exception());
            return;
        }
    }
    // Isolate the failing change(s): each alone gets its own transaction and verdict.
    count_round();
    for (auto& item : batch) {
        try {
            if (before_commit_) before_commit_();
            db_.transact([&](store::Tx& tx) { item.work(tx); });
            item.done(nullptr);
        } catch (...) {
            item.done(std::current_exception());
        }
    }
}

}  // namespace pecd::queue
