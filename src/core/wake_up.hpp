// wake_up.hpp - waiting on a condition variable that several threads wait on
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace pecd {

// How long a waiter sleeps at most before it looks at its condition again.
inline constexpr std::chrono::milliseconds kWakeUpRecheck{1000};

// Waits until pred() holds, and looks at it again every `recheck` in any case. glibc
// before 2.41 can lose a pthread_cond_signal when several threads wait (sourceware bug
// 25847; Debian 12 has 2.36): the thread it chose sleeps on, and work handed to "one of
// the waiters" waits for the next notification, which at a quiet moment may never come.
// Looking again bounds that wait, at the price of one wake-up per `recheck` per idle
// thread; notify_all is not affected, but wakes every waiter for each item.
template <class Pred>
void wait_rechecking(std::condition_variable& cv, std::unique_lock<std::mutex>& lock, Pred pred,
                     std::chrono::milliseconds recheck = kWakeUpRecheck) {
    while (!cv.wait_for(lock, recheck, pred)) {
    }
}

}  // namespace pecd
