// crash_driver.cpp - the process the crash test kills: accepts and delivers messages
//
//   queue_crash_driver DIR SYNC send FIRST_TOKEN THREADS   commits messages FIRST_TOKEN, +1,
//       ... from THREADS threads through the queue's MessageSink while the runner delivers
//       them to local mailboxes; prints "ACK <token> <queue id>" once a commit is
//       acknowledged. Runs until killed.
//   queue_crash_driver DIR SYNC drain    delivers everything queued, then exits 0.
// SYNC is [store] file_sync: "file" or "file_system".
#include <spdlog/spdlog.h>

#include <atomic>
#include <future>
#include <iostream>
#include <mutex>
#include <thread>

#include "crash_message.hpp"
#include "delivery/mail_system.hpp"

using namespace pecd;

namespace {

void setup(delivery::MailSystem& ms) {
    auto& s = ms.store();
    if (!s.domain("crash.test")) s.add_domain("crash.test");
    for (int i = 0; i < 4; ++i)
        if (!s.mailbox("rcpt" + std::to_string(i) + "@crash.test"))
            s.add_mailbox({"rcpt" + std::to_string(i) + "@crash.test"});
}

int send(delivery::MailSystem& ms, int first, int threads) {
    ms.start();
    std::atomic<int> next{first};
    std::mutex out;
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t)
        ts.emplace_back([&] {
            for (;;) {
                int token = next++;
                Envelope e;
                e.mail_from = "crash@sender.test";
                for (auto& r : test::crash_recipients(token)) e.recipients.push_back({r, "", ""});
                auto m = ms.sink().begin(e);
                auto body = test::crash_body(token);
                for (std::size_t i = 0; i < body.size(); i += 1000)
                    m->write(std::string_view(body).substr(i, 1000));
                std::promise<queue::CommitResult> p;
                auto f = p.get_future();
                m->commit([&](queue::CommitResult r) { p.set_value(std::move(r)); });
                auto r = f.get();
                if (!r.ok) continue;
                std::lock_guard lock(out);
                std::cout << "ACK " << token << " " << r.queue_id << std::endl;
            }
        });
    for (auto& t : ts) t.join();
    return 0;
}

int drain(delivery::MailSystem& ms) {
    for (int round = 0; round < 1000; ++round) {
        if (ms.spool().list(1).empty()) return 0;
        if (ms.runner().run_once() == 0) break;
    }
    return ms.spool().list(1).empty() ? 0 : 3;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4) return 2;
    spdlog::set_level(spdlog::level::warn);  // stdout carries the ACK lines
    delivery::MailSystemOptions o;
    o.data_dir = argv[1];
    o.spool.min_free_bytes = 1 << 20;
    o.runner.workers = 2;
    o.file_system_sync = std::string(argv[2]) == "file_system";
    delivery::MailSystem ms(o);
    setup(ms);
    std::string mode = argv[3];
    if (mode == "send" && argc == 6) return send(ms, std::stoi(argv[4]), std::stoi(argv[5]));
    if (mode == "drain") return drain(ms);
    return 2;
}
