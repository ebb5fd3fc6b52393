// spool.hpp - the durable queue: message files plus envelope rows, accepted with group commit
//
// Layout under the spool directory: msg/<queue id> holds the message bytes exactly as
// received (CRLF, not dot-stuffed); spare/ holds emptied files waiting to be reused. The database (module
// "queue") holds the envelope: queue_messages (one row per message) and queue_recipients (one row per
// recipient, with its state pending | delivered | failed, attempts, next attempt time and last error).
//
// Accepting (MessageSink, see sink.hpp): begin() creates msg/<id> and DATA is written to
// it while it arrives; commit() hands the file to a pool of sync threads (fsync of the
// file, many in parallel so the file system can merge them into one journal commit), then
// to the GroupCommitter: one fsync of msg/ and one transaction inserting the rows of every
// message of the round. The commit callback fires only after that transaction is durable.
// With SpoolOptions::file_system_sync, files are not synced one by one: each round syncs
// the file system once before it commits (core/file_system_sync.hpp).
//
// Crash safety: the rows are the truth. At open, files in msg/ without rows were never
// acknowledged and are deleted; messages whose recipients are all done are finished.
// Rows can never lack their file, because the file and the directory are synced before
// the rows are committed.
//
// Failures while receiving (disk full, I/O error, too little free space at begin()) are
// TemporaryError or a failed CommitResult, and leave no file and no row.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/clock.hpp"
#include "core/envelope.hpp"
#include "core/error.hpp"
#include "core/file_system_sync.hpp"
#include "queue/group_commit.hpp"
#include "queue/retry.hpp"
#include "queue/sink.hpp"
#include "queue/spare_files.hpp"
#include "store/database.hpp"

namespace pecd::queue {

enum class RecipientState { pending, delivered, failed };

struct QueuedRecipient {
    std::int64_t id = 0;
    std::string address;
    std::string notify;
    std::string orcpt;
    RecipientState state = RecipientState::pending;
    int attempts = 0;
    TimePoint next_attempt{};
    std::string last_error;
};

struct QueuedMessage {
    std::string id;
    Envelope envelope;  // recipients left empty; see `recipients`
    std::uint64_t size = 0;
    bool is_dsn = false;  // generated delivery status notification (never bounced again)
    MessageClass message_class = MessageClass::ordinary;  // decides lifetime and delay notices
    bool delay_warned = false;                            // the one delay notice went out
    std::vector<QueuedRecipient> recipients;
};

struct RecipientUpdate {
    std::int64_t id = 0;
    RecipientState state = RecipientState::pending;
    int attempts = 0;
    TimePoint next_attempt{};
    std::string last_error;
};

struct SpoolOptions {
    // begin() refuses (TemporaryError → 4xx) when the spool's file system has less free
    // space than this plus the declared SIZE.
    std::uint64_t min_free_bytes = 64ull << 20;
    unsigned sync_threads = 4;
    // Crash recovery at open; false for a second process beside the daemon (pecctl).
    bool recover = true;
    // Several nodes on one database (and one shared spool directory): this node's name.
    // Non-empty turns claims on: a node works on a message only while it holds the
    // message's lease (claim()), so two nodes never deliver the same message at once,
    // and the work of a node that died is taken over when its lease expires.
    std::string node;
    std::chrono::seconds lease{600};  // longer than the longest delivery attempt
    // Files of the spool that no queue row names are removed at open only when older
    // than this (zero: all of them). Another node may be writing one right now.
    std::chrono::seconds orphan_age{0};
    // Finished spool files kept, emptied, for reuse by the next ones (spare_files.hpp);
    // 0 unlinks each one. Off with `node` and without `recover`.
    std::size_t spare_files = 4096;
    // Set: spool files are made durable by one file system sync per group-commit round
    // (shared with the mail store's bodies) instead of one fdatasync each and the
    // directory's fsync; sync_threads is then unused.
    std::shared_ptr<FileSystemSync> file_system_sync;
};

// A queue update that found its recipient no longer pending: another worker or node
// recorded it first. The transaction it was part of is rolled back.
class StaleQueueUpdate : public Error {
public:
    using Error::Error;
};

class Spool final : public MessageSink {
public:
    // Opens the queue under dir (creating it), applies migrations and recovers after a
    // crash (see above).
    Spool(store::Database& db, std::filesystem::path dir, const Clock& clock = SystemClock::instance(),
          SpoolOptions options = {});
    ~Spool() override;

    // --- MessageSink ---
    std::unique_ptr<IncomingMessage> begin(const Envelope& envelope) override;

    // Called (on the committer thread, or the thread of notify/enqueue) with the ids of
    // messages just made durable, and whether they came in through the MessageSink or
    // were generated by pecd itself (enqueue, notify).
    enum class Origin { received, generated };
    using CommittedFn = std::function<void(const std::vector<std::string>&, Origin)>;
    void on_committed(CommittedFn fn);

