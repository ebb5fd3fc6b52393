// runner_test.cpp - the queue runner's order of work
#include "queue/runner.hpp"

#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <mutex>

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

}  // namespace
}  // namespace pecd::queue
