// postgres_database.cpp - the shared Database backend on PostgreSQL (libpq)
//
// Contract (database.hpp): transact() runs fn in a SERIALIZABLE transaction committed
// with synchronous_commit = on, so it is durable on the server (and its synchronous
// standbys) on return; a throw rolls everything back. Serialization failures (40001)
// and deadlocks (40P01) roll back and run fn again from the start, like SQLite's busy
// retry: the modules were written against SQLite's one-writer-at-a-time semantics, and
// SERIALIZABLE is the level that keeps their read-check-write steps correct without
// auditing each one. Writing transactions also take turns cluster-wide (a session
// advisory lock taken before BEGIN, see writer_lock_key): several nodes' batches would
// otherwise deadlock on rows they touch in different orders. read() runs in a
// REPEATABLE READ READ ONLY snapshot, concurrently with everything. A transact()
// or read() called inside a transact() on the same thread joins it.
//
// SQL is the portable subset: '?' placeholders become $n (postgres_sql.hpp); migrations
// have their SQLite type names translated (INTEGER -> BIGINT, BLOB -> BYTEA, INTEGER
// PRIMARY KEY -> identity column). Values travel in binary where the type is known:
// BIGINT/INTEGER, DOUBLE PRECISION, BYTEA, booleans; result columns come back as int64
// (integers, booleans, integral NUMERIC such as SUM()), double, std::string (text types)
// or Blob (BYTEA). One difference from SQLite: after an error inside a transaction,
// PostgreSQL refuses further statements in it, so fn must not catch a failed statement
// and go on.
//
// Migrations take a cluster-wide advisory lock (pg_advisory_xact_lock) in a READ
// COMMITTED transaction, so two nodes starting together apply each one exactly once: the
// second waits, then sees the first's row in schema_migrations.
//
// Connections: a small pool (pool_size, default 8), not one per thread. pecd's threads
// are many (I/O threads, fsync workers, the group committer, delivery workers) and
// short transactions; a pool bounds the server connections each node uses (several nodes
// share PostgreSQL's max_connections) and keeps each connection's prepared statements
// warm regardless of which thread runs next. A connection found broken is dropped and
// replaced on the next checkout.
//
// Message bodies are not stored here but stay files in the blob store (blob_store.hpp),
// on storage shared by the nodes: delivery to many mailboxes hard-links one spooled file
// instead of writing the bytes once per mailbox, and large bodies neither travel
// through the connection nor swell the WAL, replicas and backups of the database.
//
// Errors name the server as user@host:port/dbname (never the password) and the SQLSTATE.
// Connection failures, resource exhaustion (class 53), server shutdown (57P) and system
// errors (58) are TemporaryError; constraint and syntax errors are Error.
#include <arpa/inet.h>
#include <libpq-fe.h>

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <limits>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <unordered_map>

#include "core/error.hpp"
#include "store/database.hpp"
#include "store/postgres_sql.hpp"

