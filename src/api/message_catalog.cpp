// message_catalog.cpp - the api_catalog table and its queries (see message_catalog.hpp)
#include "api/message_catalog.hpp"

#include "core/calendar.hpp"
#include "core/strings.hpp"

namespace pecd::api {
namespace {

using store::Row;
using store::Tx;
using store::Value;

const std::vector<store::Migration> kMigrations = {
    {1,
     "CREATE TABLE api_catalog ("
     " message_id BIGINT PRIMARY KEY NOT NULL, mailbox_id BIGINT NOT NULL,"
     " msgid TEXT NOT NULL, subject TEXT NOT NULL, from_header TEXT NOT NULL, date_header TEXT NOT NULL,"
     " pec_type TEXT NOT NULL, pec_ref TEXT NOT NULL, status TEXT NOT NULL);"
     "CREATE INDEX api_catalog_mailbox ON api_catalog (mailbox_id, message_id);"
     "CREATE INDEX api_catalog_ref ON api_catalog (mailbox_id, pec_ref)"},
};

constexpr const char* kSelect =
    "SELECT m.id, m.received_at, m.size, m.mail_from, c.msgid, c.subject, c.from_header, c.date_header,"
    " c.pec_type, c.pec_ref, c.status FROM mailbox_messages m JOIN api_catalog c ON c.message_id = m.id";

std::int64_t unix_seconds(TimePoint t) {
    return stored_count<std::chrono::seconds>(t);
}

CatalogEntry entry_from(const Row& r) {
    CatalogEntry e;
    e.id = r.integer(0);
    e.received_at = stored_time<std::chrono::seconds>(r.integer(1));
    e.size = static_cast<std::uint64_t>(r.integer(2));
    e.envelope_from = r.text(3);
    e.headers = {r.text(4), r.text(5), r.text(6), r.text(7), r.text(8), r.text(9)};
    e.status = r.text(10);
    return e;
}

// LIKE pattern for a case-insensitive substring match ('\' escapes the wildcards).
std::string contains_pattern(const std::string& s) {
    std::string p = "%";
    for (char c : to_lower(s)) {
        if (c == '%' || c == '_' || c == '\\') p += '\\';
        p += c;
    }
    return p + "%";
}

}  // namespace

MessageCatalog::MessageCatalog(store::Database& db, store::BlobStore& blobs, const PecView& pec)
    : db_(db), blobs_(blobs), pec_(pec) {
    db_.migrate("api_catalog", kMigrations);
}

void MessageCatalog::ensure_indexed(std::int64_t mailbox_id) {
    std::vector<Row> missing;
    db_.read([&](Tx& tx) {
        missing = tx.query(
            "SELECT m.id, m.blob_key FROM mailbox_messages m LEFT JOIN api_catalog c ON c.message_id = m.id"
            " WHERE m.mailbox_id = ? AND c.message_id IS NULL ORDER BY m.id",
            {mailbox_id});
    });
    if (missing.empty()) return;
    std::vector<std::pair<std::int64_t, MessageHeaders>> parsed;
    for (auto& r : missing) parsed.emplace_back(r.integer(0), summarize(blobs_.get(r.text(1))));
    db_.transact([&](Tx& tx) {
        for (auto& [id, h] : parsed) {
            if (tx.query_one("SELECT 1 FROM api_catalog WHERE message_id = ?", {id})) continue;
            tx.exec(
                "INSERT INTO api_catalog (message_id, mailbox_id, msgid, subject, from_header, date_header,"
                " pec_type, pec_ref, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                {id, mailbox_id, h.message_id, h.subject, h.from, h.date, h.pec_type, h.pec_ref,
                 pec_.status(h)});
        }
    });
}

