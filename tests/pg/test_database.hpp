// test_database.hpp - one empty database per test, on either backend
//
// Store-facing tests are value-parameterised over the backend name ("sqlite" or
// "postgresql") and get their database from TestDatabase: a file in a private temporary
// directory, or a fresh database on the program's PostgreSQL server (pg_server.hpp).
// open() may be called again to reopen (durability) or to get a second handle that
// behaves like another process or node.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "pg_server.hpp"
#include "store/database.hpp"
#include "temp_dir.hpp"

namespace pecd::test {

class TestDatabase {
public:
    explicit TestDatabase(std::string backend) : backend_(std::move(backend)) {
        if (backend_ == "postgresql") conninfo_ = postgres_server().new_database();
    }
    std::unique_ptr<store::Database> open() const {
        if (backend_ == "postgresql") return store::open_postgres(conninfo_);
        return store::open_sqlite((dir_.path() / "pecd.db").string());
    }
    const std::string& backend() const { return backend_; }
    const std::string& conninfo() const { return conninfo_; }
    // A private directory for files beside the database (blobs, spool).
    const std::filesystem::path& dir() const { return dir_.path(); }

private:
    std::string backend_;
    TempDir dir_;
    std::string conninfo_;
};

inline auto all_backends() {
    return ::testing::Values(std::string("sqlite"), std::string("postgresql"));
}

inline std::string backend_name(const ::testing::TestParamInfo<std::string>& info) {
    return info.param;
}

}  // namespace pecd::test
