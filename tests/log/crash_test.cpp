// crash_test.cpp - kill -9 while logging under load: the chain stays valid and no
//                  acknowledged record (nor its state change) is missing
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <set>

#include "log/verify.hpp"
#include "log_fixture.hpp"

extern char** environ;

namespace pecd::log::test {
namespace {

using namespace std::chrono;

// Runs the driver until it has acknowledged `acks` records and run for `min_run` (so
// kills also land while a segment is being closed or sealed), or 30 s passed; kills it
// with SIGKILL and returns every sequence number it acknowledged.
std::vector<std::int64_t> run_and_kill(const std::vector<std::string>& args, int acks, milliseconds min_run) {
    int fds[2];
    if (pipe(fds) != 0) throw std::runtime_error("pipe");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid = 0;
    if (posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ) != 0)
        throw std::runtime_error("cannot start " + args[0]);
    posix_spawn_file_actions_destroy(&actions);
    close(fds[1]);
    std::vector<std::int64_t> acked;
    std::string pending;
    auto start = steady_clock::now();
    auto deadline = start + seconds(30);
    bool killed = false;
    char buf[4096];
    while (steady_clock::now() < deadline) {
        if (!killed && static_cast<int>(acked.size()) >= acks && steady_clock::now() - start >= min_run) {
            kill(pid, SIGKILL);
            killed = true;
        }
        pollfd p{fds[0], POLLIN, 0};
        if (poll(&p, 1, 100) <= 0) continue;
        ssize_t n = read(fds[0], buf, sizeof buf);
        if (n <= 0) break;  // the driver is gone and its output drained
        pending.append(buf, static_cast<std::size_t>(n));
        for (std::size_t nl; (nl = pending.find('\n')) != std::string::npos; pending.erase(0, nl + 1))
            if (pending.starts_with("ack ")) acked.push_back(std::stoll(pending.substr(4, nl - 4)));
    }
    if (!killed) kill(pid, SIGKILL);
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return acked;
}

TEST(LogCrash, KillNineUnderLoadKeepsTheChainAndEveryAcknowledgedRecord) {
    TempDir dir;
    make_provider_identity(dir);
    std::vector<std::string> args = {LOG_CRASH_DRIVER, (dir / "pecd.db").string(),
                                     (dir / "provider.pem").string(), (dir / "provider.key").string()};
    std::set<std::int64_t> all_acked;
    for (int round = 0; round < 4; ++round) {
        auto acked = run_and_kill(args, 40 + 60 * round, milliseconds(350 * round));
        ASSERT_FALSE(acked.empty()) << "round " << round << ": the driver acknowledged nothing";
        all_acked.insert(acked.begin(), acked.end());

        auto db = store::open_sqlite((dir / "pecd.db").string());
        LegalLog log(*db);
        auto report = verify_log(log);
        ASSERT_TRUE(report.ok()) << "round " << round << ": " << report.problems.front().what;
        EXPECT_GE(log.head_seq(), *all_acked.rbegin());
        auto records = log.records(1, log.head_seq());
        std::set<std::int64_t> present;
        for (const auto& r : records) present.insert(r.seq);
        for (auto seq : all_acked)
            ASSERT_TRUE(present.count(seq)) << "acknowledged record " << seq << " is missing";
        std::int64_t states = 0;
        db->read(
            [&](store::Tx& tx) { states = tx.query_one("SELECT COUNT(*) FROM test_state")->integer(0); });
        EXPECT_EQ(states, log.head_seq());  // every record has its state change and vice versa
    }
}

}  // namespace
}  // namespace pecd::log::test
