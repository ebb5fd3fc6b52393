// spool.cpp - the durable queue (see spool.hpp for the contract)
#include "queue/spool.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstring>
#include <random>
#include <unordered_set>
#include <utility>

#include "core/calendar.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/wake_up.hpp"

namespace pecd::queue {
namespace {

const std::vector<store::Migration> kMigrations = {
    {1,
     "CREATE TABLE queue_messages ("
     " id TEXT PRIMARY KEY, mail_from TEXT NOT NULL, dsn_ret TEXT NOT NULL, dsn_envid TEXT NOT NULL,"
     " body_type TEXT NOT NULL, smtputf8 INTEGER NOT NULL, size BIGINT NOT NULL, received_at BIGINT NOT NULL,"
     " is_dsn INTEGER NOT NULL, listener TEXT NOT NULL, client_ip TEXT NOT NULL, helo TEXT NOT NULL,"
     " auth_user TEXT NOT NULL, tls_protocol TEXT NOT NULL);"
     "CREATE TABLE queue_recipients ("
     " id INTEGER PRIMARY KEY, queue_id TEXT NOT NULL REFERENCES queue_messages(id) ON DELETE CASCADE,"
     " address TEXT NOT NULL, notify TEXT NOT NULL, orcpt TEXT NOT NULL,"
     " state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),"
     " attempts INTEGER NOT NULL DEFAULT 0, next_attempt BIGINT NOT NULL, last_error TEXT NOT NULL DEFAULT "
     "'');"
     "CREATE INDEX queue_recipients_by_message ON queue_recipients (queue_id);"
     "CREATE INDEX queue_recipients_due ON queue_recipients (state, next_attempt)"},
    {2,
     "ALTER TABLE queue_messages ADD COLUMN message_class TEXT NOT NULL DEFAULT 'ordinary';"
     "ALTER TABLE queue_messages ADD COLUMN delay_warned INTEGER NOT NULL DEFAULT 0"},
    {3,
     "ALTER TABLE queue_messages ADD COLUMN claim_owner TEXT NOT NULL DEFAULT '';"
     "ALTER TABLE queue_messages ADD COLUMN claim_until BIGINT NOT NULL DEFAULT 0"},
    // The legal log names the cipher of the session a message came in on, not only the
    // protocol version.
    {4, "ALTER TABLE queue_messages ADD COLUMN tls_cipher TEXT NOT NULL DEFAULT ''"},
};

constexpr std::size_t write_buffer_size = 64 * 1024;

std::int64_t to_ms(TimePoint t) {
    return stored_count<std::chrono::milliseconds>(t);
}
TimePoint from_ms(std::int64_t ms) {
    return stored_time<std::chrono::milliseconds>(ms);
}

std::string_view state_name(RecipientState s) {
    switch (s) {
        case RecipientState::pending:
            return "pending";
        case RecipientState::delivered:
            return "delivered";
        case RecipientState::failed:
            return "failed";
    }
    return "pending";
}

RecipientState parse_state(const std::string& s) {
    if (s == "delivered") return RecipientState::delivered;
    if (s == "failed") return RecipientState::failed;
    return RecipientState::pending;
}

std::string errno_text(const std::string& what, const std::filesystem::path& p) {
    return what + " " + p.string() + ": " + std::strerror(errno);
}

std::string class_name(MessageClass c) {
    return c == MessageClass::pec ? "pec" : "ordinary";
}

// Inserts the rows of a new message and returns them as load() would read them back.
QueuedMessage insert_rows(store::Tx& tx, const std::string& id, const Envelope& e, std::uint64_t size,
                          bool is_dsn, MessageClass cls = MessageClass::ordinary) {
    const auto received_ms = to_ms(e.received_at);
    tx.exec(
        "INSERT INTO queue_messages (id, mail_from, dsn_ret, dsn_envid, body_type, smtputf8, size, "
        "received_at,"
        " is_dsn, listener, client_ip, helo, auth_user, tls_protocol, tls_cipher, message_class)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        {id, e.mail_from, e.dsn_ret, e.dsn_envid, e.body_type, std::int64_t{e.smtputf8 ? 1 : 0},
         static_cast<std::int64_t>(size), received_ms, std::int64_t{is_dsn ? 1 : 0}, e.session.listener,
         e.session.client_ip, e.session.helo, e.session.auth_user, e.session.tls_protocol,
         e.session.tls_cipher, class_name(cls)});
    // Only what the rows keep, as load() returns it.
    QueuedMessage q;
    q.id = id;
    q.envelope.mail_from = e.mail_from;
    q.envelope.dsn_ret = e.dsn_ret;
    q.envelope.dsn_envid = e.dsn_envid;
    q.envelope.body_type = e.body_type;
    q.envelope.smtputf8 = e.smtputf8;
    q.envelope.received_at = from_ms(received_ms);
    q.envelope.session.listener = e.session.listener;
    q.envelope.session.client_ip = e.session.client_ip;
    q.envelope.session.helo = e.session.helo;
    q.envelope.session.auth_user = e.session.auth_user;
    q.envelope.session.tls_protocol = e.session.tls_protocol;
    q.envelope.session.tls_cipher = e.session.tls_cipher;
    q.size = size;
    q.is_dsn = is_dsn;
    q.message_class = cls;
    for (const auto& r : e.recipients) {
        QueuedRecipient qr;
        qr.id = tx.insert(
            "INSERT INTO queue_recipients (queue_id, address, notify, orcpt, state, attempts, next_attempt)"
            " VALUES (?, ?, ?, ?, 'pending', 0, ?)",
            {id, r.address, r.notify, r.orcpt, received_ms});
        qr.address = r.address;
        qr.notify = r.notify;
        qr.orcpt = r.orcpt;
        qr.next_attempt = q.envelope.received_at;
        q.recipients.push_back(std::move(qr));
    }
    return q;
}

// Deletes the rows of a message with no pending recipient; true if it did.
bool delete_if_done(store::Tx& tx, const std::string& id) {
    if (tx.query_one("SELECT 1 FROM queue_recipients WHERE queue_id = ? AND state = 'pending' LIMIT 1", {id}))
        return false;
    tx.exec("DELETE FROM queue_recipients WHERE queue_id = ?", {id});
    return tx.exec("DELETE FROM queue_messages WHERE id = ?", {id}) > 0;
}

}  // namespace

