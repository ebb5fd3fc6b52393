// runner_test.cpp - the queue runner's order of work
#include "queue/runner.hpp"

#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <mutex>

#include "core/error.hpp"
#include "temp_dir.hpp"

namespace pecd::queue {
namespace {

class LocalRouter final : public Router {
public:
    std::optional<store::Route> route_for(std::string_view) override { return store::Route{}; }
};

// Holds the first delivery until released, and records the sender of every delivery.
class GateTransport final : public Transport {
public:
    std::vector<RecipientResult> deliver(const DeliveryAttempt& a) override {
        std::unique_lock lock(mutex_);
        order_.push_back(a.message.envelope.mail_from);
        cv_.notify_all();
        cv_.wait(lock, [&] { return open_; });
        std::vector<RecipientResult> out;
        for (const auto& r : a.recipients)
            out.push_back({r.id, Outcome::delivered, "2.0.0", "ok", {}, false});
        return out;
    }
    void wait_for(std::size_t n) {
        std::unique_lock lock(mutex_);
        ASSERT_TRUE(cv_.wait_for(lock, std::chrono::seconds(20), [&] { return order_.size() >= n; }));
    }
    void open() {
        std::lock_guard lock(mutex_);
        open_ = true;
        cv_.notify_all();
    }
    std::vector<std::string> order() {
        std::lock_guard lock(mutex_);
        return order_;
    }

private:
    std::mutex mutex_;
    std::condition_variable cv_;
    bool open_ = false;
    std::vector<std::string> order_;
};

void receive(Spool& spool, const std::string& from) {
    Envelope e;
    e.mail_from = from;
    e.recipients.push_back({"rcpt@example.test", "", ""});
    auto m = spool.begin(e);
    m->write("Subject: x\r\n\r\nbody\r\n");
    std::promise<CommitResult> p;
    m->commit([&](CommitResult r) { p.set_value(std::move(r)); });
    ASSERT_TRUE(p.get_future().get().ok);
}

TEST(RunnerTest, GeneratedMessagesGoBeforeReceivedOnes) {
    test::TempDir dir("pecd-runner");
    auto db = store::open_sqlite((dir.path() / "pecd.db").string());
    SpoolOptions so;
    so.min_free_bytes = 1 << 20;
    Spool spool(*db, dir.path() / "queue", SystemClock::instance(), so);
    LocalRouter router;
    GateTransport transport;
    RunnerOptions ro;
    ro.workers = 1;
    Runner runner(spool, router, transport, SystemClock::instance(), ro);
    runner.start();
    receive(spool, "first@example.test");
    transport.wait_for(1);  // the only worker is held by the first message
    receive(spool, "received-1@example.test");
    receive(spool, "received-2@example.test");
    Envelope g;
    g.mail_from = "generated@example.test";
    g.recipients.push_back({"rcpt@example.test", "", ""});
    spool.enqueue(g, "Subject: receipt\r\n\r\nbody\r\n", false);
    transport.open();
    transport.wait_for(4);
    runner.stop();
    EXPECT_EQ(transport.order(),
              (std::vector<std::string>{"first@example.test", "generated@example.test",
                                        "received-1@example.test", "received-2@example.test"}));
}

// Defers every message on its first pass, then marks its recipients done; records the
// recipients of each pass.
class WholeProcessor final : public Processor {
public:
    bool handles(const QueuedMessage&) const override { return true; }
    std::vector<RecipientResult> process(const QueuedMessage&, const std::vector<QueuedRecipient>& due,
                                         const std::filesystem::path&) override {
        std::vector<std::string> got;
        for (const auto& r : due) got.push_back(r.address);
        passes.push_back(got);
        if (passes.size() == 1) throw TemporaryError("not yet");
        std::vector<RecipientResult> out;
        for (const auto& r : due) out.push_back({r.id, Outcome::delivered, "2.0.0", "done", {}, false});
        return out;
    }
    std::vector<std::vector<std::string>> passes;
};

TEST(RunnerTest, ProcessorGetsEveryPendingRecipientOnceOneIsDue) {
    // The recipients of a deferred message get retry times of their own; the processor,
    // which handles the message as a whole, must still see them together.
    test::TempDir dir("pecd-runner");
    auto db = store::open_sqlite((dir.path() / "pecd.db").string());
    const auto t0 = TimePoint(std::chrono::hours(24 * 20000));
    ManualClock clock(t0);
    SpoolOptions so;
    so.min_free_bytes = 1 << 20;
    Spool spool(*db, dir.path() / "queue", clock, so);
    LocalRouter router;
    GateTransport transport;
    transport.open();
    Runner runner(spool, router, transport, clock);
    WholeProcessor processor;
    runner.set_processor(&processor);
    Envelope e;
    e.mail_from = "sender@example.test";
    e.recipients = {{"one@example.test", "", ""}, {"two@example.test", "", ""}};
    auto id = spool.enqueue(e, "Subject: x\r\n\r\nbody\r\n", false);
    EXPECT_EQ(runner.run_once(), 1u);
    ASSERT_EQ(processor.passes.size(), 1u);
    EXPECT_EQ(processor.passes[0].size(), 2u);
    auto q = *spool.load(id);
    ASSERT_EQ(q.recipients.size(), 2u);
    EXPECT_EQ(q.recipients[0].state, RecipientState::pending);
    // One recipient due in 10 s, the other in 60 s.
    spool.update(
        id, {{q.recipients[0].id, RecipientState::pending, 1, t0 + std::chrono::seconds(10), "not yet"},
             {q.recipients[1].id, RecipientState::pending, 1, t0 + std::chrono::seconds(60), "not yet"}});
    clock.set(t0 + std::chrono::seconds(10));
    EXPECT_EQ(runner.run_once(), 1u);
    ASSERT_EQ(processor.passes.size(), 2u);
    EXPECT_EQ(processor.passes[1], (std::vector<std::string>{"one@example.test", "two@example.test"}));
    EXPECT_FALSE(spool.load(id)) << "both recipients done in one pass";
    clock.set(t0 + std::chrono::seconds(61));
    EXPECT_EQ(runner.run_once(), 0u);
    EXPECT_EQ(processor.passes.size(), 2u);
}

}  // namespace
}  // namespace pecd::queue
