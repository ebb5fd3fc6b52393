// engine.hpp - the PEC provider flow on the durable queue: access, reception and
//              delivery points, sender-side timers, legal log
//
// The SMTP listeners hand every message to the spool (250 only once it is durable); the
// queue runner then gives the PEC engine (a queue::Processor) each message that belongs
// to a PEC point, as one unit:
//
//   stage      what it is                                  pure decision it applies
//   access     submitted on an access listener by a user   pec::accept_submission
//              of a PEC domain
//   reception  arrived on the MX for a PEC domain, or      pec::verify_message +
//              generated here for a local PEC mailbox      pec::receive_message
//              (listener "pec-reception": same-provider
//              traffic goes through the full process,
//              pec.md 5.5)
//   delivery   a correct transport envelope for local      pec::delivery_notice
//              mailboxes (listener "pec-delivery"); for
//              one mailbox that can take it now, the
//              reception stage does this step itself
//              (store_certified, same transaction)
//
// Every stage works the same way, which is what makes it crash-safe: read, scan, decide
// and build/sign every generated message first (no state touched); write and fsync each
// generated message's file (Spool::write_generated); then ONE transaction, on the spool's
// group committer (whose round fsyncs the spool directory first), inserts their queue
// rows, the tracking changes, the legal-log records and marks the handled recipients
// done. A kill -9 before that commit leaves the input message pending and
// the files orphaned (deleted at the next open), so the stage simply runs again; after
// it, everything is there exactly once. The delivery stage stores into the mailbox and
// queues its receipt in the mailbox store's transaction (MailStore::deliver `also`).
//
// Generated messages are split by destination: recipients in this provider's PEC
// domains get a copy for the reception stage; others a copy with listener "pec-out",
// routed like any mail (MX or next hop; PEC domains of the index get at least `verify`
// TLS, delivery/remote_transport.hpp). Receipts, anomalies and notices kept for local
// mailboxes are plain local deliveries ("pec-store", the runner's local transport).
//
// Antivirus: every submitted message and every valid transport envelope is scanned
// with clamd (of an envelope, the original alone when the rest is the sending provider's
// text and daticert.xml: pec::antivirus_content); when the scanner cannot answer, the
// stage throws and the runner defers the message (retried with backoff): nothing passes
// unscanned. Infected messages go to the quarantine (special storage, pec.md 1).
//
// Timers: a thread runs Tracker::due()/drain() every timer_interval; each 12 h / 24 h
// notice is built and queued inside the drain transaction that marks it done.
// The same pass purges the reception records older than kReceivedMemory.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "av/clamd.hpp"
#include "av/quarantine.hpp"
#include "core/clock.hpp"
#include "crypto/cms.hpp"
#include "crypto/identity.hpp"
#include "crypto/trust_files.hpp"
#include "index/lookup.hpp"
#include "log/legal_log.hpp"
#include "pec/builder.hpp"
#include "pec/formal_checks.hpp"
#include "pec/message_id.hpp"
#include "pec/points/access_point.hpp"
#include "pec/tracking.hpp"
#include "pec/verify.hpp"
#include "queue/runner.hpp"
#include "queue/spool.hpp"
#include "store/mail_store.hpp"

