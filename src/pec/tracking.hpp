// tracking.hpp - sender-side tracking of each certified recipient (pec.md 5.4)
//
// After the access point dispatches a transport envelope (t0), every *certified*
// recipient is tracked until its delivery receipt, a non-delivery / virus notice, or the
// 24 h notice closes it. External (esterno) recipients are never tracked: no receipts
// will come for them. The rules of pec.md 5.4, exactly:
//
//   | situation                                                      | notices        |
//   | presa in carico within 12 h, never a delivery receipt          | 24 h only      |
//   | no presa in carico, delivery receipt between 12 h and 24 h     | 12 h only      |
//   | neither                                                        | 12 h and 24 h  |
//   | presa in carico or delivery within 12 h, delivery within 24 h  | none           |
//
//   - the 12 h notice fires at t0+12h when neither a presa in carico nor a delivery
//     receipt has arrived; an event stamped exactly t0+12h still counts as "within";
//   - the 24 h notice fires at t0 + Policy::notice24_after, which must lie in
//     [22 h, 24 h] ("not before t0+22h and by t0+24h"; default 23 h, leaving an hour
//     for polling latency), when no delivery receipt has arrived; it closes tracking;
//   - an errore-consegna (non-delivery) or virus notice closes tracking (pec.md marks
//     this as inferred; it is what every provider does);
//   - the outcome does not depend on how promptly due() runs: an event stamped `at`
//     first settles every timer whose deadline is strictly before `at`. So a delivery
//     receipt stamped t0+13h after a late due() still produces the 12 h notice first.
//
// Layers:
//   - The pure state machine (RecipientState, advance(), apply(), next_deadline()):
//     no I/O, used by the tracker and testable alone.
//   - Tracker: the state per (PEC msgid, recipient) in the Database (module
//     "pec_tracking", tables pec_tracking and pec_tracking_outbox).
//
// Exactly-once notices across kill -9 (the work-claim scheme):
//   - due(now) and record_event() change a recipient's row with a version check
//     (UPDATE ... WHERE version = <read version>) and, in the SAME transaction, insert
//     an outbox row for each notice to emit. The outbox key is (pec_msgid, recipient,
//     kind), so a notice can be enqueued at most once, even with concurrent workers
//     (a lost version race changes 0 rows and enqueues nothing).
//   - drain(now, handover) hands each pending outbox row to the caller inside a
//     transaction that also marks the row done (conditionally: done_us IS NULL). If the
//     hand-over writes to this Database (queue rows, legal log), notice emission is
//     exactly once. If it writes elsewhere (a spool file), a crash between that write
//     and the commit replays the notice: the hand-over must then be idempotent by
//     Notice::key() (e.g. use it to derive the generated Message-ID / spool name).
//   - The Database may replay a transaction after a serialization conflict
//     (PostgreSQL); the hand-over then runs again inside the new attempt, which is
//     harmless when its effects are in that transaction.
//   - A crash anywhere leaves either the old state (the step is redone by the next
//     due()) or the new state with its outbox row (drained by the next drain()).
//
// Threading: a Tracker holds no mutable state of its own; it may be shared by queue
// worker threads. Time always comes from the caller (a pecd::Clock reading), so tests
// drive 12 h / 24 h with ManualClock.
//
// What the PEC flow calls:
//   access point, after the transport envelope is handed to the queue:
//       tracker.start(tx, {pec_msgid, sender, client_msgid, subject, t0}, classified_rcpts)
//   reception/delivery point, when a receipt for one of our messages arrives
//   (X-Riferimento-Message-ID / daticert msgid = our PEC msgid):
//       tracker.record_event(tx, pec_msgid, recipient, EventType::..., time_reference)
//   a periodic job (e.g. every 30 s) with clock.now():
//       tracker.due(now); tracker.drain(now, build_and_queue_timeout_notice);
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"
#include "pec/types.hpp"
#include "store/database.hpp"

