// runner.cpp - the queue runner (see runner.hpp for the contract)
#include "queue/runner.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <fstream>
#include <map>

#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/strings.hpp"
#include "core/wake_up.hpp"
#include "queue/dsn.hpp"

namespace pecd::queue {
namespace {

// The part of the original enclosed in a DSN: the whole message when it is small enough,
// otherwise only what is needed to find the header block.
std::string read_for_dsn(const std::filesystem::path& p, std::uint64_t size, std::uint64_t full_limit) {
    if (size <= full_limit) return fs::read_file(p);
    std::ifstream in(p, std::ios::binary);
    std::string head(256 * 1024, '\0');
    in.read(head.data(), static_cast<std::streamsize>(head.size()));
    head.resize(static_cast<std::size_t>(in.gcount()));
    return head;
}

}  // namespace

Runner::Runner(Spool& spool, Router& router, Transport& transport, const Clock& clock, RunnerOptions options)
    : spool_(spool), router_(router), transport_(transport), clock_(clock), options_(std::move(options)) {}

Runner::~Runner() {
    stop();
}

void Runner::start() {
    {
        std::lock_guard lock(mutex_);
        if (!threads_.empty()) return;
        stopping_ = false;
    }
    spool_.on_committed([this](const std::vector<std::string>& ids, Spool::Origin origin) {
        enqueue_ids(ids, origin == Spool::Origin::generated);
    });
    for (unsigned i = 0; i < std::max(1u, options_.workers); ++i) threads_.emplace_back([this] { worker(); });
    threads_.emplace_back([this] { poller(); });
}

void Runner::stop() {
    spool_.on_committed({});
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    work_cv_.notify_all();
    poll_cv_.notify_all();
    for (auto& t : threads_) t.join();
    threads_.clear();
    std::lock_guard lock(mutex_);
    urgent_.clear();
    ready_.clear();
    known_.clear();
}

void Runner::wake() {
    {
        std::lock_guard lock(mutex_);
        poke_ = true;
    }
    poll_cv_.notify_all();
}

std::size_t Runner::busy() const {
    std::lock_guard lock(mutex_);
    return known_.size();
}

std::size_t Runner::backlog() const {
    std::size_t held = busy(), away = in_transport_.load();
    return held > away ? held - away : 0;
}

std::size_t Runner::run_once() {
    auto ids = spool_.due(clock_.now(), options_.batch);
    for (auto& id : ids) process(id);
    // Callers look at the queue afterwards: the removals of finished messages are done.
    spool_.flush();
    return ids.size();
}

void Runner::enqueue_ids(const std::vector<std::string>& ids, bool urgent) {
    std::size_t added = 0;
    {
        std::lock_guard lock(mutex_);
        if (stopping_) return;
        auto& lane = urgent ? urgent_ : ready_;
        for (const auto& id : ids)
            if (known_.insert(id).second) {
                lane.push_back(id);
                ++added;
            }
    }
    // One item wakes one worker; a wake-up glibc loses is made up by the worker's next
    // look (wait_rechecking), where it would otherwise strand the item while idle.
    if (added == 1)
        work_cv_.notify_one();
    else if (added > 1)
        work_cv_.notify_all();
}

void Runner::poller() {
    for (;;) {
        try {
            enqueue_ids(spool_.due(clock_.now(), options_.batch));
        } catch (const std::exception& e) {
            spdlog::warn("queue: cannot read due messages: {}", e.what());
        }
        std::unique_lock lock(mutex_);
        poll_cv_.wait_for(lock, options_.poll, [&] { return stopping_ || poke_; });
        poke_ = false;
        if (stopping_) return;
    }
}

void Runner::worker() {
    for (;;) {
        std::string id;
        {
            std::unique_lock lock(mutex_);
            wait_rechecking(work_cv_, lock, [&] { return stopping_ || !urgent_.empty() || !ready_.empty(); });
            if (stopping_) return;
            auto& lane = urgent_.empty() ? ready_ : urgent_;
            id = std::move(lane.front());
            lane.pop_front();
        }
        try {
            process(id);
        } catch (const std::exception& e) {
            spdlog::warn("queue: {}: delivery round failed: {}", id, e.what());
        }
        std::lock_guard lock(mutex_);
        known_.erase(id);
    }
}

double Runner::random01() {
    std::lock_guard lock(random_mutex_);
    return std::uniform_real_distribution<double>(0.0, 1.0)(random_);
}

void Runner::process(const std::string& id) {
    // With several nodes, only the holder of the message's lease works on it.
    if (!spool_.claim(id)) return;
    auto m = spool_.load(id);
    if (!m) return;
    auto now = clock_.now();
    std::map<std::string, std::pair<store::Route, std::vector<QueuedRecipient>>> groups;
    std::vector<RecipientResult> results;
    bool any = false;
    const bool whole = processor_ && processor_->handles(*m);
    // A processor takes the message as a whole (the PEC access point certifies it once,
    // for all its recipients): when one pending recipient is due, every pending one goes
    // with it. Retries are scheduled per recipient, with jitter, so the recipients of one
    // deferred message drift apart; handled in two passes, it would be certified twice.
    const bool whole_now =
        whole && std::any_of(m->recipients.begin(), m->recipients.end(), [&](const QueuedRecipient& r) {
            return r.state == RecipientState::pending && r.next_attempt <= now;
        });
    std::vector<QueuedRecipient> whole_due;
    for (const auto& r : m->recipients) {
        if (r.state != RecipientState::pending || (r.next_attempt > now && !whole_now)) continue;
        any = true;
        if (expired(options_.retry, m->message_class, m->envelope.received_at, now)) {
            results.push_back({r.id, Outcome::deferred, "4.4.7", r.last_error, {}, false});
            continue;
        }
        if (whole) {
            whole_due.push_back(r);
            continue;
        }
        std::optional<store::Route> route;
        try {
            route = router_.route_for(r.address);
        } catch (const std::exception& e) {
            results.push_back({r.id, Outcome::deferred, "4.3.0", e.what(), {}, false});
            continue;
        }
        if (!route) {
            results.push_back(
                {r.id, Outcome::deferred, "4.4.0", "no route to " + domain_of(r.address), {}, false});
            continue;
        }
        // One attempt per route and destination domain: the TLS policy and, for MX routes,
        // the hosts to try belong to the domain.
        auto& g = groups[store::to_string(*route) + "|" + to_lower(domain_of(r.address))];
        g.first = *route;
        g.second.push_back(r);
    }
    if (!any) {
        spool_.finish_if_done(id);
        return;
    }
    if (!whole_due.empty()) process_whole(*m, std::move(whole_due), results);
    for (auto& [key, g] : groups) deliver_group(*m, g.first, std::move(g.second), results);
    record(*m, results);
}

void Runner::process_whole(const QueuedMessage& m, std::vector<QueuedRecipient> due,
                           std::vector<RecipientResult>& results) {
    std::vector<RecipientResult> got;
    std::string error;
    try {
        got = processor_->process(m, due, spool_.data_path(m.id));
    } catch (const std::exception& e) {
        error = e.what();
    }
    for (const auto& r : due) {
        auto it = std::find_if(got.begin(), got.end(),
                               [&](const RecipientResult& x) { return x.recipient_id == r.id; });
        if (it != got.end())
            results.push_back(*it);
        else
            results.push_back(
                {r.id, Outcome::deferred, "4.3.0", error.empty() ? "not processed" : error, {}, false});
    }
}

void Runner::deliver_group(const QueuedMessage& m, const store::Route& route,
                           std::vector<QueuedRecipient> rcpts, std::vector<RecipientResult>& results) {
    DeliveryAttempt attempt{m, rcpts, spool_.data_path(m.id), route};
    std::vector<RecipientResult> got;
    std::string error;
    try {
        struct Away {  // counted out of backlog() while the transport has it
            std::atomic<std::size_t>& n;
            explicit Away(std::atomic<std::size_t>& c) : n(c) { ++n; }
            ~Away() { --n; }
        } away(in_transport_);
        got = transport_.deliver(attempt);
    } catch (const std::exception& e) {
        error = e.what();
    }
    for (const auto& r : rcpts) {
        auto it = std::find_if(got.begin(), got.end(),
                               [&](const RecipientResult& x) { return x.recipient_id == r.id; });
        if (it != got.end()) {
            results.push_back(*it);
        } else {
            results.push_back({r.id,
                               Outcome::deferred,
                               "4.3.0",
                               error.empty() ? "no result from " + store::to_string(route) : error,
                               {},
                               false});
        }
    }
}

DsnInput Runner::dsn_input(const QueuedMessage& m, TimePoint now, std::vector<DsnRecipient> recipients,
                           std::string_view kind) {
    DsnInput in;
    in.reporting_mta = options_.hostname;
    in.sender = m.envelope.mail_from;
    in.envid = m.envelope.dsn_envid;
    in.ret = m.envelope.dsn_ret;
    in.queue_id = m.id;
    in.arrival = m.envelope.received_at;
    in.now = now;
    in.message_id = m.id + "." + std::string(kind) + "." + std::to_string(now.time_since_epoch().count()) +
                    "@" + options_.hostname;
    in.original = read_for_dsn(spool_.data_path(m.id), m.size, in.full_limit);
    in.recipients = std::move(recipients);
    return in;
}

std::string Runner::queue_notification(const QueuedMessage& m, const DsnInput& in,
                                       const std::function<void(store::Tx&)>& also) {
    Envelope dsn;
    dsn.recipients.push_back({m.envelope.mail_from, "", ""});
    dsn.received_at = in.now;
    dsn.session.listener = "dsn";
    return spool_.enqueue(dsn, build_dsn(in), true, also);
}

void Runner::record(const QueuedMessage& m, const std::vector<RecipientResult>& results) {
    auto now = clock_.now();
    std::vector<RecipientUpdate> updates;
    std::vector<DsnRecipient> bounced;
    std::vector<DsnRecipient> delayed;
    const bool warn =
        delay_warning_due(options_.retry, m.message_class, m.delay_warned, m.envelope.received_at, now);
    for (const auto& res : results) {
        auto rit = std::find_if(m.recipients.begin(), m.recipients.end(),
                                [&](const QueuedRecipient& r) { return r.id == res.recipient_id; });
        if (rit == m.recipients.end()) continue;
        const auto& r = *rit;
        int attempts = r.attempts + 1;
        if (res.outcome == Outcome::delivered) {
            spdlog::info("queue: {}: to=<{}> delivered via {}: {}", m.id, r.address,
                         res.remote_mta.empty() ? "local" : res.remote_mta, res.diagnostic);
            if (!res.recorded)
                updates.push_back({r.id, RecipientState::delivered, attempts, now, res.diagnostic});
            continue;
        }
        Outcome outcome = res.outcome;
        std::string status =
            res.status.empty() ? (outcome == Outcome::failed ? "5.0.0" : "4.0.0") : res.status;
        std::string diagnostic = res.diagnostic;
        if (outcome == Outcome::deferred &&
            expired(options_.retry, m.message_class, m.envelope.received_at, now)) {
            outcome = Outcome::failed;
            diagnostic = "delivery time expired" + (diagnostic.empty() ? "" : "; last error: " + diagnostic);
            status = "4.4.7";
        }
        if (outcome == Outcome::deferred) {
            auto next = next_attempt(options_.retry, attempts, now, random01());
            spdlog::info("queue: {}: to=<{}> deferred (attempt {}): {}", m.id, r.address, attempts,
                         diagnostic);
            updates.push_back({r.id, RecipientState::pending, attempts, next, diagnostic});
            if (warn && wants_delay_dsn(m.envelope.mail_from, r.notify, m.is_dsn))
                delayed.push_back({r.address, r.orcpt, "delayed", status, diagnostic, res.remote_mta});
            continue;
        }
        spdlog::info("queue: {}: to=<{}> failed: {}", m.id, r.address, diagnostic);
        if (!res.recorded) updates.push_back({r.id, RecipientState::failed, attempts, now, diagnostic});
        if (wants_failure_dsn(m.envelope.mail_from, r.notify, m.is_dsn))
            bounced.push_back({r.address, r.orcpt, "failed", status, diagnostic, res.remote_mta});
    }
    if (bounced.empty() && delayed.empty()) {
        try {
            spool_.update(m.id, updates);
        } catch (const StaleQueueUpdate& e) {
            spdlog::info("{}", e.what());
        }
        return;
    }
    // The recipient updates go in the transaction of the first notification queued, so a
    // crash can neither lose a notice nor send one twice.
    bool updated = false;
    if (!delayed.empty()) {
        auto in = dsn_input(m, now, std::move(delayed), "delay");
        in.ret = "HDRS";  // a warning, not a return: the message is still on its way
        in.will_retry_until = m.envelope.received_at + lifetime_of(options_.retry, m.message_class);
        auto id = queue_notification(m, in, [&](store::Tx& tx) {
            Spool::mark_delay_warned(tx, m.id);
            if (bounced.empty()) Spool::apply_updates(tx, m.id, updates);
        });
        updated = bounced.empty();
        spdlog::info("queue: {}: delay notice {} queued to <{}>", m.id, id, m.envelope.mail_from);
    }
    if (!bounced.empty()) {
        auto id = queue_notification(m, dsn_input(m, now, std::move(bounced), "dsn"),
                                     [&](store::Tx& tx) { Spool::apply_updates(tx, m.id, updates); });
        updated = true;
        spdlog::info("queue: {}: sender notification {} queued to <{}>", m.id, id, m.envelope.mail_from);
    }
    if (!updated) spool_.update(m.id, updates);
    spool_.finish_if_done(m.id);
}

}  // namespace pecd::queue
