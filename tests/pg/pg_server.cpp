// pg_server.cpp - the throw-away PostgreSQL cluster of the tests (see pg_server.hpp)
#include "pg_server.hpp"

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <stdexcept>

namespace pecd::test {
namespace {

namespace fsys = std::filesystem;

struct Output {
    int status;
    std::string text;
};

// Runs a shell command, bounded by `timeout` (coreutils), capturing stdout and stderr.
Output run(const std::string& command, int timeout_seconds = 60) {
    std::string cmd = "timeout " + std::to_string(timeout_seconds) + " " + command + " 2>&1";
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) throw std::runtime_error("popen failed for: " + command);
    std::string text;
    std::array<char, 4096> buf{};
    while (auto n = std::fread(buf.data(), 1, buf.size(), p)) text.append(buf.data(), n);
    int status = ::pclose(p);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, text};
}

std::string quote(const fsys::path& p) {
    return "'" + p.string() + "'";
}

std::string as_postgres(const std::string& command) {
    return "runuser -u postgres -- " + command;
}

void chown_to_postgres(const fsys::path& p) {
    const passwd* pw = ::getpwnam("postgres");
    if (!pw) throw std::runtime_error("no `postgres` system user: install Debian's postgresql package");
    if (::chown(p.c_str(), pw->pw_uid, pw->pw_gid) != 0)
        throw std::runtime_error("cannot chown " + p.string() + " to postgres");
}

fsys::path make_temp_dir(const fsys::path& parent, const std::string& prefix) {
    std::string tmpl = (parent / (prefix + "XXXXXX")).string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed under " + parent.string());
    return tmpl;
}

// The newest /usr/lib/postgresql/<version>/bin holding initdb, pg_ctl and postgres.
std::pair<fsys::path, std::string> find_postgres() {
    const fsys::path root = "/usr/lib/postgresql";
    std::pair<fsys::path, std::string> best;
    int best_version = -1;
    std::error_code ec;
    for (auto& e : fsys::directory_iterator(root, ec)) {
        auto bin = e.path() / "bin";
        if (!fsys::exists(bin / "initdb") || !fsys::exists(bin / "pg_ctl") || !fsys::exists(bin / "postgres"))
            continue;
        int v = std::atoi(e.path().filename().c_str());
        if (v > best_version) {
            best_version = v;
            best = {bin, e.path().filename().string()};
        }
    }
    if (best_version < 0)
        throw std::runtime_error(
            "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin "
            "(install Debian's postgresql package: scripts/install-deps.sh)");
    return best;
}

int free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
        if (fd >= 0) ::close(fd);
        throw std::runtime_error("cannot find a free loopback port");
    }
    ::close(fd);
    return ntohs(a.sin_port);
}

std::string random_hex(std::size_t n) {
    std::random_device rd;
    std::string s;
    for (std::size_t i = 0; i < n; ++i) s += "0123456789abcdef"[rd() % 16];
    return s;
}

// initdb once per build tree and PostgreSQL version; concurrent test programs race
// harmlessly: each builds its own candidate and the first rename wins.
fsys::path cluster_template(const fsys::path& bin, const std::string& version) {
    fsys::path root = PECD_BINARY_DIR;
    fsys::path tmpl = root / ("pg-template-" + version);
    if (fsys::exists(tmpl / "data" / "PG_VERSION")) return tmpl;
    auto candidate = make_temp_dir(root, "pg-template-tmp-");
    chown_to_postgres(candidate);
    auto r = run(as_postgres(quote(bin / "initdb") + " -D " + quote(candidate / "data") +
                             " -U postgres --auth-local=trust --auth-host=scram-sha-256 -E UTF8"
                             " --locale=C.UTF-8 --wal-segsize=1 --no-sync --no-instructions"),
                 120);
    if (r.status != 0) {
        fsys::remove_all(candidate);
        throw std::runtime_error("initdb failed (" + std::to_string(r.status) + "): " + r.text);
    }
    std::error_code ec;
    fsys::rename(candidate, tmpl, ec);
    if (ec) fsys::remove_all(candidate, ec);  // another program got there first
    return tmpl;
}

std::string read_file(const fsys::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

}  // namespace

