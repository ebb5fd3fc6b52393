// log_crash_driver.cpp - appends legal-log records under load until killed
//
// Usage: log_crash_driver DB PROVIDER_CERT PROVIDER_KEY
// Each transaction inserts a state row and its log record; after the commit returns
// (durable) it prints "ack <seq>" and flushes: that line is the acknowledgement the
// kill -9 test holds the log to. A background sealer closes a segment every second,
// so kills also land in the middle of closing and sealing.
#include <chrono>
#include <cstdio>
#include <memory>

#include "crypto/identity.hpp"
#include "crypto/timestamp.hpp"
#include "log/legal_log.hpp"
#include "log/sealer.hpp"
#include "store/database.hpp"

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: %s DB PROVIDER_CERT PROVIDER_KEY\n", argv[0]);
        return 2;
    }
    using namespace pecd;
    auto db = store::open_sqlite(argv[1]);
    log::LegalLog legal(*db);
    db->migrate("logtest", {{1, "CREATE TABLE test_state (id BIGINT PRIMARY KEY, state TEXT NOT NULL)"}});
    crypto::KeySource source;
    source.certificate = argv[2];
    source.key = argv[3];
    auto tsa = std::make_shared<crypto::TimestampAuthority>(crypto::create_tsa_identity("driver TSA"),
                                                            SystemClock::instance());
    log::LocalTimestampSource stamps(tsa);
    log::SealerOptions options;
    options.segment_interval = std::chrono::seconds(1);
    options.tick = std::chrono::milliseconds(10);
    log::Sealer sealer(legal, crypto::load_identity(source), stamps, SystemClock::instance(), options);
    sealer.start();
    for (int i = 0; i < 1000000; ++i) {
        log::Event e;
        e.kind = log::EventKind::acceptance;
        e.pec_msgid = "crash-" + std::to_string(i);
        e.time = SystemClock::instance().now();
        e.utc_offset_minutes = log::italy_utc_offset_minutes(e.time);
        e.sender = "a@pec.example.it";
        e.recipients = {{"b@pec.example.it", true}};
        e.subject = "load";
        e.outcome = "ok";
        std::int64_t seq = 0;
        db->transact([&](store::Tx& tx) {
            seq = legal.append(tx, e);
            tx.exec("INSERT INTO test_state (id, state) VALUES (?, ?)", {seq, std::string("accepted")});
        });
        std::printf("ack %lld\n", static_cast<long long>(seq));
        std::fflush(stdout);
    }
    sealer.stop();
    return 0;
}
