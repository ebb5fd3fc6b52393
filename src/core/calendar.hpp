// calendar.hpp - calendar-month arithmetic for retention periods
//
// Retention is stated in calendar months (pec.md 7: the legal log and the quarantine are
// kept 30 months). months_before() is the one place that turns such a period into a
// cut-off time; the legal log and the quarantine both purge against it.
#pragma once

#include "core/clock.hpp"

namespace pecd {

// The longest retention pecd accepts: 100 years. Beyond this a cut-off would leave the
// range of the system clock (about 1677-2262) and wrap around into the future, and a
// purge against a future cut-off removes everything.
inline constexpr int kMaxRetentionMonths = 1200;

// now minus `months` calendar months, the day clamped to the target month's end, the
// time of day kept (UTC). Throws Error when months is outside [0, kMaxRetentionMonths]:
// a caller never gets a cut-off that wrapped.
TimePoint months_before(TimePoint now, int months);

}  // namespace pecd
