// blob_store.hpp - message bodies as files under the data directory
//
// A blob is the exact byte sequence of one stored message, kept in a file named by the
// caller's key (letters, digits, '-', '_', '.'), fanned out into 256 sub-directories by a
// hash of the key so no directory grows without bound. Every operation that returns has
// made its effect durable: the file is fsynced and its directory entry too.
//
// link_from() hard-links an existing, already fsynced file (the queue's spool copy) into
// the store, so delivering one message to many local mailboxes costs one directory entry
// per mailbox and no copy; it is idempotent (an existing blob with the key is kept), so a
// delivery retried after a crash does not fail or duplicate.
//
// Failures are TemporaryError (disk full, I/O) naming the path, and remove what they
// wrote. put() writes in place, because a blob is named by a row only once it is durable
// (MailStore writes the blob, then commits the row): a kill -9 during put() can leave a
// partial file under a key that no row names, and put() under that key overwrites it. A
// test hook (set_failure_hook) lets tests inject a failure at
// a named step to prove that callers leave nothing half-done.
//
// With defer_syncs(), put() and link_from() write without syncing and mark the shared
// FileSystemSync instead: durable once its next sync returns, which the caller's commit
// must wait for (the group committer's round does; see make_durable()).
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/file_system_sync.hpp"

namespace pecd::store {

class BlobStore {
public:
    explicit BlobStore(std::filesystem::path root);

    // Writes bytes under key, in place (fdatasync, directory fsync); see above.
    void put(std::string_view key, std::string_view bytes);
    // Hard-links source under key; falls back to a durable copy across file systems.
    void link_from(std::string_view key, const std::filesystem::path& source);
    std::string get(std::string_view key) const;  // throws Error when missing
    bool exists(std::string_view key) const;
    std::filesystem::path path_of(std::string_view key) const;
    // Removes the blob (missing is not an error) and syncs the directory.
    void remove(std::string_view key);
    const std::filesystem::path& root() const { return root_; }

    // From now on put() and link_from() leave syncing to `sync` (see above).
    void defer_syncs(std::shared_ptr<FileSystemSync> sync) { deferred_ = std::move(sync); }
    // Makes what put() and link_from() left to the deferred sync durable now (nothing to do
    // without defer_syncs()).
    void make_durable();

    // Tests only: called with the step name ("write", "link"); a throw aborts the step.
    static void set_failure_hook(std::function<void(std::string_view step)> hook);

private:
    // A new entry in dir: its fsync, or a mark for the deferred sync.
    void sync_entry(const std::filesystem::path& dir);

    std::filesystem::path root_;
    std::shared_ptr<FileSystemSync> deferred_;
};

// Throws Error when key would escape the store or is not a plain name.
void check_blob_key(std::string_view key);

}  // namespace pecd::store
