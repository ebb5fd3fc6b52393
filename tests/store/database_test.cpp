// database_test.cpp - the Database interface on both backends (SQLite and PostgreSQL)
//
// Covers, on each backend: typed round trips, rollback on exception, migrations applied
// once per module, foreign keys, snapshot reads alongside a writer, nested transactions,
// durability across reopen, concurrent writers from two handles (two processes or two
// nodes), read-modify-write races resolved by retrying, and precise errors. Then what
// only one backend has: SQLite's pragmas and file mode; PostgreSQL's isolation levels,
// synchronous commit, type mapping, migrations raced by two nodes, dropped connections
// and a password that never appears in errors. PostgreSQL is a real server started by
// the test program (tests/pg/pg_server.hpp).
#include "store/database.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "core/error.hpp"
#include "test_database.hpp"

namespace pecd::store {
namespace {

namespace fsys = std::filesystem;

const std::vector<Migration> kMigrations = {
    {1,
     "CREATE TABLE owner (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
     "CREATE TABLE item (id INTEGER PRIMARY KEY, owner_id INTEGER NOT NULL REFERENCES owner(id),"
     " n INTEGER, r REAL, t TEXT, b BLOB)"},
};

bool contains_nocase(std::string hay, std::string needle) {
    for (auto* s : {&hay, &needle})
        for (auto& c : *s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return hay.find(needle) != std::string::npos;
}

// Waits (bounded) until flag is set; false on timeout.
bool wait_for(const std::atomic<bool>& flag, int ms = 5000) {
    for (int i = 0; i < ms / 2 && !flag; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    return flag;
}

class DatabaseTest : public ::testing::TestWithParam<std::string> {
protected:
    void SetUp() override {
        db = target.open();
        db->migrate("test", kMigrations);
    }
    std::int64_t count_owners() {
        std::int64_t n = -1;
        db->read([&](Tx& tx) { n = tx.query_one("SELECT count(*) FROM owner")->integer(0); });
        return n;
    }
    test::TestDatabase target{GetParam()};
    std::unique_ptr<Database> db;
};

INSTANTIATE_TEST_SUITE_P(Backends, DatabaseTest, test::all_backends(), test::backend_name);

TEST_P(DatabaseTest, ReportsItsBackend) {
    EXPECT_EQ(db->backend(), GetParam());
}

TEST_P(DatabaseTest, RoundTripsEveryValueType) {
    std::string binary("a\0b\xff", 4);
    std::int64_t owner = 0;
    db->transact([&](Tx& tx) {
        owner = tx.insert("INSERT INTO owner (name) VALUES (?)", {std::string("alice")});
        tx.exec("INSERT INTO item (owner_id, n, r, t, b) VALUES (?, ?, ?, ?, ?)",
                {owner, std::int64_t{-9000000000LL}, 2.5, std::string("testo è"), Blob{binary}});
        tx.exec("INSERT INTO item (owner_id, n, r, t, b) VALUES (?, ?, ?, ?, ?)",
                {owner, nullptr, nullptr, nullptr, nullptr});
    });
    EXPECT_GT(owner, 0);
    db->read([&](Tx& tx) {
        auto rows = tx.query("SELECT n, r, t, b FROM item ORDER BY id");
        ASSERT_EQ(rows.size(), 2u);
        EXPECT_EQ(rows[0].integer(0), -9000000000LL);
        EXPECT_DOUBLE_EQ(rows[0].real(1), 2.5);
        EXPECT_EQ(rows[0].text(2), "testo è");
        EXPECT_EQ(rows[0].text(3), binary);
        EXPECT_TRUE(std::holds_alternative<Blob>(rows[0].at(3)));
        for (std::size_t i = 0; i < 4; ++i) EXPECT_TRUE(rows[1].is_null(i));
        EXPECT_EQ(rows[1].text(2), "");
        EXPECT_THROW(rows[0].integer(2), Error);
        EXPECT_THROW(rows[0].text(0), Error);
        EXPECT_THROW(rows[1].integer(0), Error);
    });
}

TEST_P(DatabaseTest, ExceptionRollsBackEverything) {
    EXPECT_THROW(db->transact([](Tx& tx) {
        tx.exec("INSERT INTO owner (name) VALUES (?)", {std::string("bob")});
        throw std::runtime_error("abort");
    }),
                 std::runtime_error);
    db->read([](Tx& tx) { EXPECT_EQ(tx.query_one("SELECT count(*) FROM owner")->integer(0), 0); });
}

TEST_P(DatabaseTest, ExecCountsChangedRows) {
    db->transact([](Tx& tx) {
        tx.exec("INSERT INTO owner (name) VALUES ('a')");
        tx.exec("INSERT INTO owner (name) VALUES ('b')");
        EXPECT_EQ(tx.exec("UPDATE owner SET name = name || '!'"), 2);
        EXPECT_EQ(tx.exec("DELETE FROM owner WHERE name = ?", {std::string("zzz")}), 0);
    });
}

TEST_P(DatabaseTest, ForeignKeysAreEnforced) {
    EXPECT_THROW(db->transact([](Tx& tx) {
        tx.exec("INSERT INTO item (owner_id, n) VALUES (?, ?)", {std::int64_t{999}, std::int64_t{1}});
    }),
                 Error);
}

TEST_P(DatabaseTest, ConstraintErrorNamesTheStatement) {
    db->transact([](Tx& tx) { tx.exec("INSERT INTO owner (name) VALUES ('x')"); });
    try {
        db->transact([](Tx& tx) { tx.exec("INSERT INTO owner (name) VALUES ('x')"); });
        FAIL() << "duplicate accepted";
    } catch (const TemporaryError&) {
        FAIL() << "a constraint violation is permanent";
    } catch (const Error& e) {
        EXPECT_TRUE(contains_nocase(e.what(), "unique")) << e.what();
        EXPECT_NE(std::string(e.what()).find("INSERT INTO owner"), std::string::npos) << e.what();
    }
}

TEST_P(DatabaseTest, WrongParameterCountAndSyntaxAreErrors) {
    EXPECT_THROW(db->transact([](Tx& tx) { tx.exec("INSERT INTO owner (name) VALUES (?)"); }), Error);
    EXPECT_THROW(db->transact([](Tx& tx) { tx.exec("INSERT INTO nowhere VALUES (1)"); }), Error);
    EXPECT_THROW(db->transact([](Tx& tx) { tx.exec("SELECT 1; SELECT 2"); }), Error);
}

TEST_P(DatabaseTest, MigrationsApplyOncePerModuleAndInOrder) {
    db->migrate("test", kMigrations);  // again: nothing to do, no error
    std::vector<Migration> more = kMigrations;
    more.push_back({2, "ALTER TABLE owner ADD COLUMN email TEXT"});
    db->migrate("test", more);
    db->migrate("other", {{1, "CREATE TABLE other_t (x INTEGER)"}});
    db->read([](Tx& tx) {
        auto rows = tx.query("SELECT module, version FROM schema_migrations ORDER BY module, version");
        ASSERT_EQ(rows.size(), 3u);
        EXPECT_EQ(rows[0].text(0), "other");
        EXPECT_EQ(rows[1].integer(1), 1);
        EXPECT_EQ(rows[2].integer(1), 2);
        EXPECT_EQ(tx.query("SELECT email FROM owner").size(), 0u);
    });
}

TEST_P(DatabaseTest, FailingMigrationLeavesNoTrace) {
    EXPECT_THROW(db->migrate("bad", {{1, "CREATE TABLE half (x INTEGER); CREATE TABLE broken ("}}), Error);
    db->read(
        [](Tx& tx) { EXPECT_FALSE(tx.query_one("SELECT 1 FROM schema_migrations WHERE module = 'bad'")); });
    EXPECT_THROW(db->read([](Tx& tx) { tx.query("SELECT x FROM half"); }), Error)
        << "half a migration stayed";
    // And the database is still usable afterwards.
    db->migrate("bad", {{1, "CREATE TABLE half (x INTEGER)"}});
    db->read([](Tx& tx) { EXPECT_EQ(tx.query("SELECT x FROM half").size(), 0u); });
}

TEST_P(DatabaseTest, CommittedDataSurvivesReopen) {
    db->transact([](Tx& tx) { tx.exec("INSERT INTO owner (name) VALUES ('durable')"); });
    db.reset();
    auto again = target.open();
    again->read([](Tx& tx) { EXPECT_EQ(tx.query_one("SELECT name FROM owner")->text(0), "durable"); });
}

TEST_P(DatabaseTest, NestedTransactionsJoinTheOuterOne) {
    EXPECT_THROW(db->transact([&](Tx& tx) {
        tx.exec("INSERT INTO owner (name) VALUES ('outer')");
        db->transact([](Tx& inner) { inner.exec("INSERT INTO owner (name) VALUES ('inner')"); });
        db->read([](Tx& r) { EXPECT_EQ(r.query_one("SELECT count(*) FROM owner")->integer(0), 2); });
        throw std::runtime_error("undo both");
    }),
                 std::runtime_error);
    db->read([](Tx& tx) { EXPECT_EQ(tx.query_one("SELECT count(*) FROM owner")->integer(0), 0); });
}

TEST_P(DatabaseTest, ReadersSeeASnapshotWhileAWriterWorks) {
    db->transact([](Tx& tx) { tx.exec("INSERT INTO owner (name) VALUES ('first')"); });
    std::atomic<bool> writer_inside{false}, reader_done{false};
    std::thread writer([&] {
        db->transact([&](Tx& tx) {
            tx.exec("INSERT INTO owner (name) VALUES ('second')");
            writer_inside = true;
            for (int i = 0; i < 500 && !reader_done; ++i)
                std::this_thread::sleep_for(std::chrono::milliseconds(2));
        });
    });
    for (int i = 0; i < 500 && !writer_inside; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    ASSERT_TRUE(writer_inside);
    db->read([](Tx& tx) { EXPECT_EQ(tx.query_one("SELECT count(*) FROM owner")->integer(0), 1); });
    reader_done = true;
    writer.join();
    db->read([](Tx& tx) { EXPECT_EQ(tx.query_one("SELECT count(*) FROM owner")->integer(0), 2); });
}

TEST_P(DatabaseTest, ConcurrentWritersFromTwoHandlesAllLand) {
    // Two Database objects on one database behave like two processes (or nodes): they
    // contend for the SQLite write lock or PostgreSQL's unique index, and the retries
    // must let every write through.
    auto second = target.open();
    constexpr int per_thread = 200;
    auto work = [](Database& d, const std::string& prefix) {
        for (int i = 0; i < per_thread; ++i)
            d.transact([&](Tx& tx) {
                tx.exec("INSERT INTO owner (name) VALUES (?)", {prefix + std::to_string(i)});
            });
    };
    std::thread a([&] { work(*db, "a"); });
    std::thread b([&] { work(*second, "b"); });
    std::thread c([&] { work(*db, "c"); });
    a.join();
    b.join();
    c.join();
    db->read(
        [](Tx& tx) { EXPECT_EQ(tx.query_one("SELECT count(*) FROM owner")->integer(0), 3 * per_thread); });
}

// --- concurrency and failure, both backends ---

class ConcurrencyTest : public DatabaseTest {
protected:
    void SetUp() override {
        DatabaseTest::SetUp();
        db->migrate("counter", {{1,
                                 "CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL);"
                                 "INSERT INTO counter (id, n) VALUES (1, 0)"}});
    }
    static void increment(Database& d) {
        d.transact([](Tx& tx) {
            auto n = tx.query_one("SELECT n FROM counter WHERE id = 1")->integer(0);
            tx.exec("UPDATE counter SET n = ? WHERE id = 1", {n + 1});
        });
    }
};

INSTANTIATE_TEST_SUITE_P(Backends, ConcurrencyTest, test::all_backends(), test::backend_name);

TEST_P(ConcurrencyTest, ReadModifyWriteRacesOnOneRowLoseNoUpdate) {
    // Four threads on two handles read the same row and write it back incremented: a lost
    // update would leave the total short.
    auto second = target.open();
    constexpr int per_thread = 50;
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < per_thread; ++i) increment(t % 2 ? *second : *db);
        });
    for (auto& t : threads) t.join();
    db->read([](Tx& tx) {
        EXPECT_EQ(tx.query_one("SELECT n FROM counter WHERE id = 1")->integer(0), 4 * per_thread);
    });
}

TEST_P(ConcurrencyTest, AThrowingTransactionLeavesNothingAndTheHandleStaysUsable) {
    // More rounds than the PostgreSQL pool has connections: each must come back clean.
    for (int i = 0; i < 20; ++i) {
        EXPECT_THROW(db->transact([&](Tx& tx) {
            tx.exec("UPDATE counter SET n = n + 100 WHERE id = 1");
            tx.exec("INSERT INTO owner (name) VALUES (?)", {"doomed" + std::to_string(i)});
            if (i % 2) tx.exec("INSERT INTO no_such_table VALUES (1)");  // a failed statement
            throw TemporaryError("caller gives up");
        }),
                     Error);
        increment(*db);
    }
    EXPECT_EQ(count_owners(), 0);
    db->read([](Tx& tx) { EXPECT_EQ(tx.query_one("SELECT n FROM counter WHERE id = 1")->integer(0), 20); });
}

// --- SQLite only ---

TEST(SqliteDatabase, SetsPragmasAndFileMode) {
    test::TestDatabase target("sqlite");
    auto db = target.open();
    EXPECT_EQ(db->backend(), "sqlite");
    db->transact([](Tx& tx) {
        EXPECT_EQ(tx.query_one("PRAGMA journal_mode")->text(0), "wal");
        EXPECT_EQ(tx.query_one("PRAGMA synchronous")->integer(0), 2);  // FULL
        EXPECT_EQ(tx.query_one("PRAGMA foreign_keys")->integer(0), 1);
    });
    struct stat st {};
    ASSERT_EQ(::stat((target.dir() / "pecd.db").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0007, 0u) << "database must not be world-readable";
}

// --- PostgreSQL only ---

class PostgresTest : public ::testing::Test {
protected:
    void SetUp() override {
        db = target.open();
        db->migrate("test", kMigrations);
    }
    // The test's schema (tests/pg/pg_server.hpp: one per test, chosen by search_path).
    std::string schema() const {
        auto at = target.conninfo().find("search_path=");
        auto rest = target.conninfo().substr(at + 12);
        return rest.substr(0, rest.find('\''));
    }
    const std::string dbname = test::PostgresServer::database;
    std::int64_t count_owners() {
        std::int64_t n = -1;
        db->read([&](Tx& tx) { n = tx.query_one("SELECT count(*) FROM owner")->integer(0); });
        return n;
    }
    test::TestDatabase target{"postgresql"};
    std::unique_ptr<Database> db;
};

TEST_F(PostgresTest, WritesAreSerializableReadsAreReadOnlySnapshotsCommitsSynchronous) {
    db->transact([](Tx& tx) {
        EXPECT_EQ(tx.query_one("SELECT current_setting('transaction_isolation')")->text(0), "serializable");
        EXPECT_EQ(tx.query_one("SELECT current_setting('synchronous_commit')")->text(0), "on");
    });
    db->read([](Tx& tx) {
        EXPECT_EQ(tx.query_one("SELECT current_setting('transaction_isolation')")->text(0),
                  "repeatable read");
        EXPECT_EQ(tx.query_one("SELECT current_setting('transaction_read_only')")->text(0), "on");
    });
    EXPECT_THROW(db->read([](Tx& tx) { tx.exec("INSERT INTO owner (name) VALUES ('x')"); }), Error);
    EXPECT_EQ(db->backend(), "postgresql");
}

TEST_F(PostgresTest, MigrationsMapSqliteTypesAndKeysAreAssigned) {
    std::map<std::string, std::string> types;
    db->read([&](Tx& tx) {
        for (auto& r : tx.query("SELECT column_name::text, data_type::text FROM information_schema.columns"
                                " WHERE table_name = 'item' AND table_schema = current_schema()"))
            types[r.text(0)] = r.text(1);
        EXPECT_EQ(
            tx.query_one(
                  "SELECT is_identity::text FROM information_schema.columns"
                  " WHERE table_name = 'item' AND column_name = 'id' AND table_schema = current_schema()")
                ->text(0),
            "YES");
    });
    EXPECT_EQ(types["id"], "bigint");
    EXPECT_EQ(types["n"], "bigint");
    EXPECT_EQ(types["r"], "double precision");
    EXPECT_EQ(types["t"], "text");
    EXPECT_EQ(types["b"], "bytea");
    std::int64_t a = 0, b = 0;
    db->transact([&](Tx& tx) {
        a = tx.insert("INSERT INTO owner (name) VALUES (?)", {std::string("a")});
        b = tx.insert("INSERT INTO owner (name) VALUES (?);", {std::string("b")});
        // Aggregates come back as numbers: SUM of BIGINT is NUMERIC on the server.
        EXPECT_EQ(tx.query_one("SELECT SUM(id) FROM owner")->integer(0), a + b);
        EXPECT_DOUBLE_EQ(tx.query_one("SELECT AVG(id) FROM owner")->real(0), (a + b) / 2.0);
        EXPECT_EQ(tx.query_one("SELECT id = ? FROM owner WHERE name = 'a'", {a})->integer(0), 1);
        EXPECT_EQ(tx.query_one("SELECT count(*) FROM owner WHERE name = '?' OR name = ?", {std::string("b")})
                      ->integer(0),
                  1)
            << "a '?' inside a literal is not a placeholder";
    });
    EXPECT_GT(a, 0);
    EXPECT_GT(b, a);
}

TEST_F(PostgresTest, WritersOfSeveralConnectionsTakeTurns) {
    // Two writers on two connections (as two nodes would be): the second to start waits
    // for the first to commit, then reads what it wrote. Neither is replayed, and no
    // interleaving can deadlock them.
    auto second = target.open();
    std::atomic<bool> a_inside{false};
    std::atomic<int> a_runs{0}, b_runs{0};
    std::int64_t seen_b = -1;
    std::thread ta([&] {
        db->transact([&](Tx& tx) {
            ++a_runs;
            a_inside = true;
            std::this_thread::sleep_for(std::chrono::milliseconds(300));
            tx.exec("INSERT INTO owner (name) VALUES ('a')");
        });
    });
    wait_for(a_inside);
    std::thread tb([&] {
        second->transact([&](Tx& tx) {
            ++b_runs;
            seen_b = tx.query_one("SELECT count(*) FROM owner")->integer(0);
            tx.exec("INSERT INTO owner (name) VALUES ('b')");
        });
    });
    ta.join();
    tb.join();
    EXPECT_EQ(a_runs, 1);
    EXPECT_EQ(b_runs, 1);
    EXPECT_EQ(seen_b, 1) << "the second writer starts after the first committed";
    EXPECT_EQ(count_owners(), 2);
}

TEST_F(PostgresTest, TwoNodesStartingTogetherApplyEachMigrationOnce) {
    std::vector<Migration> seeded = {
        {1, "CREATE TABLE seeded (id INTEGER PRIMARY KEY, v TEXT NOT NULL)"},
        {2, "INSERT INTO seeded (id, v) VALUES (1, 'once')"},
        {3, "ALTER TABLE seeded ADD COLUMN w INTEGER"},
    };
    constexpr int nodes = 4;
    std::vector<std::unique_ptr<Database>> handles;
    for (int i = 0; i < nodes; ++i) handles.push_back(target.open());
    std::atomic<bool> go{false};
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < nodes; ++i)
        threads.emplace_back([&, i] {
            wait_for(go);
            try {
                handles[i]->migrate("seeded", seeded);
            } catch (const std::exception& e) {
                ADD_FAILURE() << "node " << i << ": " << e.what();
                ++failures;
            }
        });
    go = true;
    for (auto& t : threads) t.join();
    EXPECT_EQ(failures, 0);
    db->read([](Tx& tx) {
        EXPECT_EQ(tx.query_one("SELECT count(*) FROM seeded")->integer(0), 1);
        EXPECT_EQ(tx.query_one("SELECT count(*) FROM schema_migrations WHERE module = 'seeded'")->integer(0),
                  3);
    });
}

TEST_F(PostgresTest, ConnectionsDroppedByTheServerAreReplaced) {
    db->transact([](Tx& tx) { tx.exec("INSERT INTO owner (name) VALUES ('before')"); });
    test::postgres_server().superuser_sql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'pecd_test'");
    // The backends exit asynchronously; every later transaction must still go through.
    for (int i = 0; i < 5; ++i)
        db->transact(
            [&](Tx& tx) { tx.exec("INSERT INTO owner (name) VALUES (?)", {"after" + std::to_string(i)}); });
    EXPECT_EQ(count_owners(), 6);
}

TEST_F(PostgresTest, ErrorsNameTheServerButNeverThePassword) {
    auto& server = test::postgres_server();
    const std::string secret = "Wr0ngSecretPecd";
    auto expect_clean = [&](const std::string& what, const std::string& conninfo) -> std::string {
        try {
            open_postgres(conninfo);
            ADD_FAILURE() << what << ": connected";
        } catch (const Error& e) {
            std::string m = e.what();
            EXPECT_EQ(m.find(secret), std::string::npos) << what << ": " << m;
            EXPECT_EQ(m.find(server.password()), std::string::npos) << what << ": " << m;
            return m;
        }
        return std::string();
    };
    auto wrong_password = server.conninfo_without_password(schema()) + " password=" + secret;
    auto m = expect_clean("wrong password", wrong_password);
    EXPECT_NE(m.find("pecd_test@127.0.0.1:" + std::to_string(server.port()) + "/" + dbname),
              std::string::npos)
        << m;
    EXPECT_TRUE(contains_nocase(m, "password authentication failed")) << m;
    m = expect_clean("no server", "host=127.0.0.1 port=1 dbname=x user=pecd_test password=" + secret);
    EXPECT_NE(m.find("127.0.0.1:1/x"), std::string::npos) << m;
    expect_clean("malformed", "host=127.0.0.1 password=" + secret + " port");
    expect_clean("URI", "postgresql://pecd_test:" + secret + "@127.0.0.1:" + std::to_string(server.port()) +
                            "/" + dbname);
    // A statement error on a working connection names the server, not the password.
    try {
        db->transact([](Tx& tx) { tx.exec("INSERT INTO owner (name) VALUES (NULL)"); });
        ADD_FAILURE() << "NULL accepted";
    } catch (const Error& e) {
        std::string what = e.what();
        EXPECT_NE(what.find("127.0.0.1"), std::string::npos) << what;
        EXPECT_NE(what.find("23502"), std::string::npos) << what;
        EXPECT_EQ(what.find(server.password()), std::string::npos) << what;
    }
}

TEST_F(PostgresTest, OpenDatabaseTakesThePasswordFromAFile) {
    auto& server = test::postgres_server();
    auto file = target.dir() / "pg.password";
    {
        std::ofstream out(file);
        out << server.password() << "\n";
    }
    DatabaseSettings s;
    s.backend = "postgresql";
    s.conninfo = server.conninfo_without_password(schema());
    s.password_file = file.string();
    s.pool_size = 2;
    auto d = open_database(s);
    d->read([](Tx& tx) { EXPECT_EQ(tx.query_one("SELECT count(*) FROM owner")->integer(0), 0); });
    s.backend = "oracle";
    EXPECT_THROW(open_database(s), Error);
    s.backend = "sqlite";
    s.path = (target.dir() / "other.db").string();
    EXPECT_EQ(open_database(s)->backend(), "sqlite");
}

TEST(OpenSqlite, UnopenablePathNamesThePath) {
    try {
        open_sqlite("/nonexistent-dir-pecd/sub/pecd.db");
        FAIL() << "opened";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("/nonexistent-dir-pecd/sub/pecd.db"), std::string::npos)
            << e.what();
    }
}

}  // namespace
}  // namespace pecd::store