namespace pecd::store {
namespace {

// Type OIDs from PostgreSQL's pg_type.dat (stable across versions).
constexpr Oid kBool = 16, kBytea = 17, kChar = 18, kName = 19, kInt8 = 20, kInt2 = 21, kInt4 = 23, kText = 25,
              kOid = 26, kFloat4 = 700, kFloat8 = 701, kUnknown = 705, kBpchar = 1042, kVarchar = 1043,
              kNumeric = 1700;

constexpr int transaction_retries = 30;
constexpr std::size_t statement_cache_limit = 256;
constexpr auto pool_wait_limit = std::chrono::seconds(30);
// pg_advisory_xact_lock key serialising migrations across nodes ("pecd" in ASCII).
constexpr std::int64_t migration_lock_key = 0x70656364;
// Held (session level, taken before BEGIN so the snapshot comes after it) around every
// writing transaction. Group-committed batches of several nodes touch their rows in
// whatever order their work came in, so without it two nodes deadlock and PostgreSQL
// only notices after deadlock_timeout (1 s by default): the whole cluster stalls for a
// second many times a minute. One writer at a time is also what the modules assume
// (SQLite's semantics), and each writer commits a whole batch.
constexpr std::int64_t writer_lock_key = 0x70656365;

// fn must run again from the start (serialization failure, deadlock, stale plan).
class RetryError : public TemporaryError {
public:
    using TemporaryError::TemporaryError;
};

bool is_text_type(Oid t) {
    return t == kText || t == kVarchar || t == kBpchar || t == kName || t == kChar || t == kUnknown;
}

std::string sqlstate_of(const PGresult* r) {
    const char* s = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
    return s ? s : "";
}

bool is_retryable(const std::string& state, const std::string& message) {
    if (state == "40001" || state == "40P01") return true;
    // A prepared statement whose result columns changed under it (ALTER TABLE on another
    // connection): the cache is cleared and the transaction replayed.
    return state == "0A000" && message.find("cached plan") != std::string::npos;
}

bool is_temporary(const std::string& state) {
    return state.empty() || state.starts_with("08") || state.starts_with("53") || state.starts_with("57P") ||
           state.starts_with("58") || state == "55P03";
}

struct ResultDeleter {
    void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

// libpq's parsed conninfo, freed at scope end.
struct ConninfoOptions {
    PQconninfoOption* opts = nullptr;
    explicit ConninfoOptions(const std::string& conninfo) {
        char* err = nullptr;
        opts = PQconninfoParse(conninfo.c_str(), &err);
        // libpq's parse error quotes the offending text, which may hold the password.
        if (err) PQfreemem(err);
    }
    ~ConninfoOptions() {
        if (opts) PQconninfoFree(opts);
    }
    std::string get(const char* key) const {
        for (auto* o = opts; o && o->keyword; ++o)
            if (std::strcmp(o->keyword, key) == 0 && o->val) return o->val;
        return {};
    }
};

std::uint64_t read_be(const char* p, int n) {
    std::uint64_t v = 0;
    for (int i = 0; i < n; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
    return v;
}

void append_be(std::string& out, std::uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}

// NUMERIC in binary: ndigits, weight, sign, dscale (int16 each), then base-10000 digits.
Value decode_numeric(const char* p, int len) {
    if (len < 8) throw Error("postgresql: short NUMERIC value");
    auto ndigits = static_cast<std::int16_t>(read_be(p, 2));
    auto weight = static_cast<std::int16_t>(read_be(p + 2, 2));
    auto sign = static_cast<std::uint16_t>(read_be(p + 4, 2));
    auto dscale = static_cast<std::int16_t>(read_be(p + 6, 2));
    if (len < 8 + 2 * ndigits) throw Error("postgresql: short NUMERIC value");
    if (sign == 0xC000) return std::numeric_limits<double>::quiet_NaN();
    if (sign == 0xD000) return std::numeric_limits<double>::infinity();
    if (sign == 0xF000) return -std::numeric_limits<double>::infinity();
    double d = 0;
    __int128 whole = 0;
    bool fits = dscale == 0;
    for (int i = 0; i < ndigits; ++i) {
        auto digit = static_cast<std::int64_t>(read_be(p + 8 + 2 * i, 2));
        int power = weight - i;
        d += static_cast<double>(digit) * std::pow(10000.0, power);
        if (power < 0) continue;
        __int128 term = digit;
        for (int k = 0; k < power && fits; ++k) {
            term *= 10000;
            if (term > static_cast<__int128>(INT64_MAX)) fits = false;
        }
        whole += term;
        if (whole > static_cast<__int128>(INT64_MAX)) fits = false;
    }
    bool negative = sign == 0x4000;
    if (fits) return static_cast<std::int64_t>(negative ? -whole : whole);
    return negative ? -d : d;
}

Value decode(Oid type, const char* p, int len) {
    switch (type) {
        case kInt8:
            return static_cast<std::int64_t>(read_be(p, 8));
        case kInt4:
            return std::int64_t{static_cast<std::int32_t>(read_be(p, 4))};
        case kInt2:
            return std::int64_t{static_cast<std::int16_t>(read_be(p, 2))};
        case kOid:
            return static_cast<std::int64_t>(read_be(p, 4));
        case kBool:
            return std::int64_t{p[0] != 0};
        case kFloat8: {
            std::uint64_t bits = read_be(p, 8);
            double d;
            std::memcpy(&d, &bits, sizeof d);
            return d;
        }
        case kFloat4: {
            auto bits = static_cast<std::uint32_t>(read_be(p, 4));
            float f;
            std::memcpy(&f, &bits, sizeof f);
            return static_cast<double>(f);
        }
        case kNumeric:
            return decode_numeric(p, len);
        case kBytea:
            return Blob{std::string(p, static_cast<std::size_t>(len))};
        default:
            if (is_text_type(type)) return std::string(p, static_cast<std::size_t>(len));
            throw Error("postgresql: result column of type oid " + std::to_string(type) +
                        " has no Value mapping (cast it to BIGINT, TEXT, BYTEA or DOUBLE PRECISION)");
    }
}

// One parameter, encoded for the type the server inferred for its placeholder.
struct Encoded {
    std::string bytes;
    bool null = false;
    bool binary = false;
};

Encoded encode(const Value& v, Oid type, std::size_t index) {
    Encoded e;
    auto where = [&] { return "parameter " + std::to_string(index + 1); };
    std::visit(
        [&](const auto& x) {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, std::nullptr_t>) {
                e.null = true;
            } else if constexpr (std::is_same_v<T, std::int64_t>) {
                e.binary = true;
                if (type == kInt8) {
                    append_be(e.bytes, static_cast<std::uint64_t>(x), 8);
                } else if (type == kInt4 || type == kOid) {
                    if (x < INT32_MIN || x > (type == kOid ? INT64_C(0xffffffff) : INT32_MAX))
                        throw Error("postgresql: " + where() + ": " + std::to_string(x) + " out of range");
                    append_be(e.bytes, static_cast<std::uint64_t>(x), 4);
                } else if (type == kInt2) {
                    if (x < INT16_MIN || x > INT16_MAX)
                        throw Error("postgresql: " + where() + ": " + std::to_string(x) + " out of range");
                    append_be(e.bytes, static_cast<std::uint64_t>(x), 2);
                } else if (type == kBool) {
                    e.bytes = std::string(1, x != 0 ? '\1' : '\0');
                } else {  // text, numeric, float, ...: the server parses the digits
                    e.binary = false;
                    e.bytes = std::to_string(x);
                }
            } else if constexpr (std::is_same_v<T, double>) {
                if (type == kFloat8) {
                    std::uint64_t bits;
                    std::memcpy(&bits, &x, sizeof bits);
                    e.binary = true;
                    append_be(e.bytes, bits, 8);
                } else {
                    char buf[40];
                    std::snprintf(buf, sizeof buf, "%.17g", x);
                    e.bytes = buf;
                }
            } else if constexpr (std::is_same_v<T, std::string>) {
                // Binary text is the raw bytes, checked by the server (no NUL, valid UTF-8)
                // instead of being cut at the first NUL as a C string would be.
                e.bytes = x;
                e.binary = is_text_type(type) || type == kBytea;
                if (!e.binary && x.find('\0') != std::string::npos)
                    throw Error("postgresql: " + where() + ": text with a NUL byte");
            } else {
                if (!is_text_type(type) && type != kBytea)
                    throw Error("postgresql: " + where() + ": a BLOB where type oid " + std::to_string(type) +
                                " is expected");
                e.bytes = x.bytes;
                e.binary = true;
            }
        },
        v);
    return e;
}

// One server connection with its prepared statements.
class Connection {
public:
    Connection(const std::string& conninfo, const std::string& password, const std::string& server)
        : server_(server) {
        // conninfo comes last so that what the operator wrote wins over these defaults;
        // the separate password (from a password file) wins over everything.
        std::vector<const char*> keys{"client_encoding", "connect_timeout", "fallback_application_name",
                                      "dbname"};
        std::vector<const char*> values{"UTF8", "10", "pecd", conninfo.c_str()};
        if (!password.empty()) {
            keys.push_back("password");
            values.push_back(password.c_str());
        }
        keys.push_back(nullptr);
        values.push_back(nullptr);
        conn_ = PQconnectdbParams(keys.data(), values.data(), 1);
        if (!conn_) throw TemporaryError("postgresql " + server_ + ": out of memory connecting");
        if (PQstatus(conn_) != CONNECTION_OK) {
            std::string why = trimmed(PQerrorMessage(conn_));
            PQfinish(conn_);
            conn_ = nullptr;
            throw TemporaryError("postgresql " + server_ + ": cannot connect: " + why);
        }
        // Durability of every commit is the contract; a server default of off must not
        // weaken it. Notices (e.g. "relation already exists, skipping") are not errors.
        simple("SET synchronous_commit = on; SET client_min_messages = warning");
    }
    ~Connection() {
        if (conn_) PQfinish(conn_);
    }
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    bool healthy() const { return conn_ && PQstatus(conn_) == CONNECTION_OK; }
    // Closes the connection (the pool then drops it): the server releases its locks.
    void discard() {
        if (conn_) PQfinish(conn_);
        conn_ = nullptr;
    }
    bool in_transaction() const { return conn_ && PQtransactionStatus(conn_) != PQTRANS_IDLE; }