struct Spool::PendingCommit {
    std::string id;
    int fd = -1;
    Envelope envelope;
    std::uint64_t size = 0;
    std::function<void(CommitResult)> done;
};

// One message being received: DATA goes straight into msg/<id>.
class Spool::Incoming final : public IncomingMessage {
public:
    Incoming(Spool& spool, std::string id, int fd, std::uint64_t stale_bytes, Envelope envelope)
        : spool_(spool),
          id_(std::move(id)),
          fd_(fd),
          stale_bytes_(stale_bytes),
          envelope_(std::move(envelope)) {
        buffer_.reserve(write_buffer_size);
    }
    ~Incoming() override { abort(); }

    void write(std::string_view chunk) override {
        if (fd_ < 0) throw Error("write after commit or abort");
        if (!error_.empty()) throw TemporaryError(error_);
        size_ += chunk.size();
        if (buffer_.size() + chunk.size() > write_buffer_size) {
            flush();
            if (chunk.size() >= write_buffer_size) {
                write_all(chunk);
                return;
            }
        }
        buffer_.append(chunk);
    }

    void commit(std::function<void(CommitResult)> done) override {
        if (fd_ < 0) {
            done({false, {}, "message already committed or aborted"});
            return;
        }
        try {
            if (!error_.empty()) throw TemporaryError(error_);
            flush();
            if (SpareFiles::trim(fd_, size_, stale_bytes_) != 0)
                throw TemporaryError(errno_text("truncate", spool_.data_path(id_)));
        } catch (const std::exception& e) {
            abort();
            done({false, {}, e.what()});
            return;
        }
        auto c = std::make_shared<PendingCommit>();
        c->id = id_;
        c->fd = std::exchange(fd_, -1);
        c->envelope = std::move(envelope_);
        c->size = size_;
        c->done = std::move(done);
        spool_.submit_commit(std::move(c));
    }

