#include "core/calendar.hpp"

#include <algorithm>
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

}  // namespace pecd