    // Statements without parameters, possibly several separated by ';' (migrations).
    void simple(const std::string& sql) {
        Result r(PQexec(conn_, sql.c_str()));
        auto st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) fail(r.get(), sql);
    }

    // One statement with parameters; appends rows to out when given; returns rows changed.
    std::int64_t run(std::string_view sql, const std::vector<Value>& params, std::vector<Row>* out) {
        const Prepared& p = prepare(sql);
        if (p.types.size() != params.size())
            throw Error("postgresql: \"" + std::string(sql) + "\" takes " + std::to_string(p.types.size()) +
                        " parameters, " + std::to_string(params.size()) + " given");
        std::vector<Encoded> enc;
        enc.reserve(params.size());
        for (std::size_t i = 0; i < params.size(); ++i) enc.push_back(encode(params[i], p.types[i], i));
        std::vector<const char*> values(params.size());
        std::vector<int> lengths(params.size()), formats(params.size());
        for (std::size_t i = 0; i < enc.size(); ++i) {
            values[i] = enc[i].null ? nullptr : enc[i].bytes.c_str();
            lengths[i] = static_cast<int>(enc[i].bytes.size());
            formats[i] = enc[i].binary ? 1 : 0;
        }
        Result r(PQexecPrepared(conn_, p.name.c_str(), static_cast<int>(params.size()), values.data(),
                                lengths.data(), formats.data(), 1));
        auto st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) fail(r.get(), std::string(sql));
        if (out && st == PGRES_TUPLES_OK) read_rows(r.get(), *out);
        const char* changed = PQcmdTuples(r.get());
        return changed && *changed ? std::stoll(changed) : 0;
    }

