// sqlite_database.cpp - the embedded Database backend on SQLite 3
//
// Contract (database.hpp): transact() is durable on return (WAL, synchronous=FULL),
// rolls back when fn throws, and is retried when the database is locked by another
// process; read() runs in a snapshot. Foreign keys are enforced. Migrations are recorded
// per module in the table schema_migrations(module, version, applied_at).
//
// Concurrency model: one writer connection serialised by a mutex (SQLite admits one
// writer at a time anyway, so a second write connection only adds lock contention), and
// a pool of reader connections so snapshots run in parallel with writes under WAL. A
// transact() or read() called from inside a transact() on the same thread joins the
// outer transaction instead of deadlocking on the writer mutex. Each connection keeps
// its prepared statements, keyed by SQL text.
//
// Errors: SQLITE_BUSY/LOCKED after the retry budget, SQLITE_FULL, SQLITE_IOERR,
// SQLITE_NOMEM → TemporaryError (the caller may answer 4xx and retry); everything else
// → Error naming the statement and SQLite's message.
#include <sqlite3.h>
#include <sys/stat.h>

#include <chrono>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "core/error.hpp"
#include "store/database.hpp"

namespace pecd::store {

// --- Row ---

std::int64_t Row::integer(std::size_t i) const {
    const auto& v = values_.at(i);
    if (const auto* n = std::get_if<std::int64_t>(&v)) return *n;
    throw Error("column " + std::to_string(i) + ": not an integer");
}

std::string Row::text(std::size_t i) const {
    const auto& v = values_.at(i);
    if (const auto* s = std::get_if<std::string>(&v)) return *s;
    if (const auto* b = std::get_if<Blob>(&v)) return b->bytes;
    if (std::holds_alternative<std::nullptr_t>(v)) return {};
    throw Error("column " + std::to_string(i) + ": not text");
}

double Row::real(std::size_t i) const {
    const auto& v = values_.at(i);
    if (const auto* d = std::get_if<double>(&v)) return *d;
    if (const auto* n = std::get_if<std::int64_t>(&v)) return static_cast<double>(*n);
    throw Error("column " + std::to_string(i) + ": not a number");
}

namespace {

constexpr int busy_timeout_ms = 5000;
constexpr int busy_retries = 20;
constexpr std::size_t statement_cache_limit = 256;
constexpr std::size_t reader_pool_limit = 8;

// Raised inside a transaction when SQLite reports a lock conflict, so that transact()
// can roll back and run fn again from the start.
class BusyError : public TemporaryError {
public:
    using TemporaryError::TemporaryError;
};

bool is_busy(int rc) {
    int primary = rc & 0xff;
    return primary == SQLITE_BUSY || primary == SQLITE_LOCKED;
}

bool is_temporary(int rc) {
    int primary = rc & 0xff;
    return primary == SQLITE_FULL || primary == SQLITE_IOERR || primary == SQLITE_NOMEM ||
           primary == SQLITE_CANTOPEN;
}

[[noreturn]] void fail(sqlite3* db, int rc, std::string_view context) {
    std::string msg =
        "sqlite: " + std::string(context) + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    if (is_busy(rc)) throw BusyError(msg);
    if (is_temporary(rc)) throw TemporaryError(msg);
    throw Error(msg);
}

// One SQLite connection with its statement cache.
class Connection {
public:
    Connection(const std::string& path, bool readonly) : path_(path) {
        int flags = SQLITE_OPEN_NOMUTEX |
                    (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
        int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
        if (rc != SQLITE_OK) {
            std::string msg =
                "cannot open database " + path + ": " + (db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc));
            sqlite3_close_v2(db_);
            db_ = nullptr;
            if (is_temporary(rc)) throw TemporaryError(msg);
            throw Error(msg);
        }
        sqlite3_extended_result_codes(db_, 1);
        sqlite3_busy_timeout(db_, busy_timeout_ms);
        try {
            if (!readonly) execute_script("PRAGMA journal_mode=WAL");
            execute_script("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON");
            // No memory map of the file (mmap_size 0, SQLite's default, made explicit): under
            // WAL a connection unmaps the whole file at the start of every read transaction
            // that follows another connection's commit, so with a queue committing hundreds
            // of times a second nearly every snapshot paid a munmap (a TLB shootdown on every
            // core running one of our threads), a new mapping and its page faults, which cost
            // more than the few pread() calls it saved.
            execute_script("PRAGMA mmap_size=0");
        } catch (...) {
            sqlite3_close_v2(db_);
            throw;
        }
    }
    ~Connection() {
        for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
        sqlite3_close_v2(db_);
    }
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    sqlite3* handle() const { return db_; }

    // Several ';'-separated statements without parameters (pragmas, migrations).
    void execute_script(const std::string& sql) {
        char* err = nullptr;
        int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
        if (rc != SQLITE_OK) {
            std::string msg = err ? err : sqlite3_errstr(rc);
            sqlite3_free(err);
            std::string context = "in \"" + sql.substr(0, 200) + "\" (" + path_ + "): " + msg;
            if (is_busy(rc)) throw BusyError("sqlite: " + context);
            if (is_temporary(rc)) throw TemporaryError("sqlite: " + context);
            throw Error("sqlite: " + context);
        }
    }

