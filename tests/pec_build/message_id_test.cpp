// message_id_test.cpp - PEC msgids are unique across generators, nodes and calls
#include "pec/message_id.hpp"

#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <thread>

using namespace pecd;
using namespace pecd::pec;

TEST(MessageId, FormAndDomain) {
    MessageIdGenerator g("PEC.Test.IT", "node a/1");
    auto id = g.next(TimePoint{} + std::chrono::hours(24 * 365 * 55));
    EXPECT_TRUE(
        std::regex_match(id, std::regex(R"(pecd\.\d{14}\.node-a-1\.\d+\.1\.[0-9a-f]{8}@pec\.test\.it)")))
        << id;
}

TEST(MessageId, UniqueAcrossThreadsAndTwoNodesInTheSameSecond) {
    MessageIdGenerator a("pec.test.it", "node-a");
    MessageIdGenerator a_restarted("pec.test.it", "node-a");  // same node, counter from 1 again
    MessageIdGenerator b("pec.test.it", "node-b");
    TimePoint t = std::chrono::system_clock::now();
    std::set<std::string> seen;
    std::mutex m;
    auto work = [&](MessageIdGenerator& g) {
        std::vector<std::string> local;
        for (int i = 0; i < 20000; ++i) local.push_back(g.next(t));
        std::lock_guard lock(m);
        seen.insert(local.begin(), local.end());
    };
    std::thread t1(work, std::ref(a)), t2(work, std::ref(a)), t3(work, std::ref(b)),
        t4(work, std::ref(a_restarted));
    t1.join();
    t2.join();
    t3.join();
    t4.join();
    EXPECT_EQ(seen.size(), 80000u);
}