    void forget_statements() {
        cache_.clear();
        if (healthy() && !in_transaction())
            simple("DEALLOCATE ALL");
        else
            stale_ = true;
    }

    [[noreturn]] void fail(const PGresult* r, const std::string& sql) const {
        std::string state = sqlstate_of(r);
        const char* primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
        std::string why = primary ? primary : trimmed(PQerrorMessage(conn_));
        std::string msg = "postgresql " + server_ + ": " + why + (state.empty() ? "" : " [" + state + "]") +
                          " in \"" + sql.substr(0, 200) + "\"";
        if (is_retryable(state, why)) throw RetryError(msg);
        if (is_temporary(state) || !healthy()) throw TemporaryError(msg);
        throw Error(msg);
    }

private:
    struct Prepared {
        std::string name;
        std::vector<Oid> types;  // as inferred by the server for each $n
    };

    static std::string trimmed(const char* s) {
        std::string t = s ? s : "";
        while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
        return t;
    }

    const Prepared& prepare(std::string_view sql) {
        std::string key(sql);
        if (auto it = cache_.find(key); it != cache_.end()) return it->second;
        if (cache_.size() >= statement_cache_limit || stale_) {
            // Callers use a bounded set of statements; an overflow means generated SQL,
            // for which starting afresh is as good as any eviction order.
            cache_.clear();
            simple("DEALLOCATE ALL");
            stale_ = false;
        }
        std::string name = "pecd_" + std::to_string(++statements_);
        std::string text = pg::to_dollar_placeholders(sql);
        // Types left to the server: it infers each $n from its context (column, operator).
        Result r(PQprepare(conn_, name.c_str(), text.c_str(), 0, nullptr));
        if (!r || PQresultStatus(r.get()) != PGRES_COMMAND_OK) fail(r.get(), key);
        Result d(PQdescribePrepared(conn_, name.c_str()));
        if (!d || PQresultStatus(d.get()) != PGRES_COMMAND_OK) fail(d.get(), key);
        Prepared p{name, {}};
        for (int i = 0; i < PQnparams(d.get()); ++i) p.types.push_back(PQparamtype(d.get(), i));
        return cache_.emplace(std::move(key), std::move(p)).first->second;
    }

