// offset_clock.hpp - the system time shifted by an offset kept in a file (tests)
//
// pecd --clock-offset-file FILE runs the daemon on this clock: FILE holds a whole number
// of seconds (it may be negative; absent or unreadable = 0) added to the system time, so
// a black-box test moves a real daemon 12 or 24 hours ahead to drive the PEC timers
// (pec.md 5.4) without waiting. The file is re-read at most every 100 ms. Never used
// unless that option is given.
#pragma once

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>

#include "core/clock.hpp"

namespace pecd {

class OffsetFileClock final : public Clock {
public:
    explicit OffsetFileClock(std::filesystem::path file) : file_(std::move(file)) {}
    TimePoint now() const override {
        auto mono = std::chrono::steady_clock::now();
        {
            std::lock_guard lock(mutex_);
            if (mono - last_read_ > std::chrono::milliseconds(100)) {
                last_read_ = mono;
                long long seconds = 0;
                std::ifstream in(file_);
                if (in >> seconds) offset_ = std::chrono::seconds(seconds);
                else offset_ = std::chrono::seconds(0);
            }
        }
        return std::chrono::system_clock::now() + offset_;
    }

private:
    std::filesystem::path file_;
    mutable std::mutex mutex_;
    mutable std::chrono::steady_clock::time_point last_read_{};
    mutable std::chrono::seconds offset_{0};
};

}  // namespace pecd