namespace pecd::provider {

// Listener names the engine gives the messages it queues (stored with the envelope).
inline constexpr const char* kReceptionStage = "pec-reception";
inline constexpr const char* kDeliveryStage = "pec-delivery";
inline constexpr const char* kStoreStage = "pec-store";
inline constexpr const char* kOutbound = "pec-out";

struct EngineSettings {
    std::string provider_domain;          // posta-certificata@<provider_domain>
    std::string provider_name;            // daticert gestore-emittente
    std::set<std::string> pec_domains;    // lower-case PEC domains served here
    std::set<std::string> access_listeners;
    std::string hostname;                 // for the quarantine and the logs
    std::string node_id;                  // PEC message ids
    pec::FormalLimits limits;
    pec::tracking::Policy tracking;
    std::chrono::milliseconds timer_interval{30000};
};

// What the engine works with; every pointer outlives the engine.
struct EngineParts {
    queue::Spool* spool = nullptr;
    store::MailStore* mail = nullptr;
    const crypto::IdentitySource* signer = nullptr;  // renewed without restart; one snapshot per message
    const crypto::TrustFiles* trust = nullptr;      // roots of provider signing certificates, CRLs
    const index::ProviderLookup* index = nullptr;   // null: every recipient is esterno
    const av::ClamdClient* scanner = nullptr;       // null: antivirus off (only by explicit setting)
    av::Quarantine* quarantine = nullptr;
    log::LegalLog* legal_log = nullptr;             // null: no legal log (benchmarks)
    const Clock* clock = &SystemClock::instance();
};

enum class Stage { none, access, reception, delivery };

class Engine final : public queue::Processor {
public:
    Engine(EngineSettings settings, EngineParts parts);
    ~Engine() override;
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    Stage stage_of(const queue::QueuedMessage& m) const;
    bool handles(const queue::QueuedMessage& m) const override { return stage_of(m) != Stage::none; }
    std::vector<queue::RecipientResult> process(const queue::QueuedMessage& m,
                                                const std::vector<queue::QueuedRecipient>& due,
                                                const std::filesystem::path& data) override;

    // The timer thread (12 h / 24 h notices).
    void start();
    void stop();
    // One pass of the timers now; returns the notices queued.
    std::size_t run_timers_once();
    // Forgets PEC messages received more than kReceivedMemory before `now` (the records
    // that make a repeated SMTP delivery a duplicate); returns how many records went.
    std::size_t purge_received(TimePoint now);
    // Longer than any sender keeps retrying a message (ordinary mail: 5 days in pecd and
    // in common MTAs), so a repeat can only come while its first copy is remembered.
    static constexpr std::chrono::hours kReceivedMemory{7 * 24};

    pec::tracking::Tracker& tracker() { return *tracker_; }
    bool is_pec_domain(std::string_view domain) const;

private:
    struct Output;     // generated messages of one stage, with their queue destinations
    struct LocalCopy;  // a message for one of our own mailboxes, stored by the stage itself
    std::vector<queue::RecipientResult> access(const queue::QueuedMessage& m,
                                               const std::vector<queue::QueuedRecipient>& due,
                                               const std::string& raw);
    std::vector<queue::RecipientResult> reception(const queue::QueuedMessage& m,
                                                  const std::vector<queue::QueuedRecipient>& due,
                                                  const std::filesystem::path& data, const std::string& raw);
    std::vector<queue::RecipientResult> delivery(const queue::QueuedMessage& m,
                                                 const std::vector<queue::QueuedRecipient>& due,
                                                 const std::filesystem::path& data, const std::string& raw);
    store::DeliveryOutcome store_certified(const queue::QueuedMessage& m, const std::filesystem::path& data,
                                           const std::string& raw, const pec::PecVerification& v,
                                           const std::string& recipient, const std::string& key,
                                           const std::function<void(store::Tx&)>& also);
    log::Event delivery_event(const pec::PecVerification& v, const std::string& recipient,
                              TimePoint time) const;
    pec::ScanVerdict scan(std::string_view content, const char* point) const;
    void add_generated(Output& out, const pec::BuiltMessage& built, bool for_store) const;
    void commit(Output& out, const std::function<void(store::Tx&)>& also);
    std::optional<LocalCopy> local_copy(const std::string& address, std::uint64_t size) const;
    // commit(), with `copy` stored in its mailbox in the same transaction; when the mailbox
    // cannot take it now, `queue_it` adds it to `out` to go through the queue instead.
    void commit_with(Output& out, const std::optional<LocalCopy>& copy, const std::function<void()>& queue_it,
                     const std::function<void(store::Tx&)>& also);
    void log(store::Tx& tx, log::Event e) const;
    std::string quarantine(const std::string& raw, const Envelope& env, const char* point,
                           const std::string& virus, const std::string& pec_msgid,
                           const std::string& client_msgid) const;
    void timer_loop();

    EngineSettings settings_;
    EngineParts parts_;
    pec::MessageIdGenerator ids_;
    std::unique_ptr<pec::tracking::Tracker> tracker_;
    std::mutex timer_mutex_;
    std::condition_variable timer_cv_;
    bool stopping_ = false;
    std::thread timer_thread_;
};

}  // namespace pecd::provider
