// database.hpp - the relational store behind the queue, mailboxes, PEC state and logs
//
// One Database per process; modules (queue, pec tracking, legal log, API) own their
// tables and declare them as numbered migrations. Work happens in transactions: the
// function passed to transact() runs with a Tx; when it returns the transaction is
// committed durably (SQLite: WAL + synchronous=FULL; PostgreSQL: synchronous commit),
// when it throws everything is rolled back and the exception propagates. This is how a
// state change and the legal-log record describing it land in the same durable step.
//
// SQL uses '?' placeholders and the portable subset of SQLite and PostgreSQL; a backend
// rewrites placeholders as it needs. Types: INTEGER/BIGINT, TEXT, BLOB (PostgreSQL maps
// BLOB to BYTEA), REAL.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace pecd::store {

struct Blob {
    std::string bytes;
};
using Value = std::variant<std::nullptr_t, std::int64_t, double, std::string, Blob>;

class Row {
public:
    explicit Row(std::vector<Value> v) : values_(std::move(v)) {}
    std::size_t size() const { return values_.size(); }
    bool is_null(std::size_t i) const { return std::holds_alternative<std::nullptr_t>(values_.at(i)); }
    std::int64_t integer(std::size_t i) const;  // throws Error on type mismatch
    std::string text(std::size_t i) const;      // TEXT or BLOB bytes; "" for NULL
    double real(std::size_t i) const;
    const Value& at(std::size_t i) const { return values_.at(i); }

private:
    std::vector<Value> values_;
};

class Tx {
public:
    virtual ~Tx() = default;
    // Executes a statement; returns the number of rows changed.
    virtual std::int64_t exec(std::string_view sql, const std::vector<Value>& params = {}) = 0;
    virtual std::vector<Row> query(std::string_view sql, const std::vector<Value>& params = {}) = 0;
    // INSERT ... returning the new row's integer key (SQLite rowid / PostgreSQL RETURNING id).
    virtual std::int64_t insert(std::string_view sql, const std::vector<Value>& params,
                                std::string_view id_column = "id") = 0;
    std::optional<Row> query_one(std::string_view sql, const std::vector<Value>& params = {}) {
        auto rows = query(sql, params);
        if (rows.empty()) return std::nullopt;
        return std::move(rows.front());
    }
};

struct Migration {
    int version;      // per module, starting at 1, never reused
    std::string sql;  // one or more statements separated by ';'
};

class Database {
public:
    virtual ~Database() = default;
    // Applies the module's migrations not yet applied, in order, each in a transaction.
    virtual void migrate(std::string_view module, const std::vector<Migration>& migrations) = 0;
    // Runs fn in a write transaction (retried on lock conflicts); durable on return.
    virtual void transact(const std::function<void(Tx&)>& fn) = 0;
    // Runs fn in a read-only snapshot.
    virtual void read(const std::function<void(Tx&)>& fn) = 0;
    // A small write whose loss in a crash of the database harms nothing (a work lease:
    // fencing lives elsewhere): on PostgreSQL it neither waits for the WAL flush nor takes
    // turns with the other writers. It must touch one row only, so it cannot deadlock.
    virtual void transact_volatile(const std::function<void(Tx&)>& fn) { transact(fn); }
    virtual std::string backend() const = 0;  // "sqlite" or "postgresql"
};

// Opens (creating if needed) an SQLite database file; throws Error naming the path.
std::unique_ptr<Database> open_sqlite(const std::string& path);

// Connects to PostgreSQL (postgres_database.cpp). conninfo is a libpq connection string
// ("host=... port=... dbname=... user=...") or URI; password, when not empty, overrides
// any in conninfo. At most pool_size connections are open at once. Throws Error naming
// the server (host, port, database, user - never the password) and libpq's reason;
// TemporaryError when the server is unreachable or refuses connections for now.
std::unique_ptr<Database> open_postgres(const std::string& conninfo, const std::string& password = {},
                                        unsigned pool_size = 8);

// "user@host:port/dbname" of a conninfo, for messages: the password never appears.
std::string describe_conninfo(const std::string& conninfo);

// Which database a process uses, as configured ([store] in the configuration file).
struct DatabaseSettings {
    std::string backend = "sqlite";  // "sqlite" or "postgresql"
    std::string path;                // sqlite: the database file
    std::string conninfo;            // postgresql: libpq connection string or URI
    std::string password_file;       // postgresql: file holding the password (optional)
    unsigned pool_size = 8;          // postgresql: connections per process
};

// Opens the configured backend (database_factory.cpp); throws Error for an unknown one.
std::unique_ptr<Database> open_database(const DatabaseSettings& settings);

}  // namespace pecd::store