    // Queues a message generated by pecd itself (a DSN) durably; returns its id. `also`
    // runs in the same transaction as the queue rows.
    std::string enqueue(const Envelope& envelope, std::string_view bytes, bool is_dsn,
                        const std::function<void(store::Tx&)>& also = {},
                        MessageClass cls = MessageClass::ordinary);
    // Generated messages queued inside a caller's transaction (the PEC engine queues its
    // receipts in the transaction that records the state change they report):
    //   1. write_generated(bytes) writes and fsyncs the file and returns its queue id;
    //      nothing refers to it yet, and its directory entry is not yet durable;
    //   2. insert_generated(tx, id, ...) adds its rows inside the caller's transaction,
    //      which must run on committer() (each round fsyncs msg/ before it commits) or,
    //      for another transaction, call sync_generated() before it commits;
    //   3. after that transaction commits, notify(ids) hands them to the runner; if it
    //      rolled back, discard(id) removes the file (a crash in between leaves a file
    //      without rows, which the next open deletes as never acknowledged).
    std::string write_generated(std::string_view bytes);
    // Step 1 for a message whose bytes are those of queued message `source` unchanged (a
    // received receipt handed to the store stage): a second name for the same file, so
    // no bytes are written and no inode is allocated. Spool files are never modified.
    std::string link_generated(const std::string& source);
    // fsync of msg/: makes the entries of files written so far durable.
    void sync_generated();
    void insert_generated(store::Tx& tx, const std::string& id, const Envelope& envelope, std::uint64_t size,
                          bool is_dsn, MessageClass cls);
    void notify(const std::vector<std::string>& ids);
    void discard(const std::string& id) noexcept;
    // Sets the class of a queued message (the PEC engine marks its traffic `pec`, whose
    // lifetime is shorter); durable on return. Throws Error when the message is gone.
    void set_message_class(const std::string& id, MessageClass cls);
    // Inside tx: records that the message's delay notice was queued (sent once only).
    static void mark_delay_warned(store::Tx& tx, const std::string& id);

    // --- for the queue runner and pecctl ---
    // The first load() of a message this Spool just committed returns the rows as they
    // were inserted, without a read: a snapshot costs more than its two queries, and
    // every message is loaded once right after its commit. Not with several nodes.
    std::optional<QueuedMessage> load(const std::string& id);
    // Ids of messages with a pending recipient due at or before `now`, oldest first.
    std::vector<std::string> due(TimePoint now, std::size_t limit);
    // The earliest next attempt among pending recipients, if any.
    std::optional<TimePoint> next_due();
    std::vector<QueuedMessage> list(std::size_t limit = 1000);
    // The operator's "retry now" (after a destination came back): every pending recipient
    // of the messages `ids` (all messages when empty) becomes due at once; a running
    // daemon picks them up at its next poll. Returns how many recipients were moved;
    // throws Error naming an id that is not queued.
    std::size_t retry_now(const std::vector<std::string>& ids);
    std::filesystem::path data_path(const std::string& id) const;

    // Takes (or renews) this node's lease on the message; false when another node holds
    // a lease that has not expired. Always true without SpoolOptions::node.
    bool claim(const std::string& id);

    // Applies recipient updates inside tx (used by local delivery to mark a recipient in
    // the same transaction that stores the message). Each update applies only to a
    // recipient still pending; otherwise StaleQueueUpdate (the outcome was recorded by
    // someone else: the whole transaction, with whatever it generated, must not commit).
    static void apply_updates(store::Tx& tx, const std::string& id,
                              const std::vector<RecipientUpdate>& updates);
    // Applies updates durably through the group committer; then, when no recipient is
    // pending any more, removes the message (rows and file). Without updates and `also`
    // it only queues that removal and returns at once.
    void update(const std::string& id, const std::vector<RecipientUpdate>& updates,
                const std::function<void(store::Tx&)>& also = {});
    // Returns once every change submitted before it (such as those queued removals) has
    // been applied.
    void flush();
    // Removes the message when none of its recipients is pending; true if removed.
    bool finish_if_done(const std::string& id);

    GroupCommitter& committer() { return *committer_; }
    store::Database& database() { return db_; }
    const Clock& clock() const { return clock_; }

private:
    class Incoming;
    struct PendingCommit;
    void recover();
    void submit_commit(std::shared_ptr<PendingCommit> c);
    void sync_loop();
    void record_received(std::shared_ptr<PendingCommit> c);
    std::string new_id();
    void check_free_space(std::uint64_t declared) const;
    void write_spool_file(const std::string& id, std::string_view bytes);
    void remember(QueuedMessage m);
    void forget(const std::string& id) noexcept;
    std::optional<QueuedMessage> take_fresh(const std::string& id);

    store::Database& db_;
    std::filesystem::path dir_;
    std::filesystem::path msg_dir_;
    const Clock& clock_;
    SpoolOptions options_;
    SpareFiles spares_;
    std::unique_ptr<GroupCommitter> committer_;
    CommittedFn on_committed_;
    std::mutex committed_mutex_;

    std::mutex sync_mutex_;
    std::condition_variable sync_cv_;
    std::deque<std::shared_ptr<PendingCommit>> sync_queue_;
    bool sync_stopping_ = false;
    std::vector<std::thread> sync_threads_;
    std::atomic<std::uint64_t> counter_{0};
    std::atomic<bool> dir_dirty_{false};

    struct Fresh {
        std::chrono::steady_clock::time_point at;
        QueuedMessage message;
    };
    static constexpr std::size_t kFreshLimit = 8192;
    static constexpr std::chrono::seconds kFreshFor{30};
    std::mutex fresh_mutex_;
    std::unordered_map<std::string, Fresh> fresh_;
};

}  // namespace pecd::queue