    // BEGIN, COMMIT and ROLLBACK, from the statement cache: sqlite3_exec would parse them
    // again at every transaction, several hundred times a second on a busy queue.
    void transaction_control(std::string_view sql) { run(sql, {}, nullptr); }

    // Runs one statement; appends result rows to out when given.
    std::int64_t run(std::string_view sql, const std::vector<Value>& params, std::vector<Row>* out) {
        sqlite3_stmt* stmt = prepare(sql);
        struct Reset {
            sqlite3_stmt* s;
            ~Reset() {
                sqlite3_reset(s);
                sqlite3_clear_bindings(s);
            }
        } reset{stmt};
        bind(stmt, sql, params);
        for (;;) {
            int rc = sqlite3_step(stmt);
            if (rc == SQLITE_DONE) break;
            if (rc != SQLITE_ROW) fail(db_, rc, sql);
            if (out) out->push_back(read_row(stmt));
        }
        return sqlite3_changes64(db_);
    }

private:
    sqlite3_stmt* prepare(std::string_view sql) {
        std::string key(sql);
        if (auto it = cache_.find(key); it != cache_.end()) return it->second;
        if (cache_.size() >= statement_cache_limit) {
            // Callers use a bounded set of statements; an overflow means generated SQL,
            // for which starting afresh is as good as any eviction order.
            for (auto& [s, st] : cache_) sqlite3_finalize(st);
            cache_.clear();
        }
        sqlite3_stmt* stmt = nullptr;
        const char* tail = nullptr;
        int rc = sqlite3_prepare_v3(db_, key.data(), static_cast<int>(key.size()), SQLITE_PREPARE_PERSISTENT,
                                    &stmt, &tail);
        if (rc != SQLITE_OK) fail(db_, rc, sql);
        if (!stmt) throw Error("sqlite: empty statement");
        if (tail && std::string_view(tail).find_first_not_of(" \t\r\n;") != std::string_view::npos) {
            sqlite3_finalize(stmt);
            throw Error("sqlite: more than one statement in \"" + key + "\"");
        }
        cache_.emplace(std::move(key), stmt);
        return stmt;
    }

    void bind(sqlite3_stmt* stmt, std::string_view sql, const std::vector<Value>& params) {
        int expected = sqlite3_bind_parameter_count(stmt);
        if (expected != static_cast<int>(params.size()))
            throw Error("sqlite: \"" + std::string(sql) + "\" takes " + std::to_string(expected) +
                        " parameters, " + std::to_string(params.size()) + " given");
        for (std::size_t i = 0; i < params.size(); ++i) {
            int idx = static_cast<int>(i) + 1;
            int rc = std::visit(
                [&](const auto& v) -> int {
                    using T = std::decay_t<decltype(v)>;
                    if constexpr (std::is_same_v<T, std::nullptr_t>)
                        return sqlite3_bind_null(stmt, idx);
                    else if constexpr (std::is_same_v<T, std::int64_t>)
                        return sqlite3_bind_int64(stmt, idx, v);
                    else if constexpr (std::is_same_v<T, double>)
                        return sqlite3_bind_double(stmt, idx, v);
                    else if constexpr (std::is_same_v<T, std::string>)
                        return sqlite3_bind_text64(stmt, idx, v.data(), v.size(), SQLITE_STATIC, SQLITE_UTF8);
                    else
                        return sqlite3_bind_blob64(stmt, idx, v.bytes.data(), v.bytes.size(), SQLITE_STATIC);
                },
                params[i]);
            if (rc != SQLITE_OK) fail(db_, rc, sql);
        }
    }

    static Row read_row(sqlite3_stmt* stmt) {
        int n = sqlite3_column_count(stmt);
        std::vector<Value> values;
        values.reserve(static_cast<std::size_t>(n));
        for (int c = 0; c < n; ++c) {
            switch (sqlite3_column_type(stmt, c)) {
                case SQLITE_INTEGER:
                    values.emplace_back(std::int64_t{sqlite3_column_int64(stmt, c)});
                    break;
                case SQLITE_FLOAT:
                    values.emplace_back(sqlite3_column_double(stmt, c));
                    break;
                case SQLITE_TEXT: {
                    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt, c));
                    values.emplace_back(
                        std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt, c))));
                    break;
                }
                case SQLITE_BLOB: {
                    const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt, c));
                    auto len = static_cast<std::size_t>(sqlite3_column_bytes(stmt, c));
                    values.emplace_back(Blob{p ? std::string(p, len) : std::string()});
                    break;
                }
                default:
                    values.emplace_back(nullptr);
                    break;
            }
        }
        return Row(std::move(values));
    }

    std::string path_;
    sqlite3* db_ = nullptr;
    std::unordered_map<std::string, sqlite3_stmt*> cache_;
};

