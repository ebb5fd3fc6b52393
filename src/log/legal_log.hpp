// legal_log.hpp - the legal log: append-only, hash-chained records in the database
//
// Contract:
// - LegalLog(db) applies the "log" module's migrations (tables log_records, log_keys,
//   log_head, log_segments).
// - append(tx, event) writes one record inside the caller's transaction: the record and
//   the state change it describes commit (or roll back) together. Appenders serialize
//   on the single log_head row (updated first, so concurrent PostgreSQL transactions
//   queue on its row lock). Returns the record's sequence number (1, 2, ...).
//   An append also writes the record's search keys (message ids, addresses) into
//   log_keys, so a search never has to scan recent records: the mailbox API looks up a
//   message's history on every read while thousands of audit records a second are
//   appended, and a scanned tail would grow with them.
// - index_pending() adds the keys of records appended without them (logs written before
//   keys were added on append); the sealer calls it.
// - search() finds records by keys where indexed and by scanning the not yet indexed
//   tail, so a record is searchable as soon as it is committed.
// - close_segment(now) closes the records appended since the last segment into a new
//   segment with its manifest (log/chain.hpp); sealing (signature + time stamp) is
//   separate (log/sealer.hpp) because it does I/O and may have to wait for a TSA.
// - purge(now, months) removes the records of sealed segments closed more than `months`
//   ago, keeps the segments' manifests and seals (the anchor of the remaining chain)
//   and appends a purge record in the same transaction.
// - Reads (search, records, segments) never change anything.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "log/chain.hpp"
#include "log/event.hpp"
#include "store/database.hpp"

namespace pecd::log {

struct StoredRecord {
    std::int64_t seq = 0;
    std::string record;  // canonical bytes
    std::string digest;  // as stored
    std::string chain;   // as stored
    std::int64_t at_us = 0;
};

struct Segment {
    std::int64_t id = 0;
    std::int64_t first_seq = 0;
    std::int64_t last_seq = 0;
    std::string previous_chain;
    std::string head_chain;
    std::int64_t opened_us = 0;
    std::int64_t closed_us = 0;
    std::string manifest;
    std::string signature;  // CMS DER, empty until sealed
    std::string timestamp;  // RFC 3161 TimeStampResp DER, empty until sealed
    std::int64_t sealed_us = 0;
    bool purged = false;
    std::string last_error;  // why sealing has not happened yet
    bool sealed() const { return !signature.empty() && !timestamp.empty(); }
};

struct SearchQuery {
    std::string message_id;         // PEC or client message id, exact
    std::string address;            // sender or recipient, case-insensitive
    std::optional<TimePoint> from;  // inclusive
    std::optional<TimePoint> to;    // exclusive
    std::size_t limit = 10000;
};

class LegalLog {
public:
    // backend: "sqlite" or "postgresql" (the key table is WITHOUT ROWID on SQLite).
    static std::vector<store::Migration> migrations(const std::string& backend);
    explicit LegalLog(store::Database& db);

    std::int64_t append(store::Tx& tx, const Event& event);
    // Convenience for events with no state change of their own (audit reads).
    std::int64_t append(const Event& event);

    // Adds search keys for up to `max_records` records not yet indexed, in one
    // transaction; returns how many were indexed (0 = caught up).
    std::int64_t index_pending(std::int64_t max_records = 5000);
    // Closes a segment over the records not yet in one; nullopt when there are none.
    std::optional<Segment> close_segment(TimePoint now);
    void record_seal(std::int64_t segment, const std::string& signature, const std::string& timestamp,
                     TimePoint sealed_at);
    void record_seal_failure(std::int64_t segment, const std::string& error);
    // Returns the number of records removed.
    std::int64_t purge(TimePoint now, int retention_months, int utc_offset_minutes);

    std::vector<StoredRecord> search(const SearchQuery& q) const;
    std::vector<StoredRecord> records(std::int64_t first_seq, std::int64_t last_seq) const;
    std::vector<Segment> segments() const;
    std::vector<Segment> unsealed_segments() const;
    std::optional<Segment> last_segment() const;
    std::int64_t head_seq() const;
    store::Database& database() { return db_; }

private:
    store::Database& db_;
};

std::int64_t to_micros(TimePoint t);
TimePoint from_micros(std::int64_t us);

}  // namespace pecd::log
