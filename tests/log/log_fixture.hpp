// log_fixture.hpp - a legal log on a real SQLite database, a provider signing identity
//                   made with the openssl tool, and the built-in TSA served over HTTP
#pragma once

#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <optional>
#include <thread>

#include "core/clock.hpp"
#include "crypto/identity.hpp"
#include "crypto/timestamp.hpp"
#include "log/legal_log.hpp"
#include "log/sealer.hpp"
#include "log/tsa_http.hpp"
#include "log_test_support.hpp"
#include "store/database.hpp"

namespace pecd::log::test {

// A self-signed provider certificate and key, made by the openssl tool in `dir`.
inline crypto::SigningIdentity make_provider_identity(const TempDir& dir) {
    auto r = run_command(
        "openssl req -x509 -newkey rsa:2048 -nodes -subj '/CN=Test PEC Provider/O=pecd tests' "
        "-days 30 -keyout " +
        quote(dir / "provider.key") + " -out " + quote(dir / "provider.pem"));
    if (r.status != 0) throw std::runtime_error("openssl req failed: " + r.output);
    crypto::KeySource src;
    src.certificate = dir / "provider.pem";
    src.key = dir / "provider.key";
    return crypto::load_identity(src);
}

// The built-in TSA on an io_context thread, listening on 127.0.0.1.
class TsaService {
public:
    explicit TsaService(const Clock& clock, unsigned short port = 0)
        : identity_(crypto::create_tsa_identity("pecd test TSA")),
          tsa_(std::make_shared<crypto::TimestampAuthority>(identity_, clock)) {
        start(port);
    }
    ~TsaService() { stop(); }
    void start(unsigned short port) {
        namespace asio = boost::asio;
        io_.restart();
        server_ = std::make_unique<TsaHttpServer>(
            io_, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), tsa_);
        port_ = server_->port();
        work_.emplace(io_.get_executor());
        thread_ = std::thread([this] { io_.run(); });
    }
    void stop() {
        if (!server_) return;
        server_->stop();
        work_.reset();
        io_.stop();
        thread_.join();
        server_.reset();
    }
    unsigned short port() const { return port_; }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/tsa"; }
    const crypto::SigningIdentity& identity() const { return identity_; }

private:
    crypto::SigningIdentity identity_;
    std::shared_ptr<crypto::TimestampAuthority> tsa_;
    boost::asio::io_context io_;
    std::unique_ptr<TsaHttpServer> server_;
    std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
    std::thread thread_;
    unsigned short port_ = 0;
};

inline Event pec_event(EventKind kind, const std::string& msgid, TimePoint t, int n = 0) {
    Event e;
    e.kind = kind;
    e.pec_msgid = msgid;
    e.client_msgid = "<client-" + msgid + ">";
    e.time = t;
    e.utc_offset_minutes = italy_utc_offset_minutes(t);
    e.sender = "mittente@pec.example.it";
    e.recipients = {{"destinatario@pec.other.it", true}, {"Esterno@Mail.Example", false}};
    e.subject = "Prova " + std::to_string(n);
    e.generated_ids = {"<gen-" + std::to_string(n) + "-" + msgid + ">"};
    e.peer_provider = "Other PEC";
    e.peer_host = "mx.pec.other.it";
    e.tls = {"TLSv1.3", "TLS_AES_256_GCM_SHA384", "CN=mx.pec.other.it"};
    e.outcome = "ok";
    return e;
}

class LogFixture : public ::testing::Test {
protected:
    void SetUp() override {
        db = store::open_sqlite((dir / "pecd.db").string());
        log.emplace(*db);
        db->migrate("logtest", {{1, "CREATE TABLE test_state (id BIGINT PRIMARY KEY, state TEXT NOT NULL)"}});
        provider = make_provider_identity(dir);
    }
    std::filesystem::path db_path() const { return dir / "pecd.db"; }
    // A state change and its record in one transaction.
    std::int64_t change_and_log(std::int64_t id, const Event& e) {
        std::int64_t seq = 0;
        db->transact([&](store::Tx& tx) {
            tx.exec("INSERT INTO test_state (id, state) VALUES (?, ?)", {id, std::string(to_string(e.kind))});
            seq = log->append(tx, e);
        });
        return seq;
    }
    // Runs SQL with the sqlite3 tool (an independent writer), the log closed meanwhile.
    std::string sql(const std::string& statements) {
        log.reset();
        db.reset();
        write_file(dir / "statements.sql", statements + ";\n");
        auto r = run_command("sqlite3 " + quote(db_path()) + " < " + quote(dir / "statements.sql"));
        EXPECT_EQ(r.status, 0) << r.output;
        db = store::open_sqlite(db_path().string());
        log.emplace(*db);
        return r.output;
    }

    TempDir dir;
    ManualClock clock{std::chrono::system_clock::now()};
    std::unique_ptr<store::Database> db;
    std::optional<LegalLog> log;
    crypto::SigningIdentity provider;
};

}  // namespace pecd::log::test