    void abort() noexcept override {
        if (fd_ < 0) return;
        ::close(fd_);
        fd_ = -1;
        spool_.spares_.remove(spool_.data_path(id_));
    }

private:
    void flush() {
        if (buffer_.empty()) return;
        write_all(buffer_);
        buffer_.clear();
    }
    void write_all(std::string_view data) {
        while (!data.empty()) {
            ssize_t n = ::write(fd_, data.data(), data.size());
            if (n < 0) {
                if (errno == EINTR) continue;
                error_ = errno_text("write", spool_.data_path(id_));
                throw TemporaryError(error_);
            }
            data.remove_prefix(static_cast<std::size_t>(n));
        }
    }

    Spool& spool_;
    std::string id_;
    int fd_;
    std::uint64_t stale_bytes_;  // a reused spare's old bytes, cut at commit
    Envelope envelope_;
    std::string buffer_;
    std::uint64_t size_ = 0;
    std::string error_;
};

Spool::Spool(store::Database& db, std::filesystem::path dir, const Clock& clock, SpoolOptions options)
    : db_(db),
      dir_(std::move(dir)),
      msg_dir_(dir_ / "msg"),
      clock_(clock),
      options_(options),
      // Not with several nodes on one spool directory: a node whose lease ran out may
      // still be reading a file that the node taking over finishes, and must find the
      // bytes it started with (an unlinked file keeps them; a reused one would not).
      spares_(dir_ / "spare", options_.spare_files, options_.recover && options_.node.empty()) {
    fs::ensure_dir(dir_, 0750);
    fs::ensure_dir(msg_dir_, 0750);
    db_.migrate("queue", kMigrations);
    if (options_.recover) recover();
    committer_ = std::make_unique<GroupCommitter>(db_, [this] {
        if (auto* fss = options_.file_system_sync.get())
            fss->sync_marked();
        else if (dir_dirty_.exchange(false))
            fs::fsync_dir(msg_dir_);
    });
    // With one file system sync per round, nothing is synced file by file.
    unsigned n = options_.file_system_sync ? 0 : std::max(1u, options_.sync_threads);
    for (unsigned i = 0; i < n; ++i) sync_threads_.emplace_back([this] { sync_loop(); });
}

Spool::~Spool() {
    {
        std::lock_guard lock(sync_mutex_);
        sync_stopping_ = true;
    }
    sync_cv_.notify_all();
    for (auto& t : sync_threads_) t.join();
    committer_->stop();
}

std::filesystem::path Spool::data_path(const std::string& id) const {
    return msg_dir_ / id;
}

void Spool::on_committed(CommittedFn fn) {
    std::lock_guard lock(committed_mutex_);
    on_committed_ = std::move(fn);
}

std::string Spool::new_id() {
    static const std::uint32_t instance = std::random_device{}();
    char buf[48];
    std::snprintf(buf, sizeof buf, "%011" PRIx64 "%08" PRIx32 "%06" PRIx64,
                  static_cast<std::uint64_t>(to_ms(clock_.now())), instance,
                  static_cast<std::uint64_t>(counter_.fetch_add(1) & 0xffffff));
    return buf;
}

void Spool::check_free_space(std::uint64_t declared) const {
    struct statvfs st {};
    if (::statvfs(msg_dir_.c_str(), &st) != 0) throw TemporaryError(errno_text("statvfs", msg_dir_));
    auto available = static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize;
    if (available < options_.min_free_bytes + declared)
        throw TemporaryError("insufficient free space in the queue (" + std::to_string(available) +
                             " bytes)");
}

std::unique_ptr<IncomingMessage> Spool::begin(const Envelope& envelope) {
    if (envelope.recipients.empty()) throw Error("message without recipients");
    check_free_space(envelope.declared_size);
    auto id = new_id();
    auto path = data_path(id);
    std::uint64_t stale = 0;
    int fd = spares_.create_overwriting(path, stale);
    if (fd < 0) throw TemporaryError(errno_text("create", path));
    dir_dirty_ = true;
    Envelope e = envelope;
    if (e.received_at == TimePoint{}) e.received_at = clock_.now();
    return std::make_unique<Incoming>(*this, std::move(id), fd, stale, std::move(e));
}

