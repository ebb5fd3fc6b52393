// clock.hpp - the time source
//
// Everything that reads the time (receipts, timers, log records, token expiry) takes a
// Clock so tests can drive 12 h / 24 h PEC timers or a 180-day retention in seconds.
// SystemClock is the real one; ManualClock is advanced by hand.
#pragma once

#include <atomic>
#include <chrono>

namespace pecd {

using TimePoint = std::chrono::system_clock::time_point;

class Clock {
public:
    virtual ~Clock() = default;
    virtual TimePoint now() const = 0;
};

class SystemClock final : public Clock {
public:
    TimePoint now() const override { return std::chrono::system_clock::now(); }
    static const SystemClock& instance() {
        static const SystemClock c;
        return c;
    }
};

class ManualClock final : public Clock {
public:
    explicit ManualClock(TimePoint start) : t_(start.time_since_epoch().count()) {}
    TimePoint now() const override { return TimePoint(TimePoint::duration(t_.load())); }
    void set(TimePoint t) { t_ = t.time_since_epoch().count(); }
    void advance(std::chrono::system_clock::duration d) { t_ += d.count(); }

private:
    std::atomic<TimePoint::rep> t_;
};

}  // namespace pecd
