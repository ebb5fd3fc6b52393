// crash_test.cpp - kill -9 while messages are accepted and delivered; nothing acknowledged
// is lost, nothing is delivered twice, nothing half-written becomes visible
//
// A driver process (crash_driver.cpp) commits messages from several threads through the
// queue's MessageSink while the runner delivers them to local mailboxes, and prints each
// acknowledgement. The test kills it with SIGKILL at several points, restarts it, and at
// the end lets it drain the queue. Then every acknowledged message must be in each of its
// recipients' mailboxes exactly once, byte for byte; every stored message must be a
// complete one; the queue must be empty.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <set>
#include <sstream>

#include "crash_message.hpp"
#include "delivery/mail_system.hpp"
#include "temp_dir.hpp"

namespace pecd {
namespace {

struct Child {
    pid_t pid = -1;
    int out = -1;
};

Child spawn(const std::vector<std::string>& args) {
    int fds[2];
    if (::pipe(fds) != 0) throw std::runtime_error("pipe");
    pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(fds[1], 1);
        ::close(fds[0]);
        ::close(fds[1]);
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    ::close(fds[1]);
    return {pid, fds[0]};
}

// Reads ACK lines until `want` more were seen or the deadline passes; returns them.
std::map<int, std::string> read_acks(Child& c, std::size_t want, std::chrono::seconds limit,
                                     std::string& partial) {
    std::map<int, std::string> acks;
    auto deadline = std::chrono::steady_clock::now() + limit;
    char buf[4096];
    while (acks.size() < want && std::chrono::steady_clock::now() < deadline) {
        pollfd p{c.out, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        auto n = ::read(c.out, buf, sizeof buf);
        if (n <= 0) break;
        partial.append(buf, static_cast<std::size_t>(n));
        std::size_t nl;
        while ((nl = partial.find('\n')) != std::string::npos) {
            std::istringstream line(partial.substr(0, nl));
            partial.erase(0, nl + 1);
            std::string word, id;
            int token;
            if (line >> word >> token >> id && word == "ACK") acks[token] = id;
        }
    }
    return acks;
}

// Each file synced on its own (the default), or one file system sync per commit round
// ([store] file_sync = "file_system"): the driver's third word.
class CrashTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CrashTest, KillNineAtSeveralPointsLosesAndDuplicatesNothing) {
    test::TempDir dir("pecd-crash");
    const std::string file_sync = GetParam();
    const std::string driver = QUEUE_CRASH_DRIVER;
    std::map<int, std::string> acked;
    // Kill points: early (during setup and first commits), then at growing depths.
    const std::vector<std::size_t> kill_after = {1, 40, 15, 80, 5, 60};
    int first_token = 0;
    for (std::size_t round = 0; round < kill_after.size(); ++round) {
        auto child =
            spawn({driver, dir.path().string(), file_sync, "send", std::to_string(first_token), "6"});
        std::string partial;
        auto acks = read_acks(child, kill_after[round], std::chrono::seconds(30), partial);
        ::kill(child.pid, SIGKILL);
        // What was already written to the pipe before the kill was acknowledged too.
        auto rest = read_acks(child, SIZE_MAX, std::chrono::seconds(2), partial);
        acks.insert(rest.begin(), rest.end());
        int status = 0;
        ::waitpid(child.pid, &status, 0);
        ::close(child.out);
        ASSERT_TRUE(WIFSIGNALED(status)) << "driver exited by itself in round " << round;
        ASSERT_GE(acks.size(), kill_after[round]) << "driver too slow in round " << round;
        acked.insert(acks.begin(), acks.end());
        first_token += 100000;  // tokens of each round are distinct
    }
    auto drain = spawn({driver, dir.path().string(), file_sync, "drain"});
    int status = 0;
    ::waitpid(drain.pid, &status, 0);
    ::close(drain.out);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "drain failed";

    delivery::MailSystemOptions o;
    o.data_dir = dir.path();
    o.spool.min_free_bytes = 1 << 20;
    delivery::MailSystem ms(o);
    EXPECT_TRUE(ms.spool().list().empty()) << "queue not empty after drain";
    std::map<std::string, std::multiset<int>> found;  // mailbox -> tokens
    for (int i = 0; i < 4; ++i) {
        auto box = "rcpt" + std::to_string(i) + "@crash.test";
        for (const auto& m : ms.store().messages(box)) {
            auto bytes = ms.store().read_message(box, m.id);
            auto pos = bytes.find("X-Token: ");
            ASSERT_NE(pos, std::string::npos) << "message without token in " << box;
            int token = std::stoi(bytes.substr(pos + 9));
            EXPECT_EQ(bytes, test::crash_body(token))
                << "incomplete or altered message " << token << " in " << box;
            found[box].insert(token);
        }
    }
    for (const auto& [token, id] : acked)
        for (const auto& box : test::crash_recipients(token))
            EXPECT_EQ(found[box].count(token), 1u)
                << "acknowledged message " << token << " (" << id << ") in " << box;
    for (const auto& [box, tokens] : found)
        for (int t : tokens) EXPECT_EQ(tokens.count(t), 1u) << "duplicate " << t << " in " << box;
    std::size_t files = 0;
    for (auto& e : std::filesystem::directory_iterator(dir.path() / "spool" / "msg")) (void)e, ++files;
    EXPECT_EQ(files, 0u) << "spool files left behind";
    std::cerr << "acknowledged " << acked.size() << " messages over " << kill_after.size() << " kills\n";
}

INSTANTIATE_TEST_SUITE_P(FileSync, CrashTest, ::testing::Values("file", "file_system"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace
}  // namespace pecd
