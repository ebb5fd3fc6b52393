// calendar.hpp - calendar-month arithmetic for retention periods, and calendar times
// that the system clock cannot hold
//
// Retention is stated in calendar months (pec.md 7: the legal log and the quarantine are
// kept 30 months). months_before() is the one place that turns such a period into a
// cut-off time; the legal log and the quarantine both purge against it.
//
// TimePoint counts nanoseconds in 64 bits, so it holds about 1677-09-21 to 2262-04-11,
// while the times pecd reads run from year 0 to 9999: X.509 validity (RFC 5280 4.1.2.5
// gives 99991231235959Z for "no expiry"), CMS signing times, RFC 3161 genTime, RFC 3339
// in API queries. Converting such a time with from_time_t() or a duration_cast overflows
// (undefined behaviour; in practice it wraps, and 9999-12-31 becomes a day in 1816).
// Every such conversion goes through to_time_point() or clamp_to_time_point().
#pragma once

#include <algorithm>
#include <cstdint>
#include <ctime>
#include <optional>
#include <string>

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

// A broken-down UTC time (as ASN1_TIME_to_tm() fills it) as seconds since the epoch, for
// any year a std::tm holds; unlike timegm(), no time_t and no time zone are involved.
std::chrono::sys_seconds utc_seconds(const std::tm& utc);

// "2026-12-06T20:18:50Z": RFC 3339 in UTC, whole seconds, any year 0 to 9999 (calendar
// arithmetic, no time_t); a TimePoint is rounded down to its second.
std::string rfc3339_utc(std::chrono::sys_seconds t);
std::string rfc3339_utc(TimePoint t);

// The latest and earliest instants a TimePoint holds, at the precision of Duration
// (rounded inwards, so converting them back cannot overflow).
template <class Duration>
constexpr std::chrono::sys_time<Duration> latest_time_point() {
    return std::chrono::floor<Duration>(TimePoint::max());
}
template <class Duration>
constexpr std::chrono::sys_time<Duration> earliest_time_point() {
    return std::chrono::ceil<Duration>(TimePoint::min());
}

// `t` as a TimePoint, or std::nullopt when the system clock cannot hold it. Duration is
// seconds or finer (sys_days: add std::chrono::seconds first).
template <class Duration>
std::optional<TimePoint> to_time_point(std::chrono::sys_time<Duration> t) {
    if (t > latest_time_point<Duration>() || t < earliest_time_point<Duration>()) return std::nullopt;
    return std::chrono::time_point_cast<TimePoint::duration>(t);
}

// `t` as a TimePoint, saturated at the clock's ends: for search bounds, where "until the
// year 9999" means "no upper bound".
template <class Duration>
TimePoint clamp_to_time_point(std::chrono::sys_time<Duration> t) {
    if (t > latest_time_point<Duration>()) return TimePoint::max();
    if (t < earliest_time_point<Duration>()) return TimePoint::min();
    return std::chrono::time_point_cast<TimePoint::duration>(t);
}

// Times pecd keeps in its own database, as a count of Duration since the epoch (seconds
// in the mail store and the API's catalog, milliseconds in the queue, microseconds in the
// legal log, the PEC tracking and the quarantine).
template <class Duration>
std::int64_t stored_count(TimePoint t) {
    return std::chrono::duration_cast<Duration>(t.time_since_epoch()).count();
}

// The range a stored time is read back into (UTC): nothing pecd writes lies outside
// it, and what is computed from a stored time (a retry's back-off, a 12- or 24-hour
// deadline, a retention cut-off of up to kMaxRetentionMonths) stays within the clock.
inline constexpr std::chrono::sys_days kEarliestStoredDay{std::chrono::days{0}};    // 1970-01-01
inline constexpr std::chrono::sys_days kLatestStoredDay{std::chrono::days{84006}};  // 2200-01-01

// A stored count read back, saturated at kEarliestStoredDay and kLatestStoredDay: only a
// damaged or edited database holds a count outside them, and converting it as it is
// could overflow (undefined behaviour; a date in another century, a retry due at once).
template <class Duration>
TimePoint stored_time(std::int64_t count) {
    constexpr auto earliest = std::chrono::sys_time<Duration>(kEarliestStoredDay).time_since_epoch().count();
    constexpr auto latest = std::chrono::sys_time<Duration>(kLatestStoredDay).time_since_epoch().count();
    return TimePoint(
        std::chrono::sys_time<Duration>(Duration(std::clamp<std::int64_t>(count, earliest, latest))));
}

}  // namespace pecd
