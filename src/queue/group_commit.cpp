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

// Each of the two condition variables has one waiting thread, and is notified with
// notify_all all the same: glibc's pthread_cond_signal can lose a wake-up (see
// core/wake_up.hpp), and a lost one here stalls every commit. A broadcast is not
// affected, and for a single waiter costs the same as a signal.
void GroupCommitter::submit(Work work, Done done) {
    {
        std::lock_guard lock(mutex_);
        if (!stopping_) {
            pending_.push_back({std::move(work), std::move(done)});
            // The waiting stage cares whether anything is pending and whether a batch is
            // full: a wake-up for every change made its thread wake and sleep again for
            // each one while its batch waited for the commit stage.
            if (pending_.size() == 1 || pending_.size() == max_batch_) pending_cv_.notify_all();
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
    if (staged) wait_for_commit_stage(lock);
    if (pending_.empty()) return false;  // stopping and drained
    while (!pending_.empty() && batch.size() < max_batch_) {
        batch.push_back(std::move(pending_.front()));
        pending_.pop_front();
    }
    return true;
}

namespace {

// A running average with weight 1/8 for the newest value: steady under a noisy disk, and
// a few rounds to follow a real change.
std::chrono::steady_clock::duration averaged(std::chrono::steady_clock::duration average,
                                             std::chrono::steady_clock::duration latest) {
    return average + (latest - average) / 8;
}

}  // namespace

void GroupCommitter::wait_for_commit_stage(std::unique_lock<std::mutex>& lock) {
    // The hook starts so as to end a quarter of a hook before the commit is expected to:
    // a hook that ends late delays the next commit, one that ends early only delays the
    // changes it could have taken. Until both averages are known there is no wait.
    if (!committing_ || hook_average_ == Clock::duration::zero()) return;
    const auto lead = commit_average_ - hook_average_ - hook_average_ / 4;
    if (lead <= Clock::duration::zero()) return;
    hook_timing_ = true;
    pending_cv_.wait_until(lock, commit_started_ + lead,
                           [&] { return stopping_ || !committing_ || pending_.size() >= max_batch_; });
    hook_timing_ = false;
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
        const auto began = Clock::now();
        const bool ok = run_hook();
        const auto took = Clock::now() - began;
        {
            std::lock_guard lock(mutex_);
            hooked_ = std::move(batch);
            hooked_ok_ = ok;
            if (ok) hook_average_ = averaged(hook_average_, took);
        }
        handoff_cv_.notify_all();
    }
    handoff_cv_.notify_all();
}

void GroupCommitter::commit_loop() {
    for (;;) {
        Batch batch;
        if (!before_commit_) {
            {
                std::unique_lock lock(mutex_);
                if (!take_pending(lock, batch)) return;
            }
            apply(batch, false);
            continue;
        }
        bool hook_done = false;
        if (!take_hooked(batch, hook_done)) return;
        const auto began = Clock::now();
        apply(batch, hook_done);
        end_commit(Clock::now() - began);
    }
}

bool GroupCommitter::take_hooked(Batch& batch, bool& hook_done) {
    bool hook_can_go_on = false;
    {
        std::unique_lock lock(mutex_);
        handoff_cv_.wait(lock, [&] { return hooked_ || hook_stage_done_; });
        if (!hooked_) return false;
        batch = std::move(*hooked_);
        hooked_.reset();
        hook_done = hooked_ok_;
        committing_ = true;
        commit_started_ = Clock::now();
        hook_can_go_on = stopping_ || !pending_.empty();
    }
    // The hook stage is woken only when it can go on now that its slot is free (work
    // pending, or stopping): otherwise the next submit() wakes it, and a wake-up that
    // finds nothing to do cost its thread two context switches in every round.
    if (hook_can_go_on) pending_cv_.notify_all();
    return true;
}

void GroupCommitter::end_commit(Clock::duration took) {
    bool hook_is_timing = false;
    {
        std::lock_guard lock(mutex_);
        committing_ = false;
        commit_average_ = averaged(commit_average_, took);
        hook_is_timing = hook_timing_;
    }
    if (hook_is_timing) pending_cv_.notify_all();  // its wait ends with this commit
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
