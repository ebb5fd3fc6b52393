// retry.hpp - when to try a deferred delivery again, when to warn, and when to give up
//
// Exponential backoff: the n-th retry waits first * factor^(n-1), capped at `max`, each
// wait spread by ±jitter so that a peer coming back is not hit by every queued message at
// the same instant. A message older than its class's lifetime is not retried: its pending
// recipients fail (status 4.4.7) and the sender gets a DSN. Ordinary mail lives 5 days
// (RFC 5321 4.5.4.1), PEC traffic 24 hours (the PEC rules want a non-delivery notice
// within a day). Ordinary mail still queued `delay_warning` after arrival gets one delay
// notice (RFC 3464 action=delayed); zero disables it. Pure functions of their arguments
// (the random draw is passed in) so they are tested without waiting.
#pragma once

#include <chrono>
#include <cstdint>

#include "core/clock.hpp"

namespace pecd::queue {

// The class of a queued message; it decides its lifetime and whether delay notices go out.
enum class MessageClass { ordinary, pec };

struct RetryPolicy {
    std::chrono::seconds first{60};
    std::chrono::seconds max{3600};
    double factor = 2.0;
    double jitter = 0.2;                           // fraction of the wait, each way
    std::chrono::seconds lifetime{5 * 86400};      // ordinary mail
    std::chrono::seconds pec_lifetime{86400};      // PEC traffic
    std::chrono::seconds delay_warning{4 * 3600};  // ordinary mail; 0 = never warn
};

// attempts: deliveries tried so far (≥ 1); random01: a draw in [0, 1).
inline TimePoint next_attempt(const RetryPolicy& p, int attempts, TimePoint now, double random01) {
    double wait = static_cast<double>(p.first.count());
    for (int i = 1; i < attempts && wait < static_cast<double>(p.max.count()); ++i) wait *= p.factor;
    if (wait > static_cast<double>(p.max.count())) wait = static_cast<double>(p.max.count());
    wait *= 1.0 + p.jitter * (2.0 * random01 - 1.0);
    return now + std::chrono::duration_cast<TimePoint::duration>(std::chrono::duration<double>(wait));
}

inline std::chrono::seconds lifetime_of(const RetryPolicy& p, MessageClass c) {
    return c == MessageClass::pec ? p.pec_lifetime : p.lifetime;
}

inline bool expired(const RetryPolicy& p, MessageClass c, TimePoint received_at, TimePoint now) {
    return now - received_at >= lifetime_of(p, c);
}

// Ordinary mail only, once (the caller passes whether it already warned).
inline bool delay_warning_due(const RetryPolicy& p, MessageClass c, bool already_warned,
                              TimePoint received_at, TimePoint now) {
    return c == MessageClass::ordinary && !already_warned && p.delay_warning.count() > 0 &&
           now - received_at >= p.delay_warning;
}

}  // namespace pecd::queue