PostgresServer::PostgresServer() {
    std::tie(bin_, version_) = find_postgres();
    auto tmpl = cluster_template(bin_, version_);
    // On tmpfs when there is one: creating the cluster's ~1000 files there takes a tenth
    // of the time it takes on a disk shared with every other build.
    fsys::path parent = fsys::is_directory("/dev/shm") ? fsys::path("/dev/shm") : fsys::temp_directory_path();
    dir_ = make_temp_dir(parent, "pecd-pg-");
    try {
        chown_to_postgres(dir_);
        auto r = run("cp -a " + quote(tmpl / "data") + " " + quote(dir_ / "data"));
        if (r.status != 0) throw std::runtime_error("copying the cluster template failed: " + r.text);
        start_cluster();
        password_ = random_hex(24);
        superuser_sql(std::string("CREATE ROLE ") + role + " LOGIN CREATEDB PASSWORD '" + password_ + "'");
        superuser_sql(std::string("CREATE DATABASE ") + database + " OWNER " + role);
    } catch (...) {
        stop();
        throw;
    }
}

PostgresServer::~PostgresServer() {
    stop();
}

void PostgresServer::start_cluster() {
    std::string last_log;
    for (int attempt = 0; attempt < 3; ++attempt) {
        port_ = free_port();
        // fsync off: the tests' data is thrown away; the durability the tests check is the
        // client's (synchronous_commit), which this does not change.
        std::string options = "-c listen_addresses=127.0.0.1 -c port=" + std::to_string(port_) +
                              " -c unix_socket_directories=" + dir_.string() +
                              " -c fsync=off -c full_page_writes=off -c max_connections=80"
                              " -c shared_buffers=16MB -c log_min_messages=warning";
        auto r = run(as_postgres(quote(bin_ / "pg_ctl") + " -D " + quote(dir_ / "data") + " -l " +
                                 quote(dir_ / "server.log") + " -w -t 30 -o \"" + options + "\" start"),
                     45);
        if (r.status == 0) {
            running_ = true;
            return;
        }
        last_log = r.text + "\n" + read_file(dir_ / "server.log");
        if (last_log.find("in use") == std::string::npos) break;  // only a lost port race is retried
    }
    throw std::runtime_error("PostgreSQL did not start: " + last_log);
}

void PostgresServer::superuser_sql(const std::string& sql, const std::string& dbname) const {
    std::string conninfo = "host=" + dir_.string() + " port=" + std::to_string(port_) +
                           " user=postgres dbname=" + dbname + " connect_timeout=10";
    std::unique_ptr<PGconn, decltype(&PQfinish)> c(PQconnectdb(conninfo.c_str()), &PQfinish);
    if (PQstatus(c.get()) != CONNECTION_OK)
        throw std::runtime_error("cannot connect as postgres: " + std::string(PQerrorMessage(c.get())));
    std::unique_ptr<PGresult, decltype(&PQclear)> r(PQexec(c.get(), sql.c_str()), &PQclear);
    auto st = PQresultStatus(r.get());
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        throw std::runtime_error("superuser SQL failed: " + std::string(PQerrorMessage(c.get())));
}

std::string PostgresServer::new_database() {
    // A schema per test: as isolated as a database for pecd's tables (schema_migrations
    // included, found through search_path) and created in milliseconds, not seconds.
    std::string schema = "t" + std::to_string(++schemas_);
    superuser_sql("CREATE SCHEMA " + schema + " AUTHORIZATION " + role, database);
    return conninfo_without_password(schema) + " password=" + password_;
}

std::string PostgresServer::conninfo_without_password(const std::string& schema) const {
    return std::string("host=") + host + " port=" + std::to_string(port_) + " dbname=" + database +
           " user=" + role + " options='-c search_path=" + schema + "'";
}

void PostgresServer::stop() {
    if (running_) {
        run(as_postgres(quote(bin_ / "pg_ctl") + " -D " + quote(dir_ / "data") +
                        " -m immediate -w -t 30 stop"),
            45);
        running_ = false;
    }
    if (!dir_.empty()) {
        std::error_code ec;
        fsys::remove_all(dir_, ec);
        dir_.clear();
    }
}

namespace {

std::mutex server_mutex;
std::unique_ptr<PostgresServer> server;

class PostgresEnvironment : public ::testing::Environment {
public:
    void TearDown() override {
        std::lock_guard lock(server_mutex);
        server.reset();
    }
};

[[maybe_unused]] auto* const environment = ::testing::AddGlobalTestEnvironment(new PostgresEnvironment);

}  // namespace

PostgresServer& postgres_server() {
    std::lock_guard lock(server_mutex);
    if (!server) server = std::make_unique<PostgresServer>();
    return *server;
}

}  // namespace pecd::test
