// retry.hpp - when to try a deferred delivery again, and when to give up
//
// Exponential backoff: the n-th retry waits first * factor^(n-1), capped at `max`, each
// wait spread by ±jitter so that a peer coming back is not hit by every queued message at
// the same instant. A message older than `lifetime` is not retried: its pending
// recipients fail (status 4.4.7) and the sender gets a DSN. Pure functions of their
// arguments (the random draw is passed in) so they are tested without waiting.
#pragma once

#include <chrono>
#include <cstdint>

#include "core/clock.hpp"

namespace pecd::queue {

struct RetryPolicy {
    std::chrono::seconds first{60};
    std::chrono::seconds max{3600};
    double factor = 2.0;
    double jitter = 0.2;                       // fraction of the wait, each way
    std::chrono::seconds lifetime{5 * 86400};  // RFC 5321 4.5.4.1: give up after 4-5 days
};

// attempts: deliveries tried so far (≥ 1); random01: a draw in [0, 1).
inline TimePoint next_attempt(const RetryPolicy& p, int attempts, TimePoint now, double random01) {
    double wait = static_cast<double>(p.first.count());
    for (int i = 1; i < attempts && wait < static_cast<double>(p.max.count()); ++i) wait *= p.factor;
    if (wait > static_cast<double>(p.max.count())) wait = static_cast<double>(p.max.count());
    wait *= 1.0 + p.jitter * (2.0 * random01 - 1.0);
    return now + std::chrono::duration_cast<TimePoint::duration>(std::chrono::duration<double>(wait));
}

inline bool expired(const RetryPolicy& p, TimePoint received_at, TimePoint now) {
    return now - received_at >= p.lifetime;
}

}  // namespace pecd::queue