void Spool::submit_commit(std::shared_ptr<PendingCommit> c) {
    if (options_.file_system_sync) {
        // The round that records it syncs the file system first (FileSystemSync).
        ::close(std::exchange(c->fd, -1));
        options_.file_system_sync->mark();
        record_received(std::move(c));
        return;
    }
    {
        std::lock_guard lock(sync_mutex_);
        if (!sync_stopping_) {
            sync_queue_.push_back(std::move(c));
            sync_cv_.notify_one();
            return;
        }
    }
    ::close(c->fd);
    spares_.remove(data_path(c->id));
    c->done({false, {}, "queue is shutting down"});
}

void Spool::sync_loop() {
    for (;;) {
        std::shared_ptr<PendingCommit> c;
        {
            std::unique_lock lock(sync_mutex_);
            wait_rechecking(sync_cv_, lock, [&] { return sync_stopping_ || !sync_queue_.empty(); });
            if (sync_queue_.empty()) return;
            c = std::move(sync_queue_.front());
            sync_queue_.pop_front();
        }
        int rc = ::fdatasync(c->fd);
        std::string error = rc != 0 ? errno_text("fsync", data_path(c->id)) : std::string();
        ::close(c->fd);
        c->fd = -1;
        if (!error.empty()) {
            spares_.remove(data_path(c->id));
            c->done({false, {}, error});
            continue;
        }
        record_received(std::move(c));
    }
}

void Spool::record_received(std::shared_ptr<PendingCommit> c) {
    committer_->submit(
        [this, c](store::Tx& tx) { remember(insert_rows(tx, c->id, c->envelope, c->size, false)); },
        [this, c](std::exception_ptr e) {
            if (e) {
                forget(c->id);
                spares_.remove(data_path(c->id));
                std::string why = "cannot record message";
                try {
                    std::rethrow_exception(e);
                } catch (const std::exception& ex) {
                    why = ex.what();
                }
                c->done({false, {}, why});
                return;
            }
            c->done({true, c->id, {}});
            std::lock_guard lock(committed_mutex_);
            if (on_committed_) on_committed_({c->id}, Origin::received);
        });
}

std::string Spool::enqueue(const Envelope& envelope, std::string_view bytes, bool is_dsn,
                           const std::function<void(store::Tx&)>& also, MessageClass cls) {
    if (envelope.recipients.empty()) throw Error("message without recipients");
    auto id = new_id();
    Envelope e = envelope;
    if (e.received_at == TimePoint{}) e.received_at = clock_.now();
    write_spool_file(id, bytes);
    try {
        committer_->run([&](store::Tx& tx) {
            remember(insert_rows(tx, id, e, bytes.size(), is_dsn, cls));
            if (also) also(tx);
        });
    } catch (...) {
        forget(id);
        spares_.remove(data_path(id));
        throw;
    }
    std::lock_guard lock(committed_mutex_);
    if (on_committed_) on_committed_({id}, Origin::generated);
    return id;
}

std::string Spool::write_generated(std::string_view bytes) {
    auto id = new_id();
    write_spool_file(id, bytes);
    return id;
}

std::string Spool::link_generated(const std::string& source) {
    auto id = new_id();
    auto from = data_path(source), to = data_path(id);
    if (::link(from.c_str(), to.c_str()) != 0)
        throw TemporaryError(errno_text("link " + from.string() + " to", to));
    dir_dirty_ = true;
    if (options_.file_system_sync) options_.file_system_sync->mark();
    return id;
}

void Spool::sync_generated() {
    // Unconditional: dir_dirty_ belongs to the committer, and a round that cleared it may
    // still be inside its own directory fsync.
    if (options_.file_system_sync)
        options_.file_system_sync->sync();
    else
        fs::fsync_dir(msg_dir_);
}

