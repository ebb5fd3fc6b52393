// quarantine_test.cpp - the special storage for infected messages
//
// Covers: an EICAR message detected by a real clamd stored with its metadata (when,
// where, virus, envelope, PEC msgid) and read back byte for byte; entries surviving a
// new Quarantine object (durable layout on disk, private modes); listing order; purge
// after the 30-month retention (and a configured one) driven by ManualClock, including
// month-end clamping; leftovers of interrupted stores and purges; bad ids.
#include "av/quarantine.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "av/clamd.hpp"
#include "clamd_peer.hpp"
#include "core/calendar.hpp"
#include "core/error.hpp"

namespace pecd::av {
namespace {

using namespace std::chrono;
namespace fsys = std::filesystem;

TimePoint utc(int y, unsigned m, unsigned d, int h = 12) {
    return sys_days(year{y} / month{m} / day{d}) + hours(h);
}

Envelope sample_envelope() {
    Envelope e;
    e.mail_from = "mario.rossi@pec.example.it";
    e.recipients = {{"anna@pec.other.it", "", ""}, {"luca@pec.other.it", "", ""}};
    e.session.listener = "submission";
    e.session.client_ip = "127.0.0.1";
    e.session.helo = "mua.example.it";
    e.session.auth_user = "mario.rossi@pec.example.it";
    e.received_at = utc(2026, 11, 25, 9);
    return e;
}

QuarantineEntry meta(const std::string& virus) {
    QuarantineEntry m;
    m.point = "access-point";
    m.host = "pec.example.it";
    m.scanner = "clamd unix:/run/clamav/clamd.ctl";
    m.virus = virus;
    m.pec_msgid = "<opec-1@pec.example.it>";
    m.client_msgid = "<av-1@mua>";
    return m;
}

TEST(Quarantine, InfectedMessageFromClamdIsStoredWithItsMetadata) {
    test::ClamdPeer peer;
    ASSERT_TRUE(peer.ok()) << peer.log();
    test::TempDir dir("pecd-quarantine");
    ManualClock clock(utc(2026, 11, 25, 10));
    Quarantine q(dir.path() / "quarantine", clock);

    std::string message = "Subject: x\r\n\r\n" + test::eicar() + "\r\n";
    ClamdOptions o;
    o.endpoint = ClamdEndpoint::parse(peer.socket_path().string());
    auto verdict = ClamdClient(o).scan(test::eicar());
    ASSERT_EQ(verdict.verdict, Verdict::infected);
    auto m = meta(verdict.virus);
    m.scanner = "clamd " + o.endpoint.to_string();
    auto stored = q.store(message, sample_envelope(), m);

    EXPECT_EQ(stored.detected_at, clock.now());
    EXPECT_EQ(stored.id.substr(0, 17), "20261125T100000Z-");
    EXPECT_EQ(stored.size, message.size());
    EXPECT_EQ(stored.sha256.size(), 64u);

    // A fresh object (as after a restart) sees the same entry.
    Quarantine again(dir.path() / "quarantine", clock);
    auto all = again.list();
    ASSERT_EQ(all.size(), 1u);
    const auto& e = all[0];
    EXPECT_EQ(e.id, stored.id);
    EXPECT_EQ(e.virus, verdict.virus);
    EXPECT_NE(e.virus.find(test::ClamdPeer::kSignature), std::string::npos);
    EXPECT_EQ(e.point, "access-point");
    EXPECT_EQ(e.host, "pec.example.it");
    EXPECT_EQ(e.scanner, m.scanner);
    EXPECT_EQ(e.pec_msgid, "<opec-1@pec.example.it>");
    EXPECT_EQ(e.client_msgid, "<av-1@mua>");
    EXPECT_EQ(e.mail_from, "mario.rossi@pec.example.it");
    EXPECT_EQ(e.recipients, (std::vector<std::string>{"anna@pec.other.it", "luca@pec.other.it"}));
    EXPECT_EQ(e.client_ip, "127.0.0.1");
    EXPECT_EQ(e.helo, "mua.example.it");
    EXPECT_EQ(e.auth_user, "mario.rossi@pec.example.it");
    EXPECT_EQ(e.listener, "submission");
    EXPECT_EQ(e.received_at, utc(2026, 11, 25, 9));
    EXPECT_EQ(e.detected_at, clock.now());
    EXPECT_EQ(e.sha256, stored.sha256);
    EXPECT_EQ(again.read_message(e.id), message);

    // On disk: one directory per entry, private files, no temporary leftovers.
    struct stat st {};
    ASSERT_EQ(::stat((dir.path() / "quarantine" / e.id / "message.eml").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    ASSERT_EQ(::stat((dir.path() / "quarantine").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0077, 0u);
    int entries = 0;
    for (auto& d : fsys::directory_iterator(dir.path() / "quarantine")) {
        EXPECT_NE(d.path().filename().string().front(), '.');
        ++entries;
    }
    EXPECT_EQ(entries, 1);
}

TEST(Quarantine, ListIsOldestFirst) {
    test::TempDir dir("pecd-quarantine");
    ManualClock clock(utc(2026, 1, 10));
    Quarantine q(dir.path(), clock);
    auto a = q.store("a", sample_envelope(), meta("V.A"));
    clock.advance(hours(1));
    auto b = q.store("b", sample_envelope(), meta("V.B"));
    clock.advance(hours(1));
    auto c = q.store("c", sample_envelope(), meta("V.C"));
    auto all = q.list();
    ASSERT_EQ(all.size(), 3u);
    EXPECT_EQ(all[0].id, a.id);
    EXPECT_EQ(all[1].id, b.id);
    EXPECT_EQ(all[2].id, c.id);
    EXPECT_EQ(q.read_message(b.id), "b");
}

// An infected message whose sender's address holds a byte that is not UTF-8 (a quoted
// local part allows 8-bit) is still quarantined: the metadata shows U+FFFD, the stored
// message is intact. Writing the metadata used to throw, and the message was never kept.
TEST(Quarantine, SenderBytesThatAreNotUtf8AreKeptAsReplacement) {
    test::TempDir dir("pecd-quarantine");
    ManualClock clock(utc(2026, 1, 10));
    Quarantine q(dir.path(), clock);
    auto env = sample_envelope();
    env.mail_from = "\"caf\xe9\"@x.example";
    const std::string message = "From: \"caf\xe9\"@x.example\r\n\r\nbody\r\n";
    auto stored = q.store(message, env, meta("V"));
    auto all = q.list();
    ASSERT_EQ(all.size(), 1u);
    EXPECT_EQ(all[0].mail_from, "\"caf\xef\xbf\xbd\"@x.example");
    EXPECT_EQ(q.read_message(stored.id), message);
}

TEST(Quarantine, PurgeAfterThirtyMonths) {
    test::TempDir dir("pecd-quarantine");
    ManualClock clock(utc(2024, 1, 15));
    Quarantine q(dir.path(), clock);
    EXPECT_EQ(q.retention_months(), 30);
    auto old = q.store("old", sample_envelope(), meta("V.Old"));
    clock.set(utc(2024, 6, 1));
    auto newer = q.store("newer", sample_envelope(), meta("V.New"));

    clock.set(utc(2026, 7, 15, 11));  // 30 months minus one hour after `old`
    EXPECT_EQ(q.purge(), 0u);
    EXPECT_EQ(q.list().size(), 2u);
    clock.set(utc(2026, 7, 15, 13));  // 30 months plus one hour
    EXPECT_EQ(q.purge(), 1u);
    auto left = q.list();
    ASSERT_EQ(left.size(), 1u);
    EXPECT_EQ(left[0].id, newer.id);
    EXPECT_FALSE(q.find(old.id).has_value());
    EXPECT_THROW(q.read_message(old.id), Error);
    EXPECT_FALSE(fsys::exists(dir.path() / old.id));
}

TEST(Quarantine, ConfiguredRetentionAndMonthEnds) {
    test::TempDir dir("pecd-quarantine");
    ManualClock clock(utc(2026, 1, 31));
    Quarantine q(dir.path(), clock, 1);
    q.store("x", sample_envelope(), meta("V"));
    // Kept for one whole calendar month: 28 February minus one month is 28 January.
    clock.set(utc(2026, 2, 28, 13));
    EXPECT_EQ(q.purge(), 0u);
    clock.set(utc(2026, 3, 1, 13));
    EXPECT_EQ(q.purge(), 1u);
    EXPECT_EQ(months_before(utc(2026, 3, 31), 1), utc(2026, 2, 28));
    EXPECT_EQ(months_before(utc(2028, 8, 31), 30), utc(2026, 2, 28));
    EXPECT_THROW(Quarantine(dir.path(), clock, 0), Error);
    // Beyond 100 years the cut-off would wrap into the future and purge everything.
    EXPECT_THROW(Quarantine(dir.path(), clock, kMaxRetentionMonths + 1), Error);
    EXPECT_THROW(months_before(utc(2026, 3, 31), 2000000000), Error);
}

TEST(Quarantine, LeftoversOfInterruptedWorkAreIgnoredAndCleaned) {
    test::TempDir dir("pecd-quarantine");
    ManualClock clock(utc(2026, 5, 1));
    Quarantine q(dir.path(), clock);
    auto kept = q.store("kept", sample_envelope(), meta("V"));
    // A store interrupted long ago (no rename happened), a purge interrupted after its rename.
    fsys::create_directories(dir.path() / ".tmp-20200101T000000Z-00");
    fs::write_file_durable(dir.path() / ".tmp-20200101T000000Z-00" / "message.eml", "partial");
    fsys::last_write_time(dir.path() / ".tmp-20200101T000000Z-00",
                          fsys::file_time_type::clock::now() - std::chrono::hours(3));
    fsys::create_directories(dir.path() / ".purge-20200101T000000Z-01");
    // A store in progress right now must survive.
    fsys::create_directories(dir.path() / ".tmp-20260501T120000Z-02");
    // An entry whose metadata cannot be read is not listed (and not deleted).
    fsys::create_directories(dir.path() / "20250101T000000Z-03");
    fs::write_file_durable(dir.path() / "20250101T000000Z-03" / "meta.json", "{broken");

    auto all = q.list();
    ASSERT_EQ(all.size(), 1u);
    EXPECT_EQ(all[0].id, kept.id);
    EXPECT_EQ(q.purge(), 0u);
    EXPECT_FALSE(fsys::exists(dir.path() / ".tmp-20200101T000000Z-00"));
    EXPECT_FALSE(fsys::exists(dir.path() / ".purge-20200101T000000Z-01"));
    EXPECT_TRUE(fsys::exists(dir.path() / ".tmp-20260501T120000Z-02"));
    EXPECT_TRUE(fsys::exists(dir.path() / "20250101T000000Z-03"));
    EXPECT_FALSE(q.find("../etc").has_value());
    EXPECT_THROW(q.read_message("../../etc/passwd"), Error);
}

}  // namespace
}  // namespace pecd::av
