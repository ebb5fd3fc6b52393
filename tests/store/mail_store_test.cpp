// mail_store_test.cpp - domains, mailboxes, passwords, routes and stored messages
//                       (the MailStore cases run on SQLite and on PostgreSQL)
#include "store/mail_store.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "core/error.hpp"
#include "core/fs.hpp"
#include "store/store_check.hpp"
#include "temp_dir.hpp"
#include "test_database.hpp"

namespace pecd::store {
namespace {

// Runs on both backends: SQLite, and a real PostgreSQL server (tests/pg/pg_server.hpp).
class MailStoreTest : public ::testing::TestWithParam<std::string> {
protected:
    MailStoreTest()
        : target(GetParam()),
          db(target.open()),
          blobs(dir.path() / "blobs"),
          clock(TimePoint(std::chrono::seconds(1700000000))),
          store(*db, blobs, clock) {}

    std::filesystem::path spool_file(const std::string& bytes) {
        auto p = dir.path() / ("spool-" + std::to_string(++files));
        fs::write_file_durable(p, bytes);
        return p;
    }

    test::TempDir dir;
    test::TestDatabase target;
    std::unique_ptr<Database> db;
    BlobStore blobs;
    ManualClock clock;
    MailStore store;
    int files = 0;
};

INSTANTIATE_TEST_SUITE_P(Backends, MailStoreTest, test::all_backends(), test::backend_name);

TEST(Route, ParsesEveryFormAndPrintsItBack) {
    EXPECT_EQ(parse_route("local").kind, Route::Kind::local);
    auto l = parse_route("lmtp:127.0.0.1:24");
    EXPECT_EQ(l.kind, Route::Kind::lmtp);
    EXPECT_EQ(l.host, "127.0.0.1");
    EXPECT_EQ(l.port, 24);
    EXPECT_EQ(parse_route("lmtp:unix:/run/dovecot/lmtp").unix_path, "/run/dovecot/lmtp");
    auto s = parse_route("smtp:[::1]:2525");
    EXPECT_EQ(s.kind, Route::Kind::smtp);
    EXPECT_EQ(s.host, "::1");
    EXPECT_EQ(s.port, 2525);
    for (auto t :
         {"local", "lmtp:mx.example.test:24", "lmtp:unix:/x/y", "smtp:[::1]:25", "smtp:10.0.0.1:587"})
        EXPECT_EQ(to_string(parse_route(t)), t);
}

TEST(Route, RejectsBadFormsNamingTheField) {
    for (auto t : {"", "lmtp:", "lmtp:host", "smtp:host:0", "smtp:host:70000", "smtp::25",
                   "lmtp:unix:relative", "smtp:::1:25", "pigeon:host:1", "smtp:host:25x"}) {
        try {
            parse_route(t);
            ADD_FAILURE() << "accepted " << t;
        } catch (const ParseError& e) {
            EXPECT_EQ(e.field(), "route") << t;
        }
    }
}

TEST_P(MailStoreTest, DomainsAreCaseInsensitiveAndUnique) {
    store.add_domain("Example.TEST");
    store.add_domain("relay.test", parse_route("smtp:127.0.0.1:2525"));
    EXPECT_TRUE(store.is_local_domain("example.test"));
    EXPECT_TRUE(store.is_local_domain("EXAMPLE.test"));
    EXPECT_FALSE(store.is_local_domain("other.test"));
    EXPECT_THROW(store.add_domain("example.test"), Error);
    EXPECT_THROW(store.add_domain("bad domain"), ParseError);
    auto all = store.domains();
    ASSERT_EQ(all.size(), 2u);
    EXPECT_EQ(all[0].name, "example.test");
    EXPECT_EQ(all[1].route.kind, Route::Kind::smtp);
    EXPECT_EQ(store.may_receive("anyone@example.test"), Acceptance::unknown_mailbox);
    EXPECT_EQ(store.may_receive("anyone@relay.test"), Acceptance::accept) << "the next hop decides";
    store.set_route("example.test", parse_route("lmtp:127.0.0.1:24"));
    EXPECT_EQ(store.domain("example.test")->route.port, 24);
    EXPECT_THROW(store.set_route("nowhere.test", {}), Error);
}

TEST_P(MailStoreTest, RecipientNamesItsDomainAndWhetherItMayReceive) {
    store.add_domain("example.test");
    store.add_domain("relay.test", parse_route("smtp:127.0.0.1:2525"));
    store.add_mailbox({"Box@example.test", 100});
    auto outside = store.recipient("someone@other.test");
    EXPECT_FALSE(outside.domain);
    EXPECT_EQ(outside.acceptance, Acceptance::unknown_mailbox);
    auto box = store.recipient(" BOX@Example.Test ", 50);
    ASSERT_TRUE(box.domain);
    EXPECT_EQ(box.domain->name, "example.test");
    EXPECT_EQ(box.domain->route.kind, Route::Kind::local);
    EXPECT_EQ(box.acceptance, Acceptance::accept);
    EXPECT_EQ(store.recipient("box@example.test", 101).acceptance, Acceptance::over_quota);
    EXPECT_EQ(store.recipient("nobody@example.test").acceptance, Acceptance::unknown_mailbox);
    auto relayed = store.recipient("anyone@relay.test");
    ASSERT_TRUE(relayed.domain);
    EXPECT_EQ(relayed.domain->route.kind, Route::Kind::smtp);
    EXPECT_EQ(relayed.acceptance, Acceptance::accept);
    store.set_state("box@example.test", MailboxState::deactivated);
    EXPECT_EQ(store.recipient("box@example.test").acceptance, Acceptance::not_active);
}

TEST_P(MailStoreTest, MailboxNeedsItsDomainAndIsUnique) {
    EXPECT_THROW(store.add_mailbox({"a@example.test"}), Error);
    store.add_domain("example.test");
    auto id = store.add_mailbox({"Alice@Example.test", 1000, MailboxKind::receive_only, false});
    EXPECT_GT(id, 0);
    EXPECT_THROW(store.add_mailbox({"alice@example.test"}), Error);
    EXPECT_THROW(store.add_mailbox({"no-at-sign"}), ParseError);
    auto m = store.mailbox("ALICE@example.test");
    ASSERT_TRUE(m);
    EXPECT_EQ(m->address, "alice@example.test");
    EXPECT_EQ(m->kind, MailboxKind::receive_only);
    EXPECT_FALSE(m->accepts_ordinary_mail);
    EXPECT_EQ(m->quota_bytes, 1000u);
    EXPECT_FALSE(m->has_password);
    EXPECT_EQ(store.mailboxes("example.test").size(), 1u);
    EXPECT_EQ(store.mailboxes("other.test").size(), 0u);
}

TEST_P(MailStoreTest, PasswordsAreArgon2idHashesAndVerify) {
    store.add_domain("example.test");
    store.add_mailbox({"bob@example.test"});
    EXPECT_FALSE(store.verify_password("bob@example.test", "anything"));
    store.set_password("bob@example.test", "correct horse");
    auto hash = store.password_hash("bob@example.test");
    ASSERT_TRUE(hash);
    EXPECT_TRUE(hash->starts_with("$argon2id$")) << *hash;
    EXPECT_EQ(hash->find("correct horse"), std::string::npos);
    EXPECT_TRUE(store.verify_password("BOB@example.test", "correct horse"));
    EXPECT_FALSE(store.verify_password("bob@example.test", "correct horsE"));
    EXPECT_FALSE(store.verify_password("nobody@example.test", "correct horse"));
    EXPECT_THROW(store.set_password("nobody@example.test", "x"), Error);
    EXPECT_THROW(store.set_password("bob@example.test", ""), Error);
}

TEST_P(MailStoreTest, LifecycleDeactivateKeepsReadableCloseIsFinal) {
    store.add_domain("example.test");
    store.add_mailbox({"c@example.test"});
    EXPECT_EQ(store.may_receive("c@example.test"), Acceptance::accept);
    clock.advance(std::chrono::hours(1));
    store.set_state("c@example.test", MailboxState::deactivated);
    auto m = store.mailbox("c@example.test");
    ASSERT_TRUE(m->deactivated_at);
    EXPECT_EQ(*m->deactivated_at, clock.now());
    EXPECT_EQ(store.may_receive("c@example.test"), Acceptance::not_active);
    EXPECT_NO_THROW(store.messages("c@example.test"));
    clock.advance(std::chrono::hours(1));
    store.set_state("c@example.test", MailboxState::closed);
    EXPECT_EQ(*store.mailbox("c@example.test")->deactivated_at, clock.now() - std::chrono::hours(1));
    EXPECT_THROW(store.set_state("c@example.test", MailboxState::active), Error);
    EXPECT_THROW(store.messages("c@example.test"), Error);
    EXPECT_EQ(store.may_receive("x@example.test"), Acceptance::unknown_mailbox);
}

TEST_P(MailStoreTest, DeliveryKeepsBytesExactlyOnceAndChargesQuota) {
    store.add_domain("example.test");
    store.add_mailbox({"d@example.test", 100});
    std::string bytes = "Subject: hi\r\n\r\nbody\r\n..\r\n";
    auto src = spool_file(bytes);
    int also_runs = 0;
    EXPECT_EQ(
        store.deliver("d@example.test", "q1.1", src, bytes.size(), "s@x.test", [&](Tx&) { ++also_runs; }),
        DeliveryOutcome::stored);
    // Delivered again under the same key: no second copy, and no second `also` step (it
    // committed with the first, and would record a second receipt).
    EXPECT_EQ(
        store.deliver("d@example.test", "q1.1", src, bytes.size(), "s@x.test", [&](Tx&) { ++also_runs; }),
        DeliveryOutcome::already_stored);
    EXPECT_EQ(also_runs, 1);
    auto msgs = store.messages("d@example.test");
    ASSERT_EQ(msgs.size(), 1u);
    EXPECT_EQ(msgs[0].mail_from, "s@x.test");
    EXPECT_EQ(store.read_message("d@example.test", msgs[0].id), bytes);
    auto m = store.mailbox("d@example.test");
    EXPECT_EQ(m->used_bytes, bytes.size());
    EXPECT_EQ(m->message_count, 1);
    // The blob is a hard link of the spool file: removing the spool copy keeps it.
    std::filesystem::remove(src);
    EXPECT_EQ(store.read_message("d@example.test", msgs[0].id), bytes);

    auto big = spool_file(std::string(80, 'x'));
    EXPECT_EQ(store.may_receive("d@example.test", 80), Acceptance::over_quota);
    EXPECT_EQ(store.deliver("d@example.test", "q2.1", big, 80, "", [&](Tx&) { ++also_runs; }),
              DeliveryOutcome::over_quota);
    EXPECT_EQ(also_runs, 1);
    EXPECT_EQ(store.messages("d@example.test").size(), 1u);
    EXPECT_EQ(store.deliver("nobody@example.test", "q3.1", big, 80, ""), DeliveryOutcome::unknown_mailbox);
}

TEST_P(MailStoreTest, AKnownMailboxThatCannotTakeAMessageKeepsNoBlobOfIt) {
    store.add_domain("example.test");
    store.add_mailbox({"k@example.test", 1000});
    auto first = spool_file("first\r\n");
    ASSERT_EQ(store.deliver("k@example.test", "q1.1", first, 7, ""), DeliveryOutcome::stored);
    // The mailbox is known now; what it cannot take leaves no blob behind.
    auto big = spool_file(std::string(2000, 'x'));
    EXPECT_EQ(store.deliver("k@example.test", "q2.1", big, 2000, ""), DeliveryOutcome::over_quota);
    EXPECT_FALSE(std::filesystem::exists(
        blobs.path_of("m" + std::to_string(store.mailbox("k@example.test")->id) + "-q2.1")));
    store.set_state("k@example.test", MailboxState::deactivated);
    auto small = spool_file("small\r\n");
    int also_runs = 0;
    EXPECT_EQ(store.deliver("k@example.test", "q3.1", small, 7, "", [&](Tx&) { ++also_runs; }),
              DeliveryOutcome::not_active);
    EXPECT_EQ(also_runs, 0);
    EXPECT_FALSE(std::filesystem::exists(
        blobs.path_of("m" + std::to_string(store.mailbox("k@example.test")->id) + "-q3.1")));
    // The stored message is untouched by either.
    auto msgs = store.messages("k@example.test");
    ASSERT_EQ(msgs.size(), 1u);
    EXPECT_EQ(store.read_message("k@example.test", msgs[0].id), "first\r\n");
}

TEST_P(MailStoreTest, BytesDeliveredOnceAndAStoredBlobIsNeverOverwritten) {
    store.add_domain("example.test");
    store.add_mailbox({"r@example.test", 100});
    int also_runs = 0;
    EXPECT_EQ(store.deliver_bytes("r@example.test", "q5.receipt", "first receipt\r\n", "p@example.test",
                                  [&](Tx&) { ++also_runs; }),
              DeliveryOutcome::stored);
    // The same key again (a stage retried): nothing replaced, no second step.
    EXPECT_EQ(store.deliver_bytes("r@example.test", "q5.receipt", "other bytes\r\n", "p@example.test",
                                  [&](Tx&) { ++also_runs; }),
              DeliveryOutcome::already_stored);
    EXPECT_EQ(also_runs, 1);
    auto msgs = store.messages("r@example.test");
    ASSERT_EQ(msgs.size(), 1u);
    EXPECT_EQ(store.read_message("r@example.test", msgs[0].id), "first receipt\r\n");
    EXPECT_EQ(msgs[0].mail_from, "p@example.test");
    // Over quota: the caller queues it instead; nothing is kept and no step runs.
    EXPECT_EQ(store.deliver_bytes("r@example.test", "q6.receipt", std::string(90, 'x'), "",
                                  [&](Tx&) { ++also_runs; }),
              DeliveryOutcome::over_quota);
    EXPECT_EQ(also_runs, 1);
    EXPECT_EQ(store.messages("r@example.test").size(), 1u);
    EXPECT_EQ(store.mailbox("r@example.test")->used_bytes, 15u);
}

TEST_P(MailStoreTest, FailedQueueStepLeavesNoMessage) {
    store.add_domain("example.test");
    store.add_mailbox({"e@example.test"});
    auto src = spool_file("x\r\n");
    EXPECT_THROW(
        store.deliver("e@example.test", "q9.1", src, 3, "", [](Tx&) { throw TemporaryError("queue"); }),
        TemporaryError);
    EXPECT_TRUE(store.messages("e@example.test").empty());
    EXPECT_EQ(store.mailbox("e@example.test")->used_bytes, 0u);
}

TEST_P(MailStoreTest, BlobStoreFailureIsTemporaryAndLeavesNothing) {
    store.add_domain("example.test");
    store.add_mailbox({"f@example.test"});
    auto src = spool_file("y\r\n");
    BlobStore::set_failure_hook([](std::string_view step) {
        if (step == "link") throw TemporaryError("injected: no space left on device");
    });
    EXPECT_THROW(store.deliver("f@example.test", "q5.1", src, 3, ""), TemporaryError);
    BlobStore::set_failure_hook({});
    EXPECT_TRUE(store.messages("f@example.test").empty());
    EXPECT_EQ(store.deliver("f@example.test", "q5.1", src, 3, ""), DeliveryOutcome::stored);
}

TEST(BlobStore, RejectsKeysThatEscapeAndWritesDurably) {
    test::TempDir dir;
    BlobStore b(dir.path() / "b");
    for (auto k : {"", "../x", "a/b", ".hidden", "a b"}) EXPECT_THROW(b.put(k, "x"), Error) << k;
    b.put("k1", std::string("\0\xff", 2));
    EXPECT_EQ(b.get("k1"), std::string("\0\xff", 2));
    EXPECT_TRUE(b.exists("k1"));
    b.remove("k1");
    EXPECT_FALSE(b.exists("k1"));
    EXPECT_NO_THROW(b.remove("k1"));
    EXPECT_THROW(b.get("k1"), Error);
}

TEST(BlobStore, PutOverwritesWhatACrashedPutLeftUnderItsKey) {
    test::TempDir dir;
    BlobStore b(dir.path() / "b");
    // What a kill -9 in the middle of put() leaves: part of a longer file, under the key.
    b.put("k2", std::string(10000, 'x'));
    b.put("k2", "the receipt\r\n");
    EXPECT_EQ(b.get("k2"), "the receipt\r\n");
    // No temporary names are left beside the blob.
    std::size_t files = 0;
    for (auto& d : std::filesystem::recursive_directory_iterator(dir.path() / "b"))
        if (d.is_regular_file()) ++files;
    EXPECT_EQ(files, 1u);
}

TEST(ReadFile, ReadsWholeFilesOfAnySizeAndNamesAMissingOne) {
    test::TempDir dir;
    for (std::size_t size : {0ul, 1ul, 4095ul, 4096ul, 4097ul, 100000ul}) {
        std::string bytes(size, '\0');
        for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>(i * 31 + 7);
        auto p = dir.path() / ("f" + std::to_string(size));
        fs::write_file_durable(p, bytes);
        EXPECT_EQ(fs::read_file(p), bytes) << size;
    }
    try {
        fs::read_file(dir.path() / "missing");
        FAIL() << "no error for a missing file";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("missing"), std::string::npos) << e.what();
    }
}

// What a restore from backups taken at different moments leaves, found by check_store():
// a row without its file, a file of the wrong size, counters off, files no row names.
TEST_P(MailStoreTest, StoreCheckFindsWhatARestoreBroke) {
    store.add_domain("example.test");
    store.add_mailbox({"a@example.test", 1 << 20});
    store.add_mailbox({"b@example.test", 1 << 20});
    const std::string body = "Subject: x\r\n\r\nbody\r\n";
    for (const auto* key : {"k1", "k2", "k3"})
        ASSERT_EQ(store.deliver("a@example.test", key, spool_file(body), body.size(), "s@x.test"),
                  DeliveryOutcome::stored);
    ASSERT_EQ(store.deliver_bytes("b@example.test", "r1", body, "s@x.test"), DeliveryOutcome::stored);
    const auto now = std::chrono::system_clock::now();
    const auto later = now + std::chrono::hours(2);  // every file is past the one-hour grace
    auto clean = check_store(*db, blobs, later);
    EXPECT_TRUE(clean.clean());
    EXPECT_EQ(clean.messages, 4);
    EXPECT_EQ(clean.files, 4);

    auto ids = store.messages("a@example.test");
    ASSERT_EQ(ids.size(), 3u);
    const std::string key1 = "m" + std::to_string(store.mailbox("a@example.test")->id) + "-k1";
    const std::string key2 = "m" + std::to_string(store.mailbox("a@example.test")->id) + "-k2";
    std::filesystem::remove(blobs.path_of(key1));
    fs::write_file_durable(blobs.path_of(key2), "trunc");  // a new inode: no longer the spool's
    db->transact([](Tx& tx) {
        tx.exec("UPDATE mailboxes SET used_bytes = used_bytes + 7 WHERE address = ?",
                {std::string("b@example.test")});
    });
    blobs.put("m999-lost", "a delivery that never committed");

    auto young = check_store(*db, blobs, now);
    EXPECT_TRUE(young.orphans.empty());
    EXPECT_EQ(young.young_unnamed, 1u);

    auto r = check_store(*db, blobs, later);
    EXPECT_FALSE(r.clean());
    ASSERT_EQ(r.missing.size(), 1u);
    EXPECT_EQ(r.missing[0].blob_key, key1);
    EXPECT_EQ(r.missing[0].mailbox, "a@example.test");
    EXPECT_EQ(r.missing[0].message_id, ids[0].id);
    ASSERT_EQ(r.wrong_size.size(), 1u);
    EXPECT_EQ(r.wrong_size[0].blob_key, key2);
    EXPECT_EQ(r.wrong_size[0].actual_size, 5u);
    EXPECT_EQ(r.wrong_size[0].expected_size, body.size());
    ASSERT_EQ(r.counters.size(), 1u);
    EXPECT_EQ(r.counters[0].mailbox, "b@example.test");
    EXPECT_EQ(r.counters[0].recorded_bytes, body.size() + 7);
    EXPECT_EQ(r.counters[0].actual_bytes, body.size());
    EXPECT_EQ(r.orphans, std::vector<std::string>{"m999-lost"});
    EXPECT_EQ(r.orphans_removed, 0u);
    EXPECT_TRUE(blobs.exists("m999-lost")) << "checking changes nothing";

    StoreCheckOptions remove;
    remove.remove_orphans = true;
    auto removed = check_store(*db, blobs, later, remove);
    EXPECT_EQ(removed.orphans_removed, 1u);
    EXPECT_FALSE(blobs.exists("m999-lost"));
    EXPECT_TRUE(blobs.exists(key2)) << "a named file is never removed, whatever its size";
    auto after = check_store(*db, blobs, later);
    EXPECT_TRUE(after.orphans.empty());
    EXPECT_EQ(after.missing.size(), 1u);
    EXPECT_EQ(after.files, 3);
}

}  // namespace
}  // namespace pecd::store