void Spool::write_spool_file(const std::string& id, std::string_view bytes) {
    // Written in place, without a temporary name and rename: until its rows commit the
    // file is unreferenced, and recover() deletes such files. Its directory entry is made
    // durable by the committer's round (dir_dirty_) that inserts the rows.
    auto path = data_path(id);
    std::uint64_t stale = 0;
    int fd = spares_.create_overwriting(path, stale);
    if (fd < 0) throw TemporaryError(errno_text("create", path));
    dir_dirty_ = true;
    std::string error;
    for (std::string_view rest = bytes; !rest.empty() && error.empty();) {
        ssize_t n = ::write(fd, rest.data(), rest.size());
        if (n < 0) {
            if (errno != EINTR) error = errno_text("write", path);
            continue;
        }
        rest.remove_prefix(static_cast<std::size_t>(n));
    }
    if (error.empty() && SpareFiles::trim(fd, bytes.size(), stale) != 0) error = errno_text("truncate", path);
    auto* fss = options_.file_system_sync.get();
    if (error.empty() && !fss && ::fdatasync(fd) != 0) error = errno_text("fsync", path);
    ::close(fd);
    if (!error.empty()) {
        spares_.remove(path);
        throw TemporaryError(error);
    }
    if (fss) fss->mark();
}

void Spool::insert_generated(store::Tx& tx, const std::string& id, const Envelope& envelope,
                             std::uint64_t size, bool is_dsn, MessageClass cls) {
    if (envelope.recipients.empty()) throw Error("message without recipients");
    remember(insert_rows(tx, id, envelope, size, is_dsn, cls));
}

void Spool::notify(const std::vector<std::string>& ids) {
    if (ids.empty()) return;
    std::lock_guard lock(committed_mutex_);
    if (on_committed_) on_committed_(ids, Origin::generated);
}

void Spool::remember(QueuedMessage m) {
    // Called inside the inserting transaction, before its commit: nobody can ask for the
    // message before then (its id is not visible), and once it is, its entry is here
    // already. A transaction that rolls back calls forget() (or discard()).
    // With several nodes another one may work on the message first; and a message that
    // waits long for a worker is read back rather than trusted from memory.
    if (!options_.node.empty()) return;
    std::lock_guard lock(fresh_mutex_);
    if (fresh_.size() >= kFreshLimit) return;
    auto id = m.id;
    fresh_.insert_or_assign(std::move(id), Fresh{std::chrono::steady_clock::now(), std::move(m)});
}

std::optional<QueuedMessage> Spool::take_fresh(const std::string& id) {
    std::lock_guard lock(fresh_mutex_);
    auto it = fresh_.find(id);
    if (it == fresh_.end()) return std::nullopt;
    std::optional<QueuedMessage> out;
    if (std::chrono::steady_clock::now() - it->second.at < kFreshFor) out = std::move(it->second.message);
    fresh_.erase(it);
    // Entries whose message nobody loaded (the runner was stopped) must not fill the map.
    if (fresh_.size() >= kFreshLimit / 2) {
        const auto oldest = std::chrono::steady_clock::now() - kFreshFor;
        std::erase_if(fresh_, [&](const auto& e) { return e.second.at < oldest; });
    }
    return out;
}

void Spool::forget(const std::string& id) noexcept {
    std::lock_guard lock(fresh_mutex_);
    fresh_.erase(id);
}

void Spool::discard(const std::string& id) noexcept {
    forget(id);
    spares_.remove(data_path(id));
}

void Spool::recover() {
    std::unordered_set<std::string> known;
    std::vector<std::string> done;
    db_.read([&](store::Tx& tx) {
        for (auto& r : tx.query("SELECT id FROM queue_messages")) known.insert(r.text(0));
        for (auto& r : tx.query("SELECT m.id FROM queue_messages m WHERE NOT EXISTS (SELECT 1 FROM"
                                " queue_recipients r WHERE r.queue_id = m.id AND r.state = 'pending')"))
            done.push_back(r.text(0));
    });
    bool removed = false;
    const auto oldest_kept = std::filesystem::file_time_type::clock::now() - options_.orphan_age;
    for (auto& entry : std::filesystem::directory_iterator(msg_dir_)) {
        auto name = entry.path().filename().string();
        if (known.count(name)) continue;
        std::error_code tec;
        if (options_.orphan_age.count() > 0 && entry.last_write_time(tec) > oldest_kept) continue;
        // Never acknowledged: the rows were not committed (or a temporary file of enqueue()).
        spares_.remove(entry.path());
        removed = true;
    }
    if (removed) fs::fsync_dir(msg_dir_);
    for (auto& id : done) finish_if_done(id);
}

