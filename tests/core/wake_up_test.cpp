// wake_up_test.cpp - a waiter whose notification never comes still sees its condition
#include "core/wake_up.hpp"

#include <gtest/gtest.h>

#include <future>
#include <thread>

namespace pecd {
namespace {

using namespace std::chrono_literals;

// One thread waiting, with `recheck`, for a flag another thread sets.
class WaitRechecking : public ::testing::Test {
protected:
    std::future<std::chrono::steady_clock::time_point> start_waiter(std::chrono::milliseconds recheck) {
        return std::async(std::launch::async, [this, recheck] {
            std::unique_lock lock(m_);
            wait_rechecking(
                cv_, lock, [this] { return ready_; }, recheck);
            return std::chrono::steady_clock::now();
        });
    }
    // Sets the flag without notifying, once the waiter has had time to sleep.
    std::chrono::steady_clock::time_point set_ready_later() {
        std::this_thread::sleep_for(20ms);
        std::lock_guard lock(m_);
        ready_ = true;
        return std::chrono::steady_clock::now();
    }

    std::mutex m_;
    std::condition_variable cv_;
    bool ready_ = false;
};

// The condition turns true with no notify at all, as after a lost wake-up: the waiter
// finds it at its next look.
TEST_F(WaitRechecking, SeesAConditionThatTurnedTrueWithoutANotification) {
    auto waiter = start_waiter(50ms);
    auto set_at = set_ready_later();
    auto status = waiter.wait_for(2s);
    cv_.notify_all();  // lets a waiter that never looked again end, so that the test can
    ASSERT_EQ(status, std::future_status::ready) << "the waiter never looked again";
    EXPECT_GE(waiter.get(), set_at);
}

TEST_F(WaitRechecking, ANotifiedWaiterGoesOnAtOnce) {
    auto waiter = start_waiter(60s);
    set_ready_later();
    cv_.notify_one();
    EXPECT_EQ(waiter.wait_for(5s), std::future_status::ready);
}

}  // namespace
}  // namespace pecd
