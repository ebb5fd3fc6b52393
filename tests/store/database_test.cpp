// database_test.cpp - the SQLite Database backend through the Database interface
//
// Covers: typed round trips, rollback on exception, migrations applied once per module,
// foreign keys, snapshot reads alongside a writer, nested transactions, durability across
// reopen, lock conflicts with a second process-level handle, and precise errors.
#include "store/database.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "core/error.hpp"

namespace pecd::store {
namespace {

namespace fsys = std::filesystem;

class TempDir {
public:
    TempDir() {
        std::string tmpl = (fsys::temp_directory_path() / "pecd-store-XXXXXX").string();
        if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp");
        path_ = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        fsys::remove_all(path_, ec);
    }
    const fsys::path& path() const { return path_; }

private:
    fsys::path path_;
};

const std::vector<Migration> kMigrations = {
    {1,
     "CREATE TABLE owner (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
     "CREATE TABLE item (id INTEGER PRIMARY KEY, owner_id INTEGER NOT NULL REFERENCES owner(id),"
     " n INTEGER, r REAL, t TEXT, b BLOB)"},
};

class DatabaseTest : public ::testing::Test {
protected:
    void SetUp() override {
        db = open_sqlite((dir.path() / "pecd.db").string());
        db->migrate("test", kMigrations);
    }
    TempDir dir;
    std::unique_ptr<Database> db;
};

TEST_F(DatabaseTest, ReportsBackendAndSetsPragmas) {
    EXPECT_EQ(db->backend(), "sqlite");
    db->transact([](Tx& tx) {
        EXPECT_EQ(tx.query_one("PRAGMA journal_mode")->text(0), "wal");
        EXPECT_EQ(tx.query_one("PRAGMA synchronous")->integer(0), 2);  // FULL
        EXPECT_EQ(tx.query_one("PRAGMA foreign_keys")->integer(0), 1);
    });
    struct stat st {};
    ASSERT_EQ(::stat((dir.path() / "pecd.db").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0007, 0u) << "database must not be world-readable";
}

TEST_F(DatabaseTest, RoundTripsEveryValueType) {
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

TEST_F(DatabaseTest, ExceptionRollsBackEverything) {
    EXPECT_THROW(db->transact([](Tx& tx) {
        tx.exec("INSERT INTO owner (name) VALUES (?)", {std::string("bob")});
        throw std::runtime_error("abort");
    }),
                 std::runtime_error);
    db->read([](Tx& tx) { EXPECT_EQ(tx.query_one("SELECT count(*) FROM owner")->integer(0), 0); });
}

TEST_F(DatabaseTest, ExecCountsChangedRows) {
    db->transact([](Tx& tx) {
        tx.exec("INSERT INTO owner (name) VALUES ('a')");
        tx.exec("INSERT INTO owner (name) VALUES ('b')");
        EXPECT_EQ(tx.exec("UPDATE owner SET name = name || '!'"), 2);
        EXPECT_EQ(tx.exec("DELETE FROM owner WHERE name = ?", {std::string("zzz")}), 0);
    });
}

TEST_F(DatabaseTest, ForeignKeysAreEnforced) {
    EXPECT_THROW(db->transact([](Tx& tx) {
        tx.exec("INSERT INTO item (owner_id, n) VALUES (?, ?)", {std::int64_t{999}, std::int64_t{1}});
    }),
                 Error);
}

TEST_F(DatabaseTest, ConstraintErrorNamesTheStatement) {
    db->transact([](Tx& tx) { tx.exec("INSERT INTO owner (name) VALUES ('x')"); });
    try {
        db->transact([](Tx& tx) { tx.exec("INSERT INTO owner (name) VALUES ('x')"); });
        FAIL() << "duplicate accepted";
    } catch (const TemporaryError&) {
        FAIL() << "a constraint violation is permanent";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("UNIQUE"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("INSERT INTO owner"), std::string::npos) << e.what();
    }
}

TEST_F(DatabaseTest, WrongParameterCountAndSyntaxAreErrors) {
    EXPECT_THROW(db->transact([](Tx& tx) { tx.exec("INSERT INTO owner (name) VALUES (?)"); }), Error);
    EXPECT_THROW(db->transact([](Tx& tx) { tx.exec("INSERT INTO nowhere VALUES (1)"); }), Error);
    EXPECT_THROW(db->transact([](Tx& tx) { tx.exec("SELECT 1; SELECT 2"); }), Error);
}

TEST_F(DatabaseTest, MigrationsApplyOncePerModuleAndInOrder) {
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

TEST_F(DatabaseTest, FailingMigrationLeavesNoTrace) {
    EXPECT_THROW(db->migrate("bad", {{1, "CREATE TABLE half (x INTEGER); CREATE TABLE broken ("}}), Error);
    db->read([](Tx& tx) {
        EXPECT_FALSE(tx.query_one("SELECT 1 FROM sqlite_master WHERE name = 'half'"));
        EXPECT_FALSE(tx.query_one("SELECT 1 FROM schema_migrations WHERE module = 'bad'"));
    });
}

TEST_F(DatabaseTest, CommittedDataSurvivesReopen) {
    db->transact([](Tx& tx) { tx.exec("INSERT INTO owner (name) VALUES ('durable')"); });
    db.reset();
    auto again = open_sqlite((dir.path() / "pecd.db").string());
    again->read([](Tx& tx) { EXPECT_EQ(tx.query_one("SELECT name FROM owner")->text(0), "durable"); });
}

TEST_F(DatabaseTest, NestedTransactionsJoinTheOuterOne) {
    EXPECT_THROW(db->transact([&](Tx& tx) {
        tx.exec("INSERT INTO owner (name) VALUES ('outer')");
        db->transact([](Tx& inner) { inner.exec("INSERT INTO owner (name) VALUES ('inner')"); });
        db->read([](Tx& r) { EXPECT_EQ(r.query_one("SELECT count(*) FROM owner")->integer(0), 2); });
        throw std::runtime_error("undo both");
    }),
                 std::runtime_error);
    db->read([](Tx& tx) { EXPECT_EQ(tx.query_one("SELECT count(*) FROM owner")->integer(0), 0); });
}

TEST_F(DatabaseTest, ReadersSeeASnapshotWhileAWriterWorks) {
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

TEST_F(DatabaseTest, ConcurrentWritersFromTwoHandlesAllLand) {
    // Two Database objects on one file behave like two processes: they contend for the
    // SQLite write lock, and the busy timeout plus retries must let every write through.
    auto second = open_sqlite((dir.path() / "pecd.db").string());
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