CatalogPage MessageCatalog::search(std::int64_t mailbox_id, const CatalogQuery& q) {
    ensure_indexed(mailbox_id);
    std::string where = " WHERE m.mailbox_id = ?";
    std::vector<Value> params{mailbox_id};
    if (q.from) {
        where += " AND m.received_at >= ?";
        params.emplace_back(unix_seconds(*q.from));
    }
    if (q.to) {
        where += " AND m.received_at < ?";
        params.emplace_back(unix_seconds(*q.to));
    }
    if (!q.sender.empty()) {
        where += " AND (LOWER(c.from_header) LIKE ? ESCAPE '\\' OR LOWER(m.mail_from) LIKE ? ESCAPE '\\')";
        params.emplace_back(contains_pattern(q.sender));
        params.emplace_back(contains_pattern(q.sender));
    }
    if (!q.subject.empty()) {
        where += " AND LOWER(c.subject) LIKE ? ESCAPE '\\'";
        params.emplace_back(contains_pattern(q.subject));
    }
    if (!q.type.empty()) {
        where += " AND c.pec_type = ?";
        params.emplace_back(q.type);
    }
    if (!q.status.empty()) {
        where += " AND c.status = ?";
        params.emplace_back(q.status);
    }
    CatalogPage page;
    db_.read([&](Tx& tx) {
        auto count = tx.query_one(
            "SELECT COUNT(*) FROM mailbox_messages m JOIN api_catalog c ON c.message_id = m.id" + where,
            params);
        page.total = count ? count->integer(0) : 0;
        auto p = params;
        p.emplace_back(static_cast<std::int64_t>(q.limit));
        p.emplace_back(static_cast<std::int64_t>(q.offset));
        for (auto& r : tx.query(std::string(kSelect) + where + " ORDER BY m.id LIMIT ? OFFSET ?", p))
            page.items.push_back(entry_from(r));
    });
    return page;
}

std::optional<CatalogEntry> MessageCatalog::get(std::int64_t mailbox_id, std::int64_t message_id) {
    std::optional<CatalogEntry> out;
    std::optional<Row> bare;
    db_.read([&](Tx& tx) {
        if (auto r = tx.query_one(std::string(kSelect) + " WHERE m.id = ? AND m.mailbox_id = ?",
                                  {message_id, mailbox_id}))
            out = entry_from(*r);
        else
            bare = tx.query_one(
                "SELECT id, received_at, size, mail_from, blob_key FROM mailbox_messages WHERE id = ? AND "
                "mailbox_id = ?",
                {message_id, mailbox_id});
    });
    if (out || !bare) return out;
    CatalogEntry e;
    e.id = bare->integer(0);
    e.received_at = stored_time<std::chrono::seconds>(bare->integer(1));
    e.size = static_cast<std::uint64_t>(bare->integer(2));
    e.envelope_from = bare->text(3);
    e.headers = summarize(blobs_.get(bare->text(4)));
    e.status = pec_.status(e.headers);
    return e;
}

std::vector<CatalogEntry> MessageCatalog::linked(std::int64_t mailbox_id, const CatalogEntry& entry) {
    ensure_indexed(mailbox_id);
    std::vector<CatalogEntry> out;
    db_.read([&](Tx& tx) {
        if (!entry.headers.message_id.empty())
            for (auto& r :
                 tx.query(std::string(kSelect) +
                              " WHERE c.mailbox_id = ? AND c.pec_ref = ? AND m.id <> ? ORDER BY m.id",
                          {mailbox_id, entry.headers.message_id, entry.id}))
                out.push_back(entry_from(r));
        if (!entry.headers.pec_ref.empty())
            for (auto& r : tx.query(std::string(kSelect) +
                                        " WHERE c.mailbox_id = ? AND c.msgid = ? AND m.id <> ? ORDER BY m.id",
                                    {mailbox_id, entry.headers.pec_ref, entry.id}))
                out.push_back(entry_from(r));
    });
    return out;
}

std::optional<std::string> MessageCatalog::raw(std::int64_t mailbox_id, std::int64_t message_id) {
    std::string key;
    db_.read([&](Tx& tx) {
        if (auto r = tx.query_one("SELECT blob_key FROM mailbox_messages WHERE id = ? AND mailbox_id = ?",
                                  {message_id, mailbox_id}))
            key = r->text(0);
    });
    if (key.empty()) return std::nullopt;
    return blobs_.get(key);
}

}  // namespace pecd::api
