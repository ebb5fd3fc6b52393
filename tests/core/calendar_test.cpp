// Calendar times beyond the system clock's range (core/calendar.hpp).
#include "core/calendar.hpp"

#include <gtest/gtest.h>

#include <ctime>
#include <limits>

namespace pecd {
namespace {

using namespace std::chrono;

std::tm utc(int y, int mon, int d, int h = 0, int min = 0, int s = 0) {
    std::tm tm{};
    tm.tm_year = y - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = min;
    tm.tm_sec = s;
    return tm;
}

TEST(Calendar, UtcSecondsCoversEveryYearACertificateCarries) {
    EXPECT_EQ(utc_seconds(utc(1970, 1, 1)).time_since_epoch().count(), 0);
    EXPECT_EQ(utc_seconds(utc(9999, 12, 31, 23, 59, 59)).time_since_epoch().count(), 253402300799);
    EXPECT_EQ(utc_seconds(utc(0, 1, 1)).time_since_epoch().count(), -62167219200);
    EXPECT_EQ(utc_seconds(utc(2024, 2, 29, 12)).time_since_epoch().count(), 1709208000);
    // As timegm() for dates it handles, fields past their range included.
    for (std::tm tm : {utc(2026, 12, 6, 20, 18, 50), utc(1999, 12, 31, 23, 59, 60), utc(2025, 13, 1),
                       utc(2023, 2, 29), utc(1900, 3, 1)}) {
        std::tm copy = tm;
        EXPECT_EQ(utc_seconds(tm).time_since_epoch().count(), static_cast<long long>(timegm(&copy)))
            << tm.tm_year + 1900 << "-" << tm.tm_mon + 1 << "-" << tm.tm_mday;
    }
}

TEST(Calendar, ToTimePointRefusesWhatTheClockCannotHold) {
    sys_seconds last = sys_days(2262y / April / 11) + 23h + 47min + 16s;
    sys_seconds first = sys_days(1677y / September / 21) + 12min + 44s;
    ASSERT_TRUE(to_time_point(last));
    EXPECT_EQ(floor<seconds>(*to_time_point(last)), last);
    EXPECT_FALSE(to_time_point(last + 1s));
    ASSERT_TRUE(to_time_point(first));
    EXPECT_EQ(floor<seconds>(*to_time_point(first)), first);
    EXPECT_FALSE(to_time_point(first - 1s));
    EXPECT_FALSE(to_time_point(utc_seconds(utc(9999, 12, 31, 23, 59, 59))));
    EXPECT_FALSE(to_time_point(utc_seconds(utc(0, 1, 1))));
    // At a finer precision the bound moves with it.
    sys_time<microseconds> last_us = floor<microseconds>(TimePoint::max());
    EXPECT_TRUE(to_time_point(last_us));
    EXPECT_FALSE(to_time_point(last_us + 1us));
    sys_seconds today = sys_days(2026y / December / 6) + 20h;
    EXPECT_EQ(to_time_point(today), TimePoint(today));
}

TEST(Calendar, ClampSaturatesAtTheClocksEnds) {
    EXPECT_EQ(clamp_to_time_point(utc_seconds(utc(9999, 12, 31, 23, 59, 59))), TimePoint::max());
    EXPECT_EQ(clamp_to_time_point(utc_seconds(utc(0, 1, 1))), TimePoint::min());
    sys_seconds today = sys_days(2026y / December / 6) + 20h;
    EXPECT_EQ(clamp_to_time_point(today), TimePoint(today));
}

TEST(Calendar, StoredTimesRoundTripAndSaturateWhenDamaged) {
    TimePoint t = TimePoint(sys_days(2026y / December / 7) + 2h + 13min + 7s + 123456us);
    EXPECT_EQ(stored_time<microseconds>(stored_count<microseconds>(t)), t);
    EXPECT_EQ(stored_time<milliseconds>(stored_count<milliseconds>(t)), floor<milliseconds>(t));
    EXPECT_EQ(stored_time<seconds>(stored_count<seconds>(t)), floor<seconds>(t));
    // Counts outside 1970..2200 come only from a damaged database: read as those ends,
    // never as a wrapped date, and leaving room for what is computed from them.
    const TimePoint latest(sys_days(2200y / January / 1)), earliest(sys_days(1970y / January / 1));
    EXPECT_EQ(kLatestStoredDay, sys_days(2200y / January / 1));
    for (std::int64_t big : {std::numeric_limits<std::int64_t>::max(), std::int64_t{10'000'000'000'000}}) {
        EXPECT_EQ(stored_time<seconds>(big), latest);
        EXPECT_EQ(stored_time<seconds>(-big), earliest);
    }
    EXPECT_EQ(stored_time<milliseconds>(std::numeric_limits<std::int64_t>::max()), latest);
    EXPECT_EQ(stored_time<microseconds>(std::numeric_limits<std::int64_t>::min()), earliest);
    EXPECT_EQ(stored_time<seconds>(-1), earliest);
    EXPECT_EQ(stored_time<seconds>(0), earliest);
    EXPECT_EQ(rfc3339_utc(stored_time<microseconds>(std::numeric_limits<std::int64_t>::max()) + 24h),
              "2200-01-02T00:00:00Z");
}

TEST(Calendar, Rfc3339UtcWritesEveryYear) {
    EXPECT_EQ(rfc3339_utc(utc_seconds(utc(9999, 12, 31, 23, 59, 59))), "9999-12-31T23:59:59Z");
    EXPECT_EQ(rfc3339_utc(utc_seconds(utc(0, 1, 1))), "0000-01-01T00:00:00Z");
    // A TimePoint is rounded down to its second, before 1970 too.
    EXPECT_EQ(rfc3339_utc(TimePoint(sys_days(2026y / December / 6) + 20h + 18min + 50s + 999ms)),
              "2026-12-06T20:18:50Z");
    EXPECT_EQ(rfc3339_utc(TimePoint(sys_days(1969y / December / 31) + 23h + 59min + 59s + 500ms)),
              "1969-12-31T23:59:59Z");
}

}  // namespace
}  // namespace pecd