    static void read_rows(const PGresult* r, std::vector<Row>& out) {
        int rows = PQntuples(r), cols = PQnfields(r);
        out.reserve(out.size() + static_cast<std::size_t>(rows));
        for (int i = 0; i < rows; ++i) {
            std::vector<Value> values;
            values.reserve(static_cast<std::size_t>(cols));
            for (int c = 0; c < cols; ++c) {
                if (PQgetisnull(r, i, c))
                    values.emplace_back(nullptr);
                else
                    values.push_back(decode(PQftype(r, c), PQgetvalue(r, i, c), PQgetlength(r, i, c)));
            }
            out.emplace_back(std::move(values));
        }
    }

    std::string server_;
    PGconn* conn_ = nullptr;
    std::unordered_map<std::string, Prepared> cache_;
    std::uint64_t statements_ = 0;
    bool stale_ = false;
};

class PgTx final : public Tx {
public:
    explicit PgTx(Connection& c) : c_(c) {}
    std::int64_t exec(std::string_view sql, const std::vector<Value>& params) override {
        return c_.run(sql, params, nullptr);
    }
    std::vector<Row> query(std::string_view sql, const std::vector<Value>& params) override {
        std::vector<Row> rows;
        c_.run(sql, params, &rows);
        return rows;
    }
    std::int64_t insert(std::string_view sql, const std::vector<Value>& params,
                        std::string_view id_column) override {
        std::vector<Row> rows;
        c_.run(pg::with_returning(sql, id_column), params, &rows);
        if (rows.empty() || rows.front().size() == 0 || rows.front().is_null(0)) return 0;
        return rows.front().integer(0);
    }

private:
    Connection& c_;
};

void backoff(int attempt) {
    // Jittered: two nodes that collided must not collide again in lockstep.
    thread_local std::minstd_rand rng(
        static_cast<unsigned>(std::hash<std::thread::id>{}(std::this_thread::get_id())));
    int cap = std::min(1 << std::min(attempt, 6), 50);
    std::this_thread::sleep_for(
        std::chrono::milliseconds(1 + static_cast<int>(rng() % static_cast<unsigned>(cap))));
}

class PostgresDatabase final : public Database {
public:
    PostgresDatabase(std::string conninfo, std::string password, unsigned pool_size)
        : conninfo_(std::move(conninfo)),
          password_(std::move(password)),
          server_(describe_conninfo(conninfo_)),
          pool_limit_(std::max(1u, pool_size)) {
        ConninfoOptions parsed(conninfo_);
        if (!parsed.opts)
            throw Error(
                "postgresql: the connection string is malformed (expected key=value pairs or a "
                "postgresql:// URI)");
        auto first = std::make_unique<Connection>(conninfo_, password_, server_);  // fail early and clearly
        ++open_;
        give(std::move(first));
    }

    ~PostgresDatabase() override = default;