std::optional<QueuedMessage> Spool::load(const std::string& id) {
    if (auto m = take_fresh(id)) return m;
    std::optional<QueuedMessage> out;
    db_.read([&](store::Tx& tx) {
        auto m = tx.query_one(
            "SELECT mail_from, dsn_ret, dsn_envid, body_type, smtputf8, size, received_at, is_dsn, listener,"
            " client_ip, helo, auth_user, tls_protocol, message_class, delay_warned, tls_cipher"
            " FROM queue_messages WHERE id = ?",
            {id});
        if (!m) return;
        QueuedMessage q;
        q.id = id;
        q.envelope.mail_from = m->text(0);
        q.envelope.dsn_ret = m->text(1);
        q.envelope.dsn_envid = m->text(2);
        q.envelope.body_type = m->text(3);
        q.envelope.smtputf8 = m->integer(4) != 0;
        q.size = static_cast<std::uint64_t>(m->integer(5));
        q.envelope.received_at = from_ms(m->integer(6));
        q.is_dsn = m->integer(7) != 0;
        q.envelope.session.listener = m->text(8);
        q.envelope.session.client_ip = m->text(9);
        q.envelope.session.helo = m->text(10);
        q.envelope.session.auth_user = m->text(11);
        q.envelope.session.tls_protocol = m->text(12);
        q.message_class = m->text(13) == "pec" ? MessageClass::pec : MessageClass::ordinary;
        q.delay_warned = m->integer(14) != 0;
        q.envelope.session.tls_cipher = m->text(15);
        for (auto& r : tx.query("SELECT id, address, notify, orcpt, state, attempts, next_attempt, last_error"
                                " FROM queue_recipients WHERE queue_id = ? ORDER BY id",
                                {id})) {
            QueuedRecipient qr;
            qr.id = r.integer(0);
            qr.address = r.text(1);
            qr.notify = r.text(2);
            qr.orcpt = r.text(3);
            qr.state = parse_state(r.text(4));
            qr.attempts = static_cast<int>(r.integer(5));
            qr.next_attempt = from_ms(r.integer(6));
            qr.last_error = r.text(7);
            q.recipients.push_back(std::move(qr));
        }
        out = std::move(q);
    });
    return out;
}

std::vector<std::string> Spool::due(TimePoint now, std::size_t limit) {
    std::vector<std::string> out;
    db_.read([&](store::Tx& tx) {
        if (!options_.node.empty()) {
            // Not the messages another node holds a live lease on: asking for them would
            // only cost a failed claim each.
            for (auto& r :
                 tx.query("SELECT r.queue_id FROM queue_recipients r JOIN queue_messages m"
                          " ON m.id = r.queue_id WHERE r.state = 'pending' AND r.next_attempt <= ?"
                          " AND (m.claim_owner = ? OR m.claim_until < ?)"
                          " GROUP BY r.queue_id ORDER BY MIN(r.next_attempt) LIMIT ?",
                          {to_ms(now), options_.node, to_ms(now), static_cast<std::int64_t>(limit)}))
                out.push_back(r.text(0));
            return;
        }
        for (auto& r :
             tx.query("SELECT queue_id FROM queue_recipients WHERE state = 'pending' AND next_attempt <= ?"
                      " GROUP BY queue_id ORDER BY MIN(next_attempt) LIMIT ?",
                      {to_ms(now), static_cast<std::int64_t>(limit)}))
            out.push_back(r.text(0));
    });
    return out;
}

std::optional<TimePoint> Spool::next_due() {
    std::optional<TimePoint> out;
    db_.read([&](store::Tx& tx) {
        auto r = tx.query_one("SELECT MIN(next_attempt) FROM queue_recipients WHERE state = 'pending'");
        if (r && !r->is_null(0)) out = from_ms(r->integer(0));
    });
    return out;
}

std::size_t Spool::retry_now(const std::vector<std::string>& ids) {
    const auto now = to_ms(clock_.now());
    std::int64_t moved = 0;
    db_.transact([&](store::Tx& tx) {
        const std::string set =
            "UPDATE queue_recipients SET next_attempt = ? WHERE state = 'pending' AND next_attempt > ?";
        if (ids.empty()) {
            moved = tx.exec(set, {now, now});
            return;
        }
        for (const auto& id : ids) {
            if (!tx.query_one("SELECT 1 FROM queue_messages WHERE id = ?", {id}))
                throw Error("no queued message " + id);
            moved += tx.exec(set + " AND queue_id = ?", {now, now, id});
        }
    });
    return static_cast<std::size_t>(moved);
}

