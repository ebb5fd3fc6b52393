// runner.hpp - the queue runner: picks due deliveries, hands them to transports, records
//              the outcome, retries with backoff, and bounces permanent failures (DSN)
//
// A message is handed over as soon as it is committed (no polling delay) and again
// whenever a pending recipient comes due; the database is polled every `poll` for due
// retries. One message is worked on by at most one worker at a time. Messages pecd
// generated itself (receipts, envelopes, notices: the rest of a flow already under way)
// are taken before newly received ones and due retries, so a backlog of new mail delays
// new mail and not the receipts of mail already accepted. Its pending
// recipients are grouped by route (Router) and each group goes to the Transport in one
// attempt (one SMTP/LMTP transaction with many RCPTs).
//
// Outcomes per recipient: delivered → done; deferred → retried per RetryPolicy until the
// message's lifetime ends, then failed with 4.4.7; failed → done, and a DSN to the sender
// (dsn.hpp rules) is queued in the same transaction that marks the recipient failed, so a
// crash can neither lose nor duplicate it. A transport that records its own result (the
// local mailbox store marks the queue in the transaction that stores the message) says so
// with `recorded`. A transport that throws counts as a deferral of its whole group.
// Recipients are grouped by route and destination domain (TLS policy and MX hosts are
// per domain). Ordinary mail still deferred `retry.delay_warning` after arrival gets one
// delay notice (action=delayed) to the sender, queued in the transaction that marks the
// message warned. Lifetimes depend on the message class (retry.hpp).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_set>
#include <vector>

#include "queue/dsn.hpp"
#include "queue/retry.hpp"
#include "queue/spool.hpp"
#include "store/route.hpp"

namespace pecd::queue {

enum class Outcome { delivered, deferred, failed };

struct RecipientResult {
    std::int64_t recipient_id = 0;
    Outcome outcome = Outcome::deferred;
    std::string status;      // enhanced status code, e.g. "2.0.0", "4.4.1", "5.1.1"
    std::string diagnostic;  // the peer's reply or our reason, one line
    std::string remote_mta;  // host that answered, empty for local delivery
    bool recorded = false;   // the transport already updated the queue row
};

struct DeliveryAttempt {
    const QueuedMessage& message;
    std::vector<QueuedRecipient> recipients;  // pending ones for this route
    std::filesystem::path data;               // the message bytes
    store::Route route;
};

class Transport {
public:
    virtual ~Transport() = default;
    // One result per recipient of the attempt (missing ones count as deferred).
    virtual std::vector<RecipientResult> deliver(const DeliveryAttempt& attempt) = 0;
};

// Takes whole messages before routing: the PEC engine consumes what arrives at the access
// and reception points (and what it queued for its delivery point) as one transaction
// per message, and queues what it generates. handles() decides from the stored envelope
// alone (listener, sender, recipients); process() gets every pending recipient once one
// of them is due (the message is handled as a whole, never in two passes), and
// returns one result per recipient. A processor that marked its recipients in its own
// transaction says so with `recorded`; one that throws defers them all (retried with
// backoff like a transport failure).
class Processor {
public:
    virtual ~Processor() = default;
    virtual bool handles(const QueuedMessage& message) const = 0;
    virtual std::vector<RecipientResult> process(const QueuedMessage& message,
                                                 const std::vector<QueuedRecipient>& due,
                                                 const std::filesystem::path& data) = 0;
};

class Router {
public:
    virtual ~Router() = default;
    // Where mail for this address goes; nullopt when pecd has no route for it.
    virtual std::optional<store::Route> route_for(std::string_view address) = 0;
};

struct RunnerOptions {
    unsigned workers = 64;  // [outbound] queue_workers
    RetryPolicy retry;
    std::string hostname = "localhost";  // Reporting-MTA of DSNs
    std::chrono::milliseconds poll{1000};
    std::size_t batch = 500;  // due messages fetched per poll
};

class Runner {
public:
    Runner(Spool& spool, Router& router, Transport& transport, const Clock& clock = SystemClock::instance(),
           RunnerOptions options = {});
    ~Runner();
    Runner(const Runner&) = delete;
    Runner& operator=(const Runner&) = delete;

    // Messages the processor handles go to it instead of the router (set before start()).
    void set_processor(Processor* p) { processor_ = p; }
    // Starts the workers and the poller, and listens to the spool's commits.
    void start();
    void stop();
    // Makes the poller look for due work now (after a clock change in tests, or pecctl).
    void wake();
    // Without threads: works on every message due now, once, and waits until finished
    // messages are removed; returns how many.
    std::size_t run_once();
    // Messages currently queued for or held by a worker.
    std::size_t busy() const;
    // Of those, the ones not handed to a transport: the work this process still has to
    // do itself. A delivery that waits for a slow peer is not part of it.
    std::size_t backlog() const;

private:
    void process(const std::string& id);
    void process_whole(const QueuedMessage& m, std::vector<QueuedRecipient> due,
                       std::vector<RecipientResult>& results);
    void deliver_group(const QueuedMessage& m, const store::Route& route, std::vector<QueuedRecipient> rcpts,
                       std::vector<RecipientResult>& results);
    void record(const QueuedMessage& m, const std::vector<RecipientResult>& results);
    DsnInput dsn_input(const QueuedMessage& m, TimePoint now, std::vector<DsnRecipient> recipients,
                       std::string_view kind);
    std::string queue_notification(const QueuedMessage& m, const DsnInput& in,
                                   const std::function<void(store::Tx&)>& also);
    void enqueue_ids(const std::vector<std::string>& ids, bool urgent = false);
    void poller();
    void worker();
    double random01();

    Spool& spool_;
    Router& router_;
    Transport& transport_;
    Processor* processor_ = nullptr;
    const Clock& clock_;
    RunnerOptions options_;

    mutable std::mutex mutex_;
    std::condition_variable work_cv_;
    std::condition_variable poll_cv_;
    std::deque<std::string> urgent_;  // generated by pecd: served first
    std::deque<std::string> ready_;
    std::unordered_set<std::string> known_;  // in urgent_ / ready_ or being processed
    std::atomic<std::size_t> in_transport_{0};  // deliver_group() calls under way
    bool stopping_ = false;
    bool poke_ = false;
    std::vector<std::thread> threads_;
    std::mutex random_mutex_;
    std::mt19937_64 random_{std::random_device{}()};
};

}  // namespace pecd::queue