    void migrate(std::string_view module, const std::vector<Migration>& migrations) override {
        for (const auto& m : migrations) {
            for (int attempt = 0;; ++attempt) {
                try {
                    apply_migration(module, m);
                    break;
                } catch (const RetryError&) {
                    if (attempt >= transaction_retries) throw;
                    backoff(attempt);
                }
            }
        }
    }

    void transact(const std::function<void(Tx&)>& fn) override {
        if (current_.db == this && current_.writing) {  // nested: join the enclosing transaction
            PgTx tx(*current_.conn);
            fn(tx);
            return;
        }
        run("BEGIN ISOLATION LEVEL SERIALIZABLE", true, fn);
    }

    void read(const std::function<void(Tx&)>& fn) override {
        if (current_.db == this) {  // inside a transaction: see its own changes
            PgTx tx(*current_.conn);
            fn(tx);
            return;
        }
        run("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", false, fn);
    }

    void transact_volatile(const std::function<void(Tx&)>& fn) override {
        if (current_.db == this && current_.writing) {
            transact(fn);
            return;
        }
        run("BEGIN ISOLATION LEVEL SERIALIZABLE; SET LOCAL synchronous_commit = off", false, fn, true);
    }

    std::string backend() const override { return "postgresql"; }

private:
    struct Current {
        PostgresDatabase* db = nullptr;
        Connection* conn = nullptr;
        bool writing = false;
    };

    // Runs fn in one transaction, replaying it on serialization failures and deadlocks.
    // volatile_write: a write that takes no turn with the other writers (transact_volatile).
    void run(const char* begin, bool writing, const std::function<void(Tx&)>& fn,
             bool volatile_write = false) {
        for (int attempt = 0;; ++attempt) {
            try {
                run_once(begin, writing, fn, volatile_write);
                return;
            } catch (const RetryError&) {
                if (attempt >= transaction_retries) throw;
                backoff(attempt);
            }
        }
    }

    void run_once(const char* begin, bool writing, const std::function<void(Tx&)>& fn, bool volatile_write) {
        auto conn = take();
        Lease lease{this, conn};
        std::optional<WriterLock> writer;
        try {
            writer.emplace(*conn, writing);
            conn->simple(begin);
        } catch (const TemporaryError& e) {
            // A pooled connection the server dropped meanwhile (restart, idle timeout):
            // nothing ran yet, so a fresh connection may safely start over.
            if (!conn->healthy()) throw RetryError(e.what());
            throw;
        }
        Current saved = current_;
        current_ = {this, conn.get(), writing || volatile_write};
        try {
            PgTx tx(*conn);
            fn(tx);
            current_ = saved;
            conn->simple("COMMIT");
        } catch (const RetryError& e) {
            current_ = saved;
            rollback(*conn);
            if (std::string(e.what()).find("cached plan") != std::string::npos) conn->forget_statements();
            throw;
        } catch (...) {
            current_ = saved;
            rollback(*conn);
            throw;
        }
    }

    void apply_migration(std::string_view module, const Migration& m) {
        auto conn = take();
        Lease lease{this, conn};
        try {
            conn->simple("BEGIN ISOLATION LEVEL READ COMMITTED");
            conn->simple("SELECT pg_advisory_xact_lock(" + std::to_string(migration_lock_key) + ")");
            conn->simple(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " module TEXT NOT NULL, version BIGINT NOT NULL, applied_at BIGINT NOT NULL,"
                " PRIMARY KEY (module, version))");
            std::vector<Row> done;
            conn->run("SELECT 1 FROM schema_migrations WHERE module = ? AND version = ?",
                      {std::string(module), std::int64_t{m.version}}, &done);
            if (done.empty()) {
                try {
                    conn->simple(pg::translate_ddl(m.sql));
                } catch (const TemporaryError&) {
                    throw;
                } catch (const Error& e) {
                    throw Error("migration " + std::string(module) + " " + std::to_string(m.version) + ": " +
                                e.what());
                }
                auto now = std::chrono::duration_cast<std::chrono::seconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
                conn->run("INSERT INTO schema_migrations (module, version, applied_at) VALUES (?, ?, ?)",
                          {std::string(module), std::int64_t{m.version}, std::int64_t{now}}, nullptr);
            }
            conn->simple("COMMIT");
        } catch (...) {
            rollback(*conn);
            throw;
        }
        // Tables changed under the statements other connections prepared: start afresh.
        std::lock_guard lock(pool_mutex_);
        for (auto& c : idle_) c->forget_statements();
        conn->forget_statements();
    }