std::vector<QueuedMessage> Spool::list(std::size_t limit) {
    std::vector<std::string> ids;
    db_.read([&](store::Tx& tx) {
        for (auto& r : tx.query("SELECT id FROM queue_messages ORDER BY received_at, id LIMIT ?",
                                {static_cast<std::int64_t>(limit)}))
            ids.push_back(r.text(0));
    });
    std::vector<QueuedMessage> out;
    for (auto& id : ids)
        if (auto m = load(id)) out.push_back(std::move(*m));
    return out;
}

void Spool::apply_updates(store::Tx& tx, const std::string& id, const std::vector<RecipientUpdate>& updates) {
    // Only a pending recipient changes: an outcome is recorded once, whoever (worker,
    // node, replayed attempt) gets there second finds 0 rows and rolls back.
    for (const auto& u : updates)
        if (tx.exec("UPDATE queue_recipients SET state = ?, attempts = ?, next_attempt = ?, last_error = ?"
                    " WHERE id = ? AND queue_id = ? AND state = 'pending'",
                    {std::string(state_name(u.state)), std::int64_t{u.attempts}, to_ms(u.next_attempt),
                     u.last_error, u.id, id}) == 0)
            throw StaleQueueUpdate("queue: " + id + ": recipient " + std::to_string(u.id) +
                                   " is no longer pending (recorded elsewhere)");
}

bool Spool::claim(const std::string& id) {
    if (options_.node.empty()) return true;
    const auto now = to_ms(clock_.now());
    const auto until = now + std::chrono::duration_cast<std::chrono::milliseconds>(options_.lease).count();
    bool got = false;
    // Volatile: a claim lost in a database crash only makes the message claimable again,
    // and outcomes are fenced by apply_updates(), not by the claim.
    db_.transact_volatile([&](store::Tx& tx) {
        got = tx.exec(
                  "UPDATE queue_messages SET claim_owner = ?, claim_until = ?"
                  " WHERE id = ? AND (claim_owner = ? OR claim_until < ?)",
                  {options_.node, until, id, options_.node, now}) > 0;
    });
    return got;
}

void Spool::set_message_class(const std::string& id, MessageClass cls) {
    forget(id);
    committer_->run([&](store::Tx& tx) {
        if (tx.exec("UPDATE queue_messages SET message_class = ? WHERE id = ?", {class_name(cls), id}) == 0)
            throw Error("queue: no message " + id);
    });
}

void Spool::mark_delay_warned(store::Tx& tx, const std::string& id) {
    tx.exec("UPDATE queue_messages SET delay_warned = 1 WHERE id = ?", {id});
}

void Spool::update(const std::string& id, const std::vector<RecipientUpdate>& updates,
                   const std::function<void(store::Tx&)>& also) {
    if (updates.empty() && !also) {
        // Nothing to record (the transport or processor committed its own outcome): only
        // the removal of a finished message is left, and nobody waits for it. A crash
        // before it commits leaves a message with no pending recipient, which recover()
        // finishes at the next open.
        auto finished = std::make_shared<bool>(false);
        committer_->submit([id, finished](store::Tx& tx) { *finished = delete_if_done(tx, id); },
                           [this, id, finished](std::exception_ptr e) {
                               if (!e && *finished) spares_.remove(data_path(id));
                           });
        return;
    }
    bool finished = false;
    committer_->run([&](store::Tx& tx) {
        apply_updates(tx, id, updates);
        if (also) also(tx);
        finished = delete_if_done(tx, id);
    });
    // Losing this unlink to a crash only leaves a file that the next start removes.
    if (finished) spares_.remove(data_path(id));
}

void Spool::flush() {
    // Rounds take changes in submission order, so this one lands after all earlier ones.
    committer_->run([](store::Tx&) {});
}

bool Spool::finish_if_done(const std::string& id) {
    bool finished = false;
    db_.transact([&](store::Tx& tx) { finished = delete_if_done(tx, id); });
    if (finished) spares_.remove(data_path(id));
    return finished;
}

}  // namespace pecd::queue
