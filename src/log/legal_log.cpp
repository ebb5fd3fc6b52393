// legal_log.cpp - legal-log records and segments in the database (see legal_log.hpp)
#include "log/legal_log.hpp"

#include <chrono>
#include <set>

#include "core/error.hpp"
#include "core/strings.hpp"

namespace pecd::log {
namespace {

using store::Value;

const char* const kSegmentColumns =
    "id, first_seq, last_seq, previous_chain, head_chain, opened_us, closed_us, manifest, signature, "
    "timestamp, sealed_us, purged, last_error";
const char* const kRecordColumns = "seq, record, digest, chain, kind, pec_msgid, client_msgid, at_us";

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
    return StoredRecord{r.integer(0), r.text(1), r.text(2), r.text(3),
                        r.text(4),    r.text(5), r.text(6), r.integer(7)};
}

// Every address of the event, lower-cased, once (the search index).
std::set<std::string> addresses_of(const Event& e) {
    std::set<std::string> out;
    if (!e.sender.empty()) out.insert(to_lower(e.sender));
    for (const auto& r : e.recipients)
        if (!r.address.empty()) out.insert(to_lower(r.address));
    return out;
}

}  // namespace

std::int64_t to_micros(TimePoint t) {
    return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

TimePoint from_micros(std::int64_t us) {
    return TimePoint(std::chrono::duration_cast<TimePoint::duration>(std::chrono::microseconds(us)));
}

TimePoint months_before(TimePoint now, int months) {
    using namespace std::chrono;
    auto day = floor<days>(now);
    year_month_day ymd{day};
    year_month ym = year_month{ymd.year(), ymd.month()} - std::chrono::months{months};
    auto last = year_month_day_last{ym.year(), month_day_last{ym.month()}}.day();
    year_month_day target{ym.year(), ym.month(), std::min(ymd.day(), last)};
    return TimePoint(sys_days{target}.time_since_epoch() + (now - day));
}

std::vector<store::Migration> LegalLog::migrations() {
    return {{1,
             "CREATE TABLE log_records (seq BIGINT PRIMARY KEY, at_us BIGINT NOT NULL, kind TEXT NOT NULL, "
             "pec_msgid TEXT NOT NULL, client_msgid TEXT NOT NULL, record TEXT NOT NULL, "
             "digest TEXT NOT NULL, chain TEXT NOT NULL);"
             "CREATE INDEX log_records_pec ON log_records (pec_msgid);"
             "CREATE INDEX log_records_client ON log_records (client_msgid);"
             "CREATE INDEX log_records_at ON log_records (at_us);"
             "CREATE TABLE log_addresses (address TEXT NOT NULL, seq BIGINT NOT NULL);"
             "CREATE INDEX log_addresses_address ON log_addresses (address, seq);"
             "CREATE INDEX log_addresses_seq ON log_addresses (seq);"
             "CREATE TABLE log_head (id INTEGER PRIMARY KEY, seq BIGINT NOT NULL, chain TEXT NOT NULL);"
             "INSERT INTO log_head (id, seq, chain) VALUES (1, 0, '" +
                 kGenesisChain +
                 "');"
                 "CREATE TABLE log_segments (id BIGINT PRIMARY KEY, first_seq BIGINT NOT NULL, "
                 "last_seq BIGINT NOT NULL, previous_chain TEXT NOT NULL, head_chain TEXT NOT NULL, "
                 "opened_us BIGINT NOT NULL, closed_us BIGINT NOT NULL, manifest TEXT NOT NULL, "
                 "signature BLOB, timestamp BLOB, sealed_us BIGINT, purged INTEGER NOT NULL DEFAULT 0, "
                 "last_error TEXT)"}};
}

LegalLog::LegalLog(store::Database& db) : db_(db) {
    db_.migrate("log", migrations());
}

std::int64_t LegalLog::append(store::Tx& tx, const Event& event) {
    // The UPDATE comes first: it takes the head row's lock before the head is read.
    tx.exec("UPDATE log_head SET seq = seq + 1 WHERE id = 1");
    auto head = tx.query_one("SELECT seq, chain FROM log_head WHERE id = 1");
    if (!head) throw Error("legal log: the log_head row is missing");
    std::int64_t seq = head->integer(0);
    std::string record = canonical_record(event, seq);
    std::string digest = record_digest(record);
    std::string chain = chain_link(head->text(1), digest);
    tx.exec(
        "INSERT INTO log_records (seq, at_us, kind, pec_msgid, client_msgid, record, digest, chain) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        {seq, to_micros(event.time), std::string(to_string(event.kind)), event.pec_msgid, event.client_msgid,
         record, digest, chain});
    for (const auto& address : addresses_of(event))
        tx.exec("INSERT INTO log_addresses (address, seq) VALUES (?, ?)", {address, seq});
    tx.exec("UPDATE log_head SET chain = ? WHERE id = 1", {chain});
    return seq;
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
            tx.exec("DELETE FROM log_addresses WHERE seq >= ? AND seq <= ?", {s.first_seq, s.last_seq});
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
    std::string sql = "SELECT " + std::string(kRecordColumns) + " FROM log_records WHERE 1 = 1";
    std::vector<Value> params;
    if (!q.message_id.empty()) {
        sql += " AND (pec_msgid = ? OR client_msgid = ?)";
        params.emplace_back(std::in_place_type<std::string>, q.message_id);
        params.emplace_back(std::in_place_type<std::string>, q.message_id);
    }
    if (!q.address.empty()) {
        sql += " AND seq IN (SELECT seq FROM log_addresses WHERE address = ?)";
        params.emplace_back(std::in_place_type<std::string>, to_lower(q.address));
    }
    if (q.from) {
        sql += " AND at_us >= ?";
        params.emplace_back(std::in_place_type<std::int64_t>, to_micros(*q.from));
    }
    if (q.to) {
        sql += " AND at_us < ?";
        params.emplace_back(std::in_place_type<std::int64_t>, to_micros(*q.to));
    }
    sql += " ORDER BY seq LIMIT " + std::to_string(q.limit);
    std::vector<StoredRecord> out;
    db_.read([&](store::Tx& tx) {
        for (const auto& r : tx.query(sql, params)) out.push_back(record_from(r));
    });
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

std::int64_t LegalLog::head_seq() const {
    std::int64_t out = 0;
    db_.read([&](store::Tx& tx) {
        if (auto r = tx.query_one("SELECT seq FROM log_head WHERE id = 1")) out = r->integer(0);
    });
    return out;
}

}  // namespace pecd::log
