// legal_log.cpp - legal-log records and segments in the database (see legal_log.hpp)
#include "log/legal_log.hpp"

#include <chrono>
#include <set>

#include "core/calendar.hpp"
#include "core/error.hpp"
#include "core/strings.hpp"

namespace pecd::log {
namespace {

using store::Value;

const char* const kSegmentColumns =
    "id, first_seq, last_seq, previous_chain, head_chain, opened_us, closed_us, manifest, signature, "
    "timestamp, sealed_us, purged, last_error";
const char* const kRecordColumns = "seq, record, digest, chain, at_us";

Segment segment_from(const store::Row& r) {
    Segment s;
    s.id = r.integer(0);
    s.first_seq = r.integer(1);
    s.last_seq = r.integer(2);
    s.previous_chain = r.text(3);
    s.head_chain = r.text(4);
    s.opened_us = r.integer(5);
    s.closed_us = r.integer(6);
    s.manifest = r.text(7);
    s.signature = r.text(8);
    s.timestamp = r.text(9);
    s.sealed_us = r.is_null(10) ? 0 : r.integer(10);
    s.purged = r.integer(11) != 0;
    s.last_error = r.text(12);
    return s;
}

StoredRecord record_from(const store::Row& r) {
    return StoredRecord{r.integer(0), r.text(1), r.text(2), r.text(3), r.integer(4)};
}

// The search keys of an event: "m:" message ids (PEC and client), "a:" addresses
// (lower-cased), each once.
std::set<std::string> keys_of(const Event& e) {
    std::set<std::string> out;
    if (!e.pec_msgid.empty()) out.insert("m:" + e.pec_msgid);
    if (!e.client_msgid.empty()) out.insert("m:" + e.client_msgid);
    if (!e.sender.empty()) out.insert("a:" + to_lower(e.sender));
    for (const auto& r : e.recipients)
        if (!r.address.empty()) out.insert("a:" + to_lower(r.address));
    return out;
}

// The sequence range that can hold records of q's time range: segments closed before
// `from` (minus a margin for commits that straddle a close) and opened after `to` are out.
std::pair<std::int64_t, std::int64_t> seq_bounds(store::Tx& tx, const SearchQuery& q) {
    constexpr std::int64_t kMarginUs = 10LL * 60 * 1000000;
    std::int64_t lo = 0, hi = INT64_MAX;
    if (q.from) {
        auto r = tx.query_one("SELECT MAX(last_seq) FROM log_segments WHERE closed_us < ?",
                              {to_micros(*q.from) - kMarginUs});
        if (r && !r->is_null(0)) lo = r->integer(0) + 1;
    }
    if (q.to) {
        auto r = tx.query_one("SELECT MIN(first_seq) FROM log_segments WHERE opened_us > ?",
                              {to_micros(*q.to) + kMarginUs});
        if (r && !r->is_null(0)) hi = r->integer(0) - 1;
    }
    return {lo, hi};
}

bool matches(const SearchQuery& q, const Event& e) {
    auto keys = keys_of(e);
    if (!q.message_id.empty() && !keys.count("m:" + q.message_id)) return false;
    if (!q.address.empty() && !keys.count("a:" + to_lower(q.address))) return false;
    if (q.from && e.time < *q.from) return false;
    if (q.to && e.time >= *q.to) return false;
    return true;
}

}  // namespace

std::int64_t to_micros(TimePoint t) {
    return stored_count<std::chrono::microseconds>(t);
}

TimePoint from_micros(std::int64_t us) {
    return stored_time<std::chrono::microseconds>(us);
}

std::vector<store::Migration> LegalLog::migrations(const std::string& backend) {
    // SQLite keeps (key, seq) in one B-tree only when told WITHOUT ROWID; PostgreSQL has
    // no such clause (its primary key index is the only index either way).
    const std::string key_table_options = backend == "sqlite" ? " WITHOUT ROWID" : "";
    return {{1,
             "CREATE TABLE log_records (seq BIGINT PRIMARY KEY, at_us BIGINT NOT NULL, record TEXT NOT NULL, "
             "digest TEXT NOT NULL, chain TEXT NOT NULL);"
             "CREATE TABLE log_keys (key TEXT NOT NULL, seq BIGINT NOT NULL, PRIMARY KEY (key, seq))" +
                 key_table_options +
                 ";"
                 "CREATE TABLE log_head (id INTEGER PRIMARY KEY, seq BIGINT NOT NULL, chain TEXT NOT NULL, "
                 "indexed_seq BIGINT NOT NULL);"
                 "INSERT INTO log_head (id, seq, chain, indexed_seq) VALUES (1, 0, '" +
                 kGenesisChain +
                 "', 0);"
                 "CREATE TABLE log_segments (id BIGINT PRIMARY KEY, first_seq BIGINT NOT NULL, "
                 "last_seq BIGINT NOT NULL, previous_chain TEXT NOT NULL, head_chain TEXT NOT NULL, "
                 "opened_us BIGINT NOT NULL, closed_us BIGINT NOT NULL, manifest TEXT NOT NULL, "
                 "signature BLOB, timestamp BLOB, sealed_us BIGINT, purged INTEGER NOT NULL DEFAULT 0, "
                 "last_error TEXT)"}};
}

LegalLog::LegalLog(store::Database& db) : db_(db) {
    db_.migrate("log", migrations(db_.backend()));
}

std::int64_t LegalLog::append(store::Tx& tx, const Event& event) {
    // The UPDATE comes first: it takes the head row's lock before the head is read.
    auto head = tx.query_one("UPDATE log_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, chain");
    if (!head) throw Error("legal log: the log_head row is missing");
    std::int64_t seq = head->integer(0);
    std::string record = canonical_record(event, seq);
    std::string digest = record_digest(record);
    std::string chain = chain_link(head->text(1), digest);
    tx.exec("INSERT INTO log_records (seq, at_us, record, digest, chain) VALUES (?, ?, ?, ?, ?)",
            {seq, to_micros(event.time), record, digest, chain});
    for (const auto& key : keys_of(event))
        tx.exec("INSERT INTO log_keys (key, seq) VALUES (?, ?)", {key, seq});
    // indexed_seq moves with the head while no older record waits for its keys (a log
    // written before keys were added on append); index_pending() catches those up.
    tx.exec(
        "UPDATE log_head SET chain = ?, indexed_seq = CASE WHEN indexed_seq = ? THEN ? ELSE indexed_seq END "
        "WHERE id = 1",
        {chain, seq - 1, seq});
    return seq;
}

std::int64_t LegalLog::index_pending(std::int64_t max_records) {
    std::int64_t done = 0;
    db_.transact([&](store::Tx& tx) {
        auto head = tx.query_one("SELECT indexed_seq FROM log_head WHERE id = 1");
        if (!head) return;
        std::int64_t from = head->integer(0);
        auto rows = tx.query("SELECT seq, record FROM log_records WHERE seq > ? ORDER BY seq LIMIT ?",
                             {from, max_records});
        for (const auto& r : rows) {
            try {
                for (const auto& key : keys_of(parse_record(r.text(1)).event))
                    tx.exec("INSERT INTO log_keys (key, seq) VALUES (?, ?) ON CONFLICT DO NOTHING",
                            {key, r.integer(0)});
            } catch (const ParseError&) {
                // An unreadable record has no keys; verify_log() reports it.
            }
            from = r.integer(0);
        }
        done = static_cast<std::int64_t>(rows.size());
        if (done) tx.exec("UPDATE log_head SET indexed_seq = ? WHERE id = 1", {from});
    });
    return done;
}

std::int64_t LegalLog::append(const Event& event) {
    std::int64_t seq = 0;
    db_.transact([&](store::Tx& tx) { seq = append(tx, event); });
    return seq;
}

std::optional<Segment> LegalLog::close_segment(TimePoint now) {
    std::optional<Segment> out;
    db_.transact([&](store::Tx& tx) {
        tx.exec("UPDATE log_head SET seq = seq WHERE id = 1");  // serialize with appenders
        auto head = tx.query_one("SELECT seq, chain FROM log_head WHERE id = 1");
        auto last = tx.query_one(
            "SELECT id, last_seq, head_chain, closed_us FROM log_segments ORDER BY id DESC LIMIT 1");
        std::int64_t last_seq = last ? last->integer(1) : 0;
        if (!head || head->integer(0) == last_seq) return;
        Segment s;
        s.id = last ? last->integer(0) + 1 : 1;
        s.first_seq = last_seq + 1;
        s.last_seq = head->integer(0);
        s.previous_chain = last ? last->text(2) : kGenesisChain;
        s.head_chain = head->text(1);
        if (last) {
            s.opened_us = last->integer(3);
        } else {
            auto first = tx.query_one("SELECT at_us FROM log_records WHERE seq = ?", {s.first_seq});
            s.opened_us = first ? std::min(first->integer(0), to_micros(now)) : to_micros(now);
        }
        s.closed_us = to_micros(now);
        s.manifest =
            format_manifest(SegmentManifest{s.id, s.first_seq, s.last_seq, s.previous_chain, s.head_chain,
                                            from_micros(s.opened_us), from_micros(s.closed_us)});
        tx.exec(
            "INSERT INTO log_segments (id, first_seq, last_seq, previous_chain, head_chain, opened_us, "
            "closed_us, manifest, purged) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)",
            {s.id, s.first_seq, s.last_seq, s.previous_chain, s.head_chain, s.opened_us, s.closed_us,
             s.manifest});
        out = s;
    });
    return out;
}

void LegalLog::record_seal(std::int64_t segment, const std::string& signature, const std::string& timestamp,
                           TimePoint sealed_at) {
    db_.transact([&](store::Tx& tx) {
        tx.exec(
            "UPDATE log_segments SET signature = ?, timestamp = ?, sealed_us = ?, last_error = NULL WHERE id "
            "= ?",
            {store::Blob{signature}, store::Blob{timestamp}, to_micros(sealed_at), segment});
    });
}

void LegalLog::record_seal_failure(std::int64_t segment, const std::string& error) {
    db_.transact([&](store::Tx& tx) {
        tx.exec("UPDATE log_segments SET last_error = ? WHERE id = ?", {error, segment});
    });
}

std::int64_t LegalLog::purge(TimePoint now, int retention_months, int utc_offset_minutes) {
    const std::int64_t cutoff = to_micros(months_before(now, retention_months));
    std::int64_t removed = 0;
    db_.transact([&](store::Tx& tx) {
        // Only a prefix of sealed segments: the chain of what stays must start at a seal.
        auto rows = tx.query("SELECT " + std::string(kSegmentColumns) +
                             " FROM log_segments WHERE purged = 0 ORDER BY id");
        std::vector<Segment> victims;
        for (const auto& r : rows) {
            Segment s = segment_from(r);
            if (!s.sealed() || s.closed_us >= cutoff) break;
            victims.push_back(std::move(s));
        }
        if (victims.empty()) return;
        for (const auto& s : victims) {
            for (const auto& r : tx.query("SELECT seq, record FROM log_records WHERE seq >= ? AND seq <= ?",
                                          {s.first_seq, s.last_seq})) {
                try {
                    for (const auto& key : keys_of(parse_record(r.text(1)).event))
                        tx.exec("DELETE FROM log_keys WHERE key = ? AND seq = ?", {key, r.integer(0)});
                } catch (const ParseError&) {
                }
            }
            removed +=
                tx.exec("DELETE FROM log_records WHERE seq >= ? AND seq <= ?", {s.first_seq, s.last_seq});
            tx.exec("UPDATE log_segments SET purged = 1 WHERE id = ?", {s.id});
        }
        Event e;
        e.kind = EventKind::purge;
        e.time = now;
        e.utc_offset_minutes = utc_offset_minutes;
        e.outcome = "ok";
        e.details = {
            {"segments", std::to_string(victims.front().id) + "-" + std::to_string(victims.back().id)},
            {"first_seq", std::to_string(victims.front().first_seq)},
            {"last_seq", std::to_string(victims.back().last_seq)},
            {"head_chain", victims.back().head_chain},
            {"records", std::to_string(removed)},
            {"retention_months", std::to_string(retention_months)},
            {"cutoff", format_utc(from_micros(cutoff))}};
        append(tx, e);
    });
    return removed;
}

std::vector<StoredRecord> LegalLog::search(const SearchQuery& q) const {
    std::vector<StoredRecord> out;
    auto keep = [&](const store::Row& row) {
        StoredRecord r = record_from(row);
        try {
            if (!matches(q, parse_record(r.record).event)) return;
        } catch (const ParseError&) {
            return;  // unreadable records are verify_log()'s business
        }
        out.push_back(std::move(r));
    };
    db_.read([&](store::Tx& tx) {
        std::int64_t indexed = tx.query_one("SELECT indexed_seq FROM log_head WHERE id = 1")->integer(0);
        const std::string select = "SELECT " + std::string(kRecordColumns) + " FROM log_records ";
        if (!q.message_id.empty() || !q.address.empty()) {
            // One key narrows the indexed part; matches() applies the rest.
            std::string key = !q.message_id.empty() ? "m:" + q.message_id : "a:" + to_lower(q.address);
            // With that key as the only filter, the index answers alone: no record is
            // parsed (a caller that wants the events parses each one once).
            const bool key_only = (q.message_id.empty() || q.address.empty()) && !q.from && !q.to;
            for (const auto& row : tx.query(select + "WHERE seq IN (SELECT seq FROM log_keys WHERE key = ?) "
                                                     "AND seq <= ? ORDER BY seq",
                                            {key, indexed})) {
                if (key_only)
                    out.push_back(record_from(row));
                else
                    keep(row);
            }
        } else {
            std::string sql = select + "WHERE seq <= ?";
            std::vector<Value> params{Value(std::in_place_type<std::int64_t>, indexed)};
            // Records are appended in time order (give or take concurrent commits), so
            // segment times bound the sequence range of a time query.
            if (q.from || q.to) {
                auto [lo, hi] = seq_bounds(tx, q);
                sql += " AND seq >= ? AND seq <= ?";
                params.emplace_back(std::in_place_type<std::int64_t>, lo);
                params.emplace_back(std::in_place_type<std::int64_t>, hi);
            }
            for (const auto& row : tx.query(sql + " ORDER BY seq", params)) keep(row);
        }
        for (const auto& row : tx.query(select + "WHERE seq > ? ORDER BY seq", {indexed})) keep(row);
    });
    if (out.size() > q.limit) out.resize(q.limit);
    return out;
}

std::vector<StoredRecord> LegalLog::records(std::int64_t first_seq, std::int64_t last_seq) const {
    std::vector<StoredRecord> out;
    db_.read([&](store::Tx& tx) {
        for (const auto& r : tx.query("SELECT " + std::string(kRecordColumns) +
                                          " FROM log_records WHERE seq >= ? AND seq <= ? ORDER BY seq",
                                      {first_seq, last_seq}))
            out.push_back(record_from(r));
    });
    return out;
}

std::vector<Segment> LegalLog::segments() const {
    std::vector<Segment> out;
    db_.read([&](store::Tx& tx) {
        for (const auto& r :
             tx.query("SELECT " + std::string(kSegmentColumns) + " FROM log_segments ORDER BY id"))
            out.push_back(segment_from(r));
    });
    return out;
}

std::vector<Segment> LegalLog::unsealed_segments() const {
    std::vector<Segment> out;
    db_.read([&](store::Tx& tx) {
        for (const auto& r :
             tx.query("SELECT " + std::string(kSegmentColumns) +
                      " FROM log_segments WHERE signature IS NULL OR timestamp IS NULL ORDER BY id"))
            out.push_back(segment_from(r));
    });
    return out;
}

std::optional<Segment> LegalLog::last_segment() const {
    std::optional<Segment> out;
    db_.read([&](store::Tx& tx) {
        if (auto r = tx.query_one("SELECT " + std::string(kSegmentColumns) +
                                  " FROM log_segments ORDER BY id DESC LIMIT 1"))
            out = segment_from(*r);
    });
    return out;
}

std::int64_t LegalLog::head_seq() const {
    std::int64_t out = 0;
    db_.read([&](store::Tx& tx) {
        if (auto r = tx.query_one("SELECT seq FROM log_head WHERE id = 1")) out = r->integer(0);
    });
    return out;
}

}  // namespace pecd::log
