// mail_system_pg_test.cpp - the assembled storage and delivery side on PostgreSQL
//
// MailSystem opened with [store]-style settings for PostgreSQL (the wiring the daemon
// uses): a message accepted through the queue's sink is delivered by the queue runner
// into a local mailbox whose rows live on the PostgreSQL server and whose body lives in
// the configured blob directory; a restart on the same database still finds it.
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "delivery/mail_system.hpp"
#include "test_database.hpp"

namespace pecd::delivery {
namespace {

MailSystemOptions options_for(const test::TestDatabase& target) {
    MailSystemOptions o;
    o.data_dir = target.dir() / "node1";
    o.blob_dir = target.dir() / "shared-blobs";
    o.database.backend = "postgresql";
    o.database.conninfo = target.conninfo();
    o.database.pool_size = 4;
    o.spool.min_free_bytes = 1 << 20;
    return o;
}

TEST(PgMailSystem, AcceptedMessageIsDeliveredIntoAMailboxOnPostgresql) {
    test::TestDatabase target("postgresql");
    const std::string body = "From: a@remote.test\r\nSubject: pg\r\n\r\nstored on PostgreSQL\r\n";
    {
        MailSystem system(options_for(target));
        EXPECT_EQ(system.database().backend(), "postgresql");
        system.store().add_domain("local.test");
        system.store().add_mailbox({"rcpt@local.test"});
        system.start();
        Envelope e;
        e.mail_from = "a@remote.test";
        e.recipients.push_back({"rcpt@local.test", "", ""});
        auto m = system.sink().begin(e);
        m->write(body);
        std::promise<queue::CommitResult> done;
        m->commit([&](queue::CommitResult r) { done.set_value(std::move(r)); });
        auto f = done.get_future();
        ASSERT_EQ(f.wait_for(std::chrono::seconds(30)), std::future_status::ready);
        auto r = f.get();
        ASSERT_TRUE(r.ok) << r.error;
        std::vector<store::StoredMessage> msgs;
        for (int i = 0; i < 300 && msgs.empty(); ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
            msgs = system.store().messages("rcpt@local.test");
        }
        ASSERT_EQ(msgs.size(), 1u) << "not delivered within 15 s";
        EXPECT_EQ(system.store().read_message("rcpt@local.test", msgs[0].id), body);
        system.stop();
    }
    EXPECT_TRUE(std::filesystem::exists(target.dir() / "shared-blobs"));
    // The rows are on the server: a second handle (another node) sees them directly.
    auto db = target.open();
    db->read([](store::Tx& tx) {
        EXPECT_EQ(tx.query_one("SELECT count(*) FROM mailbox_messages")->integer(0), 1);
        EXPECT_EQ(tx.query_one("SELECT count(*) FROM queue_messages")->integer(0), 0) << "queue not retired";
    });
    // And a restart of the node finds the mailbox and its message.
    MailSystem again(options_for(target));
    auto msgs = again.store().messages("rcpt@local.test");
    ASSERT_EQ(msgs.size(), 1u);
    EXPECT_EQ(again.store().read_message("rcpt@local.test", msgs[0].id), body);
}

}  // namespace
}  // namespace pecd::delivery
