// tracking.cpp - sender-side per-recipient tracking (see tracking.hpp for the contract)
#include "pec/tracking.hpp"

#include <set>

#include "core/calendar.hpp"
#include "core/error.hpp"
#include "core/strings.hpp"

namespace pecd::pec::tracking {
namespace {

using store::Row;
using store::Tx;
using store::Value;

const std::vector<store::Migration> kMigrations = {
    {1,
     "CREATE TABLE pec_tracking ("
     " pec_msgid TEXT NOT NULL, recipient_key TEXT NOT NULL, recipient TEXT NOT NULL,"
     " sender TEXT NOT NULL, client_msgid TEXT NOT NULL, subject TEXT NOT NULL,"
     " t0_us BIGINT NOT NULL, presa_us BIGINT, delivered_us BIGINT,"
     " notice12 TEXT NOT NULL, notice24 TEXT NOT NULL, closure TEXT NOT NULL, closed_us BIGINT,"
     " next_check_us BIGINT, version BIGINT NOT NULL,"
     " PRIMARY KEY (pec_msgid, recipient_key));"
     "CREATE INDEX pec_tracking_next_check ON pec_tracking (next_check_us);"
     "CREATE TABLE pec_tracking_outbox ("
     " pec_msgid TEXT NOT NULL, recipient_key TEXT NOT NULL, kind TEXT NOT NULL,"
     " recipient TEXT NOT NULL, deadline_us BIGINT NOT NULL, enqueued_us BIGINT NOT NULL,"
     " done_us BIGINT,"
     " PRIMARY KEY (pec_msgid, recipient_key, kind));"
     "CREATE INDEX pec_tracking_outbox_pending ON pec_tracking_outbox (done_us, enqueued_us)"},
};

std::int64_t to_us(TimePoint t) {
    return stored_count<std::chrono::microseconds>(t);
}
TimePoint from_us(std::int64_t us) {
    return stored_time<std::chrono::microseconds>(us);
}
Value opt_us(const std::optional<TimePoint>& t) {
    if (!t) return nullptr;
    return to_us(*t);
}
std::optional<TimePoint> opt_time(const Row& r, std::size_t i) {
    if (r.is_null(i)) return std::nullopt;
    return from_us(r.integer(i));
}

std::string recipient_key(std::string_view address) {
    return to_lower(trim(address));
}

template <class E, std::size_t N>
E parse_enum(const std::string& text, const E (&all)[N], const char* what) {
    for (E e : all)
        if (to_string(e) == text) return e;
    throw Error(std::string("pec_tracking: invalid ") + what + " \"" + text + "\" in the database");
}

const NoticeState kNoticeStates[] = {NoticeState::pending, NoticeState::emitted, NoticeState::not_needed};
const Closure kClosures[] = {Closure::open, Closure::delivered, Closure::non_delivery, Closure::virus,
                             Closure::timed_out};
const NoticeKind kNoticeKinds[] = {NoticeKind::timeout_12h, NoticeKind::timeout_24h};

// Column order shared by every SELECT of the tracking table.
constexpr const char* kColumns =
    "pec_msgid, recipient, sender, client_msgid, subject, t0_us, presa_us, delivered_us, notice12, notice24, "
    "closure, closed_us, version";

struct LoadedRow {
    TrackedRecipient rec;
    std::string client_msgid;
    std::string subject;
    std::int64_t version = 0;
};

LoadedRow load(const Row& r) {
    LoadedRow l;
    l.rec.pec_msgid = r.text(0);
    l.rec.recipient = r.text(1);
    l.rec.sender = r.text(2);
    l.client_msgid = r.text(3);
    l.subject = r.text(4);
    auto& s = l.rec.state;
    s.t0 = from_us(r.integer(5));
    s.presa_at = opt_time(r, 6);
    s.delivered_at = opt_time(r, 7);
    s.notice12 = parse_enum(r.text(8), kNoticeStates, "notice12");
    s.notice24 = parse_enum(r.text(9), kNoticeStates, "notice24");
    s.closure = parse_enum(r.text(10), kClosures, "closure");
    s.closed_at = opt_time(r, 11);
    l.version = r.integer(12);
    return l;
}

TimePoint deadline_of(const RecipientState& s, NoticeKind k, const Policy& p) {
    return s.t0 + (k == NoticeKind::timeout_12h ? kNotice12After : p.notice24_after);
}

// Writes the new state of a loaded row (version-checked) and its notices. Returns the
// notices enqueued, or nothing (and *stored = false) when another transaction changed
// the row first.
std::vector<Notice> store_step(Tx& tx, const LoadedRow& before, const RecipientState& after,
                               const std::vector<NoticeKind>& emitted, const Policy& p, TimePoint now,
                               bool* stored = nullptr) {
    auto next = next_deadline(after, p);
    auto changed = tx.exec(
        "UPDATE pec_tracking SET presa_us = ?, delivered_us = ?, notice12 = ?, notice24 = ?, closure = ?,"
        " closed_us = ?, next_check_us = ?, version = version + 1"
        " WHERE pec_msgid = ? AND recipient_key = ? AND version = ?",
        {opt_us(after.presa_at), opt_us(after.delivered_at), std::string(to_string(after.notice12)),
         std::string(to_string(after.notice24)), std::string(to_string(after.closure)),
         opt_us(after.closed_at), opt_us(next), before.rec.pec_msgid, recipient_key(before.rec.recipient),
         before.version});
    if (stored) *stored = changed == 1;
    if (changed != 1) return {};
    std::vector<Notice> out;
    for (auto k : emitted) {
        Notice n;
        n.pec_msgid = before.rec.pec_msgid;
        n.recipient = before.rec.recipient;
        n.kind = k;
        n.deadline = deadline_of(after, k, p);
        n.enqueued_at = now;
        n.sender = before.rec.sender;
        n.client_msgid = before.client_msgid;
        n.subject = before.subject;
        // The key makes a second enqueue impossible; DO NOTHING keeps the first.
        auto inserted = tx.exec(
            "INSERT INTO pec_tracking_outbox (pec_msgid, recipient_key, kind, recipient, deadline_us,"
            " enqueued_us, done_us) VALUES (?, ?, ?, ?, ?, ?, NULL) ON CONFLICT DO NOTHING",
            {n.pec_msgid, recipient_key(n.recipient), std::string(to_string(k)), n.recipient,
             to_us(n.deadline), to_us(now)});
        if (inserted == 1) out.push_back(std::move(n));
    }
    return out;
}

void fire(RecipientState& s, TimePoint limit, bool inclusive, const Policy& p, std::vector<NoticeKind>& out) {
    if (!s.open()) return;
    auto reached = [&](TimePoint deadline) { return inclusive ? deadline <= limit : deadline < limit; };
    if (s.notice12 == NoticeState::pending && reached(s.t0 + kNotice12After)) {
        s.notice12 = NoticeState::emitted;
        out.push_back(NoticeKind::timeout_12h);
    }
    auto d24 = s.t0 + p.notice24_after;
    if (s.notice24 == NoticeState::pending && reached(d24)) {
        s.notice24 = NoticeState::emitted;
        out.push_back(NoticeKind::timeout_24h);
        // After the 24 h notice the provider stops tracking the message (pec.md 5.4).
        s.closure = Closure::timed_out;
        s.closed_at = d24;
    }
}

}  // namespace

std::string_view to_string(EventType e) noexcept {
    switch (e) {
        case EventType::presa_in_carico:
            return "presa-in-carico";
        case EventType::delivered:
            return "avvenuta-consegna";
        case EventType::non_delivery:
            return "errore-consegna";
        default:
            return "rilevazione-virus";
    }
}
std::string_view to_string(NoticeKind k) noexcept {
    return k == NoticeKind::timeout_12h ? "12h" : "24h";
}
std::string_view to_string(NoticeState s) noexcept {
    switch (s) {
        case NoticeState::pending:
            return "pending";
        case NoticeState::emitted:
            return "emitted";
        default:
            return "not-needed";
    }
}
std::string_view to_string(Closure c) noexcept {
    switch (c) {
        case Closure::open:
            return "open";
        case Closure::delivered:
            return "delivered";
        case Closure::non_delivery:
            return "non-delivery";
        case Closure::virus:
            return "virus";
        default:
            return "timed-out";
    }
}

void Policy::validate() const {
    if (notice24_after < kNotice24Earliest || notice24_after > kNotice24Latest)
        throw Error(
            "pec tracking: notice24_after must lie between 22 h and 24 h after dispatch (pec.md 5.4), got " +
            std::to_string(notice24_after.count()) + " s");
}

std::vector<NoticeKind> advance(RecipientState& s, TimePoint now, const Policy& p) {
    std::vector<NoticeKind> out;
    fire(s, now, true, p, out);
    return out;
}

std::vector<NoticeKind> apply(RecipientState& s, EventType e, TimePoint at, const Policy& p) {
    std::vector<NoticeKind> out;
    if (!s.open()) return out;
    fire(s, at, false, p, out);
    if (!s.open()) return out;  // the 24 h notice fired before this event arrived
    switch (e) {
        case EventType::presa_in_carico:
            if (!s.presa_at) s.presa_at = at;
            // Only a presa in carico within 12 h cancels the 12 h notice; a later one
            // found that notice already emitted by fire() above.
            if (s.notice12 == NoticeState::pending) s.notice12 = NoticeState::not_needed;
            return out;
        case EventType::delivered:
            s.delivered_at = at;
            s.closure = Closure::delivered;
            break;
        case EventType::non_delivery:
            s.closure = Closure::non_delivery;
            break;
        case EventType::virus:
            s.closure = Closure::virus;
            break;
    }
    s.closed_at = at;
    if (s.notice12 == NoticeState::pending) s.notice12 = NoticeState::not_needed;
    if (s.notice24 == NoticeState::pending) s.notice24 = NoticeState::not_needed;
    return out;
}

std::optional<TimePoint> next_deadline(const RecipientState& s, const Policy& p) {
    if (!s.open()) return std::nullopt;
    if (s.notice12 == NoticeState::pending) return s.t0 + kNotice12After;
    if (s.notice24 == NoticeState::pending) return s.t0 + p.notice24_after;
    return std::nullopt;
}

std::string Notice::key() const {
    return std::string(to_string(kind)) + ":" + pec_msgid + ":" + recipient_key(recipient);
}

std::vector<store::Migration> Tracker::migrations() {
    return kMigrations;
}

Tracker::Tracker(store::Database& db, Policy policy) : db_(db), policy_(policy) {
    policy_.validate();
    db_.migrate("pec_tracking", kMigrations);
}

void Tracker::start(Tx& tx, const TrackedMessage& m, const std::vector<std::string>& certified_recipients) {
    if (m.pec_msgid.empty()) throw Error("pec tracking: start() needs the PEC message id");
    RecipientState s;
    s.t0 = m.dispatched_at;
    std::set<std::string> seen;
    for (const auto& r : certified_recipients) {
        auto key = recipient_key(r);
        if (key.empty()) throw Error("pec tracking: empty recipient address for " + m.pec_msgid);
        if (!seen.insert(key).second) continue;
        tx.exec(
            "INSERT INTO pec_tracking (pec_msgid, recipient_key, recipient, sender, client_msgid, subject, "
            "t0_us,"
            " presa_us, delivered_us, notice12, notice24, closure, closed_us, next_check_us, version)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?, ?, ?, NULL, ?, 1) ON CONFLICT DO NOTHING",
            {m.pec_msgid, key, std::string(trim(r)), m.sender, m.client_msgid, m.subject, to_us(s.t0),
             std::string(to_string(s.notice12)), std::string(to_string(s.notice24)),
             std::string(to_string(s.closure)), opt_us(next_deadline(s, policy_))});
    }
}

void Tracker::start(Tx& tx, const TrackedMessage& m, const std::vector<ClassifiedRecipient>& recipients) {
    std::vector<std::string> certified;
    for (const auto& r : recipients)
        if (r.type == RecipientType::certificato) certified.push_back(r.address);
    start(tx, m, certified);
}

void Tracker::start(const TrackedMessage& m, const std::vector<std::string>& certified_recipients) {
    db_.transact([&](Tx& tx) { start(tx, m, certified_recipients); });
}

EventOutcome Tracker::record_event(Tx& tx, std::string_view pec_msgid, std::string_view recipient,
                                   EventType e, TimePoint at) {
    auto row = tx.query_one(
        std::string("SELECT ") + kColumns + " FROM pec_tracking WHERE pec_msgid = ? AND recipient_key = ?",
        {std::string(pec_msgid), recipient_key(recipient)});
    if (!row) return EventOutcome::unknown;
    auto before = load(*row);
    if (!before.rec.state.open()) return EventOutcome::closed;
    auto after = before.rec.state;
    auto emitted = apply(after, e, at, policy_);
    // Inside one transaction the row cannot change under us (SQLite serializes writers;
    // PostgreSQL's UPDATE waits on the row lock and re-checks the version).
    auto enqueued = store_step(tx, before, after, emitted, policy_, at);
    (void)enqueued;
    return EventOutcome::applied;
}

EventOutcome Tracker::record_event(std::string_view pec_msgid, std::string_view recipient, EventType e,
                                   TimePoint at) {
    EventOutcome out = EventOutcome::unknown;
    db_.transact([&](Tx& tx) { out = record_event(tx, pec_msgid, recipient, e, at); });
    return out;
}

std::vector<Notice> Tracker::due(TimePoint now, std::size_t batch) {
    if (batch == 0) batch = 1;
    std::vector<Notice> all;
    // Each pass moves every selected row's next_check past `now` or closes it, so the
    // number of passes is bounded by (due rows / batch) + 1; a pass that changed nothing
    // (rows taken by another worker) ends the loop, and the cap is a safety net.
    for (int pass = 0; pass < 100000; ++pass) {
        std::size_t selected = 0, progressed = 0;
        std::vector<Notice> enqueued_now;
        // transact() may run the function again after a serialization conflict, so
        // results are collected per attempt and kept only once it committed.
        db_.transact([&](Tx& tx) {
            enqueued_now.clear();
            progressed = 0;
            auto rows =
                tx.query(std::string("SELECT ") + kColumns +
                             " FROM pec_tracking WHERE next_check_us IS NOT NULL AND next_check_us <= ?"
                             " ORDER BY next_check_us LIMIT ?",
                         {to_us(now), static_cast<std::int64_t>(batch)});
            selected = rows.size();
            for (const auto& r : rows) {
                auto before = load(r);
                auto after = before.rec.state;
                auto emitted = advance(after, now, policy_);
                bool stored = false;
                auto enqueued = store_step(tx, before, after, emitted, policy_, now, &stored);
                progressed += stored ? 1 : 0;
                enqueued_now.insert(enqueued_now.end(), enqueued.begin(), enqueued.end());
            }
        });
        all.insert(all.end(), enqueued_now.begin(), enqueued_now.end());
        if (selected < batch || progressed == 0) break;
    }
    return all;
}

std::vector<Notice> Tracker::pending_notices(std::size_t limit) const {
    std::vector<Notice> out;
    db_.read([&](Tx& tx) {
        auto rows = tx.query(
            "SELECT o.pec_msgid, o.recipient, o.kind, o.deadline_us, o.enqueued_us, t.sender, t.client_msgid,"
            " t.subject FROM pec_tracking_outbox o JOIN pec_tracking t"
            " ON t.pec_msgid = o.pec_msgid AND t.recipient_key = o.recipient_key"
            " WHERE o.done_us IS NULL ORDER BY o.enqueued_us, o.pec_msgid, o.recipient_key, o.kind LIMIT ?",
            {static_cast<std::int64_t>(limit)});
        for (const auto& r : rows) {
            Notice n;
            n.pec_msgid = r.text(0);
            n.recipient = r.text(1);
            n.kind = parse_enum(r.text(2), kNoticeKinds, "notice kind");
            n.deadline = from_us(r.integer(3));
            n.enqueued_at = from_us(r.integer(4));
            n.sender = r.text(5);
            n.client_msgid = r.text(6);
            n.subject = r.text(7);
            out.push_back(std::move(n));
        }
    });
    return out;
}

bool Tracker::complete(Tx& tx, const Notice& n, TimePoint now) {
    return tx.exec(
               "UPDATE pec_tracking_outbox SET done_us = ? WHERE pec_msgid = ? AND recipient_key = ? AND "
               "kind = ?"
               " AND done_us IS NULL",
               {to_us(now), n.pec_msgid, recipient_key(n.recipient), std::string(to_string(n.kind))}) == 1;
}

std::size_t Tracker::drain(TimePoint now, const std::function<void(Tx&, const Notice&)>& handover,
                           std::size_t limit) {
    std::size_t handed = 0;
    for (const auto& n : pending_notices(limit)) {
        bool took = false;
        db_.transact([&](Tx& tx) {
            // Marking first: a concurrent drainer that already took it makes this 0 rows,
            // and the hand-over is skipped.
            took = complete(tx, n, now);
            if (took) handover(tx, n);
        });
        if (took) ++handed;
    }
    return handed;
}

std::optional<TrackedRecipient> Tracker::find(std::string_view pec_msgid, std::string_view recipient) const {
    std::optional<TrackedRecipient> out;
    db_.read([&](Tx& tx) {
        auto row = tx.query_one(std::string("SELECT ") + kColumns +
                                    " FROM pec_tracking WHERE pec_msgid = ? AND recipient_key = ?",
                                {std::string(pec_msgid), recipient_key(recipient)});
        if (row) out = load(*row).rec;
    });
    return out;
}

std::vector<TrackedRecipient> Tracker::recipients(std::string_view pec_msgid) const {
    std::vector<TrackedRecipient> out;
    db_.read([&](Tx& tx) {
        for (const auto& r : tx.query(std::string("SELECT ") + kColumns +
                                          " FROM pec_tracking WHERE pec_msgid = ? ORDER BY recipient_key",
                                      {std::string(pec_msgid)}))
            out.push_back(load(r).rec);
    });
    return out;
}

std::int64_t Tracker::purge_closed(TimePoint before) {
    std::int64_t removed = 0;
    db_.transact([&](Tx& tx) {
        // Outbox rows still pending keep their tracking row (the notice needs its data).
        tx.exec(
            "DELETE FROM pec_tracking_outbox WHERE done_us IS NOT NULL AND EXISTS (SELECT 1 FROM "
            "pec_tracking t"
            " WHERE t.pec_msgid = pec_tracking_outbox.pec_msgid AND t.recipient_key = "
            "pec_tracking_outbox.recipient_key AND t.closed_us IS NOT NULL AND t.closed_us < ?)",
            {to_us(before)});
        removed = tx.exec(
            "DELETE FROM pec_tracking WHERE closed_us IS NOT NULL AND closed_us < ? AND NOT EXISTS (SELECT 1 "
            "FROM"
            " pec_tracking_outbox o WHERE o.pec_msgid = pec_tracking.pec_msgid AND o.recipient_key ="
            " pec_tracking.recipient_key)",
            {to_us(before)});
    });
    return removed;
}

}  // namespace pecd::pec::tracking
