// wake_up_test.cpp - a waiter whose notification never comes still sees its condition
#include "core/wake_up.hpp"

#include <gtest/gtest.h>

#include <future>
#include <thread>

namespace pecd {
namespace {

using namespace std::chrono_literals;

// The condition turns true with no notify at all, as after a lost wake-up: the waiter
// finds it at its next look.
TEST(WaitRechecking, SeesAConditionThatTurnedTrueWithoutANotification) {
    std::mutex m;
    std::condition_variable cv;
    bool ready = false;
    auto waiter = std::async(std::launch::async, [&] {
        std::unique_lock lock(m);
        wait_rechecking(
            cv, lock, [&] { return ready; }, 50ms);
        return std::chrono::steady_clock::now();
    });
    std::this_thread::sleep_for(20ms);
    auto set_at = std::chrono::steady_clock::now();
    {
        std::lock_guard lock(m);
        ready = true;
    }
    auto status = waiter.wait_for(2s);
    cv.notify_all();  // lets a waiter that never looked again end, so that the test can
    ASSERT_EQ(status, std::future_status::ready) << "the waiter never looked again";
    EXPECT_GE(waiter.get(), set_at);
}

TEST(WaitRechecking, ANotifiedWaiterGoesOnAtOnce) {
    std::mutex m;
    std::condition_variable cv;
    bool ready = false;
    auto waiter = std::async(std::launch::async, [&] {
        std::unique_lock lock(m);
        wait_rechecking(
            cv, lock, [&] { return ready; }, 60s);
    });
    std::this_thread::sleep_for(20ms);
    {
        std::lock_guard lock(m);
        ready = true;
    }
    cv.notify_one();
    EXPECT_EQ(waiter.wait_for(5s), std::future_status::ready);
}

}  // namespace
}  // namespace pecd
