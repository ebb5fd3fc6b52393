// database_factory.cpp - opening the configured Database backend (see database.hpp)
//
// open_database() is the one place that turns [store] settings into a backend, so the
// daemon and pecctl open the same database the same way. A PostgreSQL password may live
// in a separate file (mode 0600, owned by pecd) so the configuration file itself can be
// world-readable; libpq's own PGPASSFILE / ~/.pgpass work as well.
#include <fstream>

#include "core/error.hpp"
#include "store/database.hpp"

namespace pecd::store {
namespace {

std::string read_password_file(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw Error("cannot read the PostgreSQL password file " + path);
    std::string first;
    std::getline(in, first);
    while (!first.empty() && (first.back() == '\r' || first.back() == ' ')) first.pop_back();
    if (first.empty()) throw Error("the PostgreSQL password file " + path + " is empty");
    return first;
}

}  // namespace

std::unique_ptr<Database> open_database(const DatabaseSettings& s) {
    if (s.backend == "sqlite") {
        if (s.path.empty()) throw Error("store: the sqlite backend needs a database path");
        return open_sqlite(s.path);
    }
    if (s.backend == "postgresql") {
        if (s.conninfo.empty()) throw Error("store: the postgresql backend needs a conninfo");
        std::string password = s.password_file.empty() ? std::string() : read_password_file(s.password_file);
        return open_postgres(s.conninfo, password, s.pool_size);
    }
    throw Error("store: unknown backend \"" + s.backend + "\" (sqlite or postgresql)");
}

}  // namespace pecd::store
