#include "core/calendar.hpp"

#include <algorithm>
#include <cstdio>
#include <string>

#include "core/error.hpp"

namespace pecd {

TimePoint months_before(TimePoint now, int months) {
    using namespace std::chrono;
    if (months < 0 || months > kMaxRetentionMonths)
        throw Error("retention of " + std::to_string(months) + " months: expected 0 to " +
                    std::to_string(kMaxRetentionMonths));
    auto day = floor<days>(now);
    auto time_of_day = now - day;
    year_month_day ymd(day);
    year_month target = year_month(ymd.year(), ymd.month()) - std::chrono::months(months);
    auto last = year_month_day_last(target.year(), month_day_last(target.month())).day();
    return sys_days(year_month_day(target.year(), target.month(), std::min(ymd.day(), last))) + time_of_day;
}

std::chrono::sys_seconds utc_seconds(const std::tm& utc) {
    using namespace std::chrono;
    // Month and day are counted on from January 1st, so a field past its range carries
    // over into the next month or year, as timegm() would do.
    year_month first = year(utc.tm_year + 1900) / January + months(utc.tm_mon);
    sys_days day = sys_days(first / 1) + days(utc.tm_mday - 1);
    return day + hours(utc.tm_hour) + minutes(utc.tm_min) + seconds(utc.tm_sec);
}

std::string rfc3339_utc(std::chrono::sys_seconds t) {
    using namespace std::chrono;
    auto day = floor<days>(t);
    year_month_day ymd(day);
    hh_mm_ss hms(t - day);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                  static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                  static_cast<int>(hms.seconds().count()));
    return buf;
}

std::string rfc3339_utc(TimePoint t) {
    return rfc3339_utc(std::chrono::floor<std::chrono::seconds>(t));
}

}  // namespace pecd