class SqliteTx final : public Tx {
public:
    explicit SqliteTx(Connection& c) : c_(c) {}
    std::int64_t exec(std::string_view sql, const std::vector<Value>& params) override {
        return c_.run(sql, params, nullptr);
    }
    std::vector<Row> query(std::string_view sql, const std::vector<Value>& params) override {
        std::vector<Row> rows;
        c_.run(sql, params, &rows);
        return rows;
    }
    std::int64_t insert(std::string_view sql, const std::vector<Value>& params, std::string_view) override {
        c_.run(sql, params, nullptr);
        return sqlite3_last_insert_rowid(c_.handle());
    }

private:
    Connection& c_;
};

void backoff(int attempt) {
    // Jittered so that two processes contending for the file do not retry in lockstep.
    auto ms = std::min(1 << std::min(attempt, 6), 50) +
              static_cast<int>(std::hash<std::thread::id>{}(std::this_thread::get_id()) % 5);
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

class SqliteDatabase final : public Database {
public:
    explicit SqliteDatabase(std::string path) : path_(std::move(path)), writer_(path_, false) {
        // The database holds password hashes and mail metadata: owner and group only.
        ::chmod(path_.c_str(), 0640);
        writer_.execute_script(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " module TEXT NOT NULL, version INTEGER NOT NULL, applied_at INTEGER NOT NULL,"
            " PRIMARY KEY (module, version))");
    }

    void migrate(std::string_view module, const std::vector<Migration>& migrations) override {
        for (const auto& m : migrations) {
            transact([&](Tx& tx) {
                auto done = tx.query_one("SELECT 1 FROM schema_migrations WHERE module = ? AND version = ?",
                                         {std::string(module), std::int64_t{m.version}});
                if (done) return;
                try {
                    writer_.execute_script(m.sql);
                } catch (const BusyError&) {
                    throw;
                } catch (const TemporaryError&) {
                    throw;
                } catch (const Error& e) {
                    throw Error("migration " + std::string(module) + " " + std::to_string(m.version) + ": " +
                                e.what());
                }
                auto now = std::chrono::duration_cast<std::chrono::seconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
                tx.exec("INSERT INTO schema_migrations (module, version, applied_at) VALUES (?, ?, ?)",
                        {std::string(module), std::int64_t{m.version}, std::int64_t{now}});
            });
        }
    }

    void transact(const std::function<void(Tx&)>& fn) override {
        if (current_ == this) {  // nested: join the enclosing transaction
            SqliteTx tx(writer_);
            fn(tx);
            return;
        }
        std::lock_guard lock(write_mutex_);
        for (int attempt = 0;; ++attempt) {
            try {
                run_write(fn);
                return;
            } catch (const BusyError&) {
                if (attempt >= busy_retries) throw;
                backoff(attempt);
            }
        }
    }

    void read(const std::function<void(Tx&)>& fn) override {
        if (current_ == this) {  // inside a write transaction: see its own changes
            SqliteTx tx(writer_);
            fn(tx);
            return;
        }
        auto conn = take_reader();
        struct Return {
            SqliteDatabase* self;
            std::unique_ptr<Connection>& c;
            ~Return() { self->give_reader(std::move(c)); }
        } give_back{this, conn};
        conn->transaction_control("BEGIN");
        try {
            SqliteTx tx(*conn);
            fn(tx);
        } catch (...) {
            try {
                conn->transaction_control("ROLLBACK");
            } catch (...) {
            }
            throw;
        }
        conn->transaction_control("COMMIT");
    }

    std::string backend() const override { return "sqlite"; }

private:
    void run_write(const std::function<void(Tx&)>& fn) {
        writer_.transaction_control("BEGIN IMMEDIATE");
        current_ = this;
        try {
            SqliteTx tx(writer_);
            fn(tx);
            writer_.transaction_control("COMMIT");
        } catch (...) {
            current_ = nullptr;
            if (!sqlite3_get_autocommit(writer_.handle())) {
                try {
                    writer_.transaction_control("ROLLBACK");
                } catch (...) {
                }
            }
            throw;
        }
        current_ = nullptr;
    }

    std::unique_ptr<Connection> take_reader() {
        {
            std::lock_guard lock(pool_mutex_);
            if (!readers_.empty()) {
                auto c = std::move(readers_.back());
                readers_.pop_back();
                return c;
            }
        }
        return std::make_unique<Connection>(path_, true);
    }

    void give_reader(std::unique_ptr<Connection> c) {
        if (!c) return;
        std::lock_guard lock(pool_mutex_);
        if (readers_.size() < reader_pool_limit) readers_.push_back(std::move(c));
    }

    std::string path_;
    Connection writer_;
    std::mutex write_mutex_;
    std::mutex pool_mutex_;
    std::vector<std::unique_ptr<Connection>> readers_;
    static thread_local SqliteDatabase* current_;
};

thread_local SqliteDatabase* SqliteDatabase::current_ = nullptr;

}  // namespace

std::unique_ptr<Database> open_sqlite(const std::string& path) {
    return std::make_unique<SqliteDatabase>(path);
}

}  // namespace pecd::store