    // The cluster-wide writer lock for the life of one writing transaction.
    class WriterLock {
    public:
        WriterLock(Connection& c, bool writing) : c_(writing ? &c : nullptr) {
            if (c_) c_->simple("SELECT pg_advisory_lock(" + std::to_string(writer_lock_key) + ")");
        }
        ~WriterLock() {
            if (!c_ || !c_->healthy()) return;  // a dropped connection released it
            try {
                if (c_->in_transaction()) throw Error("still in a transaction");
                c_->simple("SELECT pg_advisory_unlock(" + std::to_string(writer_lock_key) + ")");
            } catch (...) {
                c_->discard();  // never back to the pool holding the lock
            }
        }
        WriterLock(const WriterLock&) = delete;
        WriterLock& operator=(const WriterLock&) = delete;

    private:
        Connection* c_;
    };

    static void rollback(Connection& c) {
        if (!c.healthy() || !c.in_transaction()) return;
        try {
            c.simple("ROLLBACK");
        } catch (...) {
        }
    }

    // Returns a connection to the pool when the transaction using it ends.
    struct Lease {
        PostgresDatabase* self;
        std::unique_ptr<Connection>& conn;
        ~Lease() { self->give(std::move(conn)); }
    };

    std::unique_ptr<Connection> take() {
        std::unique_lock lock(pool_mutex_);
        if (!pool_cv_.wait_for(lock, pool_wait_limit, [&] { return !idle_.empty() || open_ < pool_limit_; }))
            throw TemporaryError("postgresql " + server_ + ": all " + std::to_string(pool_limit_) +
                                 " connections busy for " + std::to_string(pool_wait_limit.count()) + "s");
        while (!idle_.empty()) {
            auto c = std::move(idle_.back());
            idle_.pop_back();
            if (c->healthy()) return c;
            --open_;  // broken (server restarted, network): replace it below
        }
        ++open_;
        lock.unlock();
        try {
            return std::make_unique<Connection>(conninfo_, password_, server_);
        } catch (...) {
            std::lock_guard relock(pool_mutex_);
            --open_;
            pool_cv_.notify_one();
            throw;
        }
    }

    void give(std::unique_ptr<Connection> c) {
        std::lock_guard lock(pool_mutex_);
        if (!c) return;
        if (c->healthy() && !c->in_transaction()) {
            idle_.push_back(std::move(c));
        } else {
            c.reset();
            --open_;
        }
        pool_cv_.notify_one();
    }

    std::string conninfo_;
    std::string password_;
    std::string server_;
    unsigned pool_limit_;
    std::mutex pool_mutex_;
    std::condition_variable pool_cv_;
    std::vector<std::unique_ptr<Connection>> idle_;
    unsigned open_ = 0;
    static thread_local Current current_;
};

thread_local PostgresDatabase::Current PostgresDatabase::current_;

}  // namespace

std::string describe_conninfo(const std::string& conninfo) {
    ConninfoOptions o(conninfo);
    if (!o.opts) return "(malformed connection string)";
    auto host = o.get("host");
    if (host.empty()) host = o.get("hostaddr");
    if (host.empty()) host = "localhost";
    auto port = o.get("port");
    if (port.empty()) port = "5432";
    auto user = o.get("user");
    auto db = o.get("dbname");
    if (db.empty()) db = user;
    return (user.empty() ? "" : user + "@") + host + ":" + port + "/" + db;
}

std::unique_ptr<Database> open_postgres(const std::string& conninfo, const std::string& password,
                                        unsigned pool_size) {
    return std::make_unique<PostgresDatabase>(conninfo, password, pool_size);
}

}  // namespace pecd::store
