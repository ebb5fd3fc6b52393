// pg_server.hpp - a real PostgreSQL server for tests, started once per test program
//
// postgres_server() starts, on first use, a throw-away cluster from Debian's postgresql
// package (/usr/lib/postgresql/<newest>/bin): a temporary directory owned by the
// `postgres` system user (initdb and postgres refuse to run as root), listening on
// 127.0.0.1 on a free port with its UNIX socket in that directory. A GoogleTest
// Environment registered by pg_server.cpp stops it and removes the directory when the
// program ends. Programs whose selected tests never ask for it never start it.
//
// A missing PostgreSQL installation throws: the test fails, it is never skipped.
//
// initdb costs seconds, so its output is kept once per build tree as a template
// (PECD_BINARY_DIR/pg-template-<version>, created atomically by the first program that
// needs it) and copied for each run; the copy is what runs and what gets removed.
//
// Tests connect as the role `pecd_test` over TCP with a password (scram-sha-256), as a
// production node would, to the database `pecd`; new_database() gives each test its own
// empty schema there (search_path in the conninfo), which isolates pecd's tables as well
// as a database would at a fraction of the cost.
#pragma once

#include <filesystem>
#include <string>

namespace pecd::test {

class PostgresServer {
public:
    PostgresServer();
    ~PostgresServer();
    PostgresServer(const PostgresServer&) = delete;
    PostgresServer& operator=(const PostgresServer&) = delete;

    int port() const { return port_; }
    const std::string& password() const { return password_; }
    static constexpr const char* role = "pecd_test";
    static constexpr const char* host = "127.0.0.1";
    static constexpr const char* database = "pecd";

    // Creates an empty schema owned by pecd_test; returns a conninfo (with the password)
    // whose search_path selects it.
    std::string new_database();
    // The same conninfo without the password (for tests of password handling).
    std::string conninfo_without_password(const std::string& schema) const;
    // Runs SQL as the superuser `postgres` over the UNIX socket (test set-up only).
    void superuser_sql(const std::string& sql, const std::string& dbname = "postgres") const;

    void stop();

private:
    void start_cluster();

    std::filesystem::path bin_;
    std::string version_;
    std::filesystem::path dir_;
    int port_ = 0;
    std::string password_;
    int schemas_ = 0;
    bool running_ = false;
};

// The program's one server, started on first call (thread-safe).
PostgresServer& postgres_server();

}  // namespace pecd::test