namespace pecd::pec::tracking {

using namespace std::chrono_literals;

// What can happen to a tracked recipient.
enum class EventType {
    presa_in_carico,  // ricevuta di presa in carico naming this recipient (3.4)
    delivered,        // ricevuta di avvenuta consegna (3.8): closes
    non_delivery,     // avviso di mancata consegna, errore-consegna (3.9): closes
    virus,            // avviso di rilevazione virus (3.6) for this recipient: closes
};

enum class NoticeKind { timeout_12h, timeout_24h };

enum class NoticeState { pending, emitted, not_needed };

enum class Closure { open, delivered, non_delivery, virus, timed_out };

std::string_view to_string(EventType e) noexcept;
std::string_view to_string(NoticeKind k) noexcept;  // "12h" / "24h"
std::string_view to_string(NoticeState s) noexcept;
std::string_view to_string(Closure c) noexcept;

inline constexpr std::chrono::seconds kNotice12After = 12h;
inline constexpr std::chrono::seconds kNotice24Earliest = 22h;
inline constexpr std::chrono::seconds kNotice24Latest = 24h;

struct Policy {
    // When the 24 h notice fires, after t0; within [22 h, 24 h] (pec.md 5.4).
    std::chrono::seconds notice24_after = 23h;
    // Throws Error naming the setting when outside the window.
    void validate() const;
};

// ---- the pure state machine ----

struct RecipientState {
    TimePoint t0{};  // dispatch of the transport envelope
    std::optional<TimePoint> presa_at;
    std::optional<TimePoint> delivered_at;
    NoticeState notice12 = NoticeState::pending;
    NoticeState notice24 = NoticeState::pending;
    Closure closure = Closure::open;
    std::optional<TimePoint> closed_at;
    bool open() const { return closure == Closure::open; }
};

// Fires every timer whose deadline is <= now; returns the notices to emit, in order
// (12 h before 24 h). A closed state returns nothing and is not changed.
std::vector<NoticeKind> advance(RecipientState& s, TimePoint now, const Policy& p);
// Settles the timers whose deadline is strictly before `at`, then applies the event.
// Returns the notices the settling produced. A closed state is not changed.
std::vector<NoticeKind> apply(RecipientState& s, EventType e, TimePoint at, const Policy& p);
// The next instant at which advance() would change s; nullopt when closed.
std::optional<TimePoint> next_deadline(const RecipientState& s, const Policy& p);

// ---- persistence ----

struct TrackedMessage {
    std::string pec_msgid;      // the PEC message id of the transport envelope
    std::string sender;         // the certified sender (MAIL FROM): notices go there
    std::string client_msgid;   // for X-Riferimento-Message-ID of the notices
    std::string subject;        // original subject (decoded), for the notices' Subject
    TimePoint dispatched_at{};  // t0
};

// One timeout notice to emit (pec.md 3.10): addressed to `sender`, daticert
// tipo="preavviso-errore-consegna", <consegna> = recipient.
struct Notice {
    std::string pec_msgid;
    std::string recipient;  // as given to start()
    NoticeKind kind = NoticeKind::timeout_12h;
    TimePoint deadline{};  // the timer's deadline (t0+12h or t0+notice24_after)
    TimePoint enqueued_at{};
    std::string sender;
    std::string client_msgid;
    std::string subject;
    // Stable identity of this notice: "<kind>:<pec_msgid>:<recipient lower-case>".
    std::string key() const;
};

struct ClassifiedRecipient {
    std::string address;
    RecipientType type = RecipientType::certificato;
};

enum class EventOutcome {
    applied,  // the recipient's state changed
    closed,   // tracking had already closed (duplicate or late receipt): nothing changed
    unknown,  // not tracked (external recipient, not ours, or purged)
};

struct TrackedRecipient {
    std::string pec_msgid;
    std::string recipient;
    std::string sender;
    RecipientState state;
};

class Tracker {
public:
    static std::vector<store::Migration> migrations();
    // Applies the "pec_tracking" migrations; throws Error if the policy is invalid.
    explicit Tracker(store::Database& db, Policy policy = {});

    // Starts tracking each certified recipient (duplicates, compared case-insensitively,
    // are tracked once). Starting an already tracked (msgid, recipient) changes nothing,
    // so a replayed dispatch is harmless.
    void start(store::Tx& tx, const TrackedMessage& m, const std::vector<std::string>& certified_recipients);
    void start(const TrackedMessage& m, const std::vector<std::string>& certified_recipients);
    // The same from a classified recipient list (pec.md 5.1.4): esterno recipients are
    // skipped, as no receipt will ever come for them.
    void start(store::Tx& tx, const TrackedMessage& m, const std::vector<ClassifiedRecipient>& recipients);

    // Records a receipt/notice for one recipient, stamped with its time reference `at`;
    // notices that settling produces go to the outbox in the same transaction.
    EventOutcome record_event(store::Tx& tx, std::string_view pec_msgid, std::string_view recipient,
                              EventType e, TimePoint at);
    EventOutcome record_event(std::string_view pec_msgid, std::string_view recipient, EventType e,
                              TimePoint at);

    // Fires the timers due at `now` (in batches of `batch`, one transaction each) and
    // returns the notices enqueued by this call.
    std::vector<Notice> due(TimePoint now, std::size_t batch = 500);

    // Outbox rows not yet handed over, oldest first.
    std::vector<Notice> pending_notices(std::size_t limit = 1000) const;
    // Marks a notice handed over, inside the caller's transaction. Returns false (and
    // changes nothing) when it was already done: the caller must then not emit it.
    bool complete(store::Tx& tx, const Notice& n, TimePoint now);
    // For each pending notice: one transaction that marks it done and runs handover(tx, n);
    // if handover throws, that notice stays pending and the exception propagates.
    // Returns how many notices were handed over.
    std::size_t drain(TimePoint now, const std::function<void(store::Tx&, const Notice&)>& handover,
                      std::size_t limit = 1000);

    std::optional<TrackedRecipient> find(std::string_view pec_msgid, std::string_view recipient) const;
    std::vector<TrackedRecipient> recipients(std::string_view pec_msgid) const;
    // Removes closed tracking rows closed before `before` and their done outbox rows;
    // returns the number of tracking rows removed.
    std::int64_t purge_closed(TimePoint before);

    const Policy& policy() const { return policy_; }

private:
    store::Database& db_;
    Policy policy_;
};

}  // namespace pecd::pec::tracking
