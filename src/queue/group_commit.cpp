// group_commit.cpp - batching durable changes into one transaction (see group_commit.hpp)
#include "queue/group_commit.hpp"

#include "core/error.hpp"

namespace pecd::queue {

GroupCommitter::GroupCommitter(store::Database& db, std::function<void()> before_commit,
                               std::size_t max_batch)
    : db_(db), before_commit_(std::move(before_commit)), max_batch_(max_batch) {
    if (before_commit_) hook_thread_ = std::thread([this] { hook_loop(); });
    commit_thread_ = std::thread([this] { commit_loop(); });
}

GroupCommitter::~GroupCommitter() {
    stop();
}

void GroupCommitter::stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    pending_cv_.notify_all();
    handoff_cv_.notify_all();
    if (hook_thread_.joinable()) hook_thread_.join();
    if (commit_thread_.joinable()) commit_thread_.join();
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
            pending_cv_.notify_one();
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

bool GroupCommitter::take_pending(std::unique_lock<std::mutex>& lock, Batch& batch) {
    // The hook stage waits until the commit stage has taken its previous batch: whatever
    // is submitted meanwhile joins the next batch instead of making a small one.
    const bool staged = static_cast<bool>(before_commit_);
    pending_cv_.wait(lock, [&] { return !(staged && hooked_) && (stopping_ || !pending_.empty()); });
    if (pending_.empty()) return false;  // stopping and drained
    while (!pending_.empty() && batch.size() < max_batch_) {
        batch.push_back(std::move(pending_.front()));
        pending_.pop_front();
    }
    return true;
}

void GroupCommitter::hook_loop() {
    for (;;) {
        Batch batch;
        {
            std::unique_lock lock(mutex_);
            if (!take_pending(lock, batch)) {
                hook_stage_done_ = true;
                break;
            }
        }
        const bool ok = run_hook();
        {
            std::lock_guard lock(mutex_);
            hooked_ = std::move(batch);
            hooked_ok_ = ok;
        }
        handoff_cv_.notify_one();
    }
    handoff_cv_.notify_one();
}

void GroupCommitter::commit_loop() {
    for (;;) {
        Batch batch;
        bool hook_done = false;
        {
            std::unique_lock lock(mutex_);
            if (!before_commit_) {
                if (!take_pending(lock, batch)) return;
            } else {
                handoff_cv_.wait(lock, [&] { return hooked_ || hook_stage_done_; });
                if (!hooked_) return;
                batch = std::move(*hooked_);
                hooked_.reset();
                hook_done = hooked_ok_;
            }
        }
        if (before_commit_) pending_cv_.notify_one();
        apply(batch, hook_done);
    }
}

bool GroupCommitter::run_hook() noexcept {
    // A failure is not reported here: the commit stage runs the hook again and, if it
    // fails again, reports it to each change of the batch.
    try {
        before_commit_();
        return true;
    } catch (...) {
        return false;
    }
}

void GroupCommitter::count_round() {
    // Before the round's callbacks run: whoever a callback wakes sees the round counted.
    std::lock_guard lock(mutex_);
    ++rounds_;
}

void GroupCommitter::apply(Batch& batch, bool hook_done) {
    try {
        if (before_commit_ && !hook_done) before_commit_();
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
