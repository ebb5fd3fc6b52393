// file_system_sync.hpp - many files made durable by one sync of their file system
//
// By default every spool file and message body pecd writes gets its own fdatasync, and
// every new directory entry its directory's fsync, before the row naming it commits:
// about eighteen separate trips to the disk per PEC exchange, each with its own I/O
// submission, wait and completion (and, on a virtual machine, its own doorbell write).
//
// With `[store] file_sync = "file_system"` the writers of spool files and message bodies
// only write and mark(); the group-commit round that commits the rows naming them first
// calls sync_marked(), one syncfs(2) per file system involved, which writes back every
// file and directory written before it in one batch. The ordering guarantee is the same:
// no row commits before the bytes and entries it names are on disk.
//
// syncfs writes back the whole file system, other programs' data included: this mode is
// for a spool and store on file systems of their own. syncfs reports a write-back error
// that happened on the file system since the descriptor was opened (Linux 5.8 and later),
// so a failed write is not taken for durable.
#pragma once

#include <atomic>
#include <cstddef>
#include <filesystem>
#include <mutex>
#include <vector>

namespace pecd {

class FileSystemSync {
public:
    // The directories whose file systems are synced (several on one file system count
    // once). Throws Error if one cannot be opened.
    explicit FileSystemSync(const std::vector<std::filesystem::path>& dirs);
    ~FileSystemSync();
    FileSystemSync(const FileSystemSync&) = delete;
    FileSystemSync& operator=(const FileSystemSync&) = delete;

    // A file or directory entry was written (completely) and is not durable yet. Call it
    // after the write and before handing the rows that name it to a commit.
    void mark() noexcept;
    // Syncs if anything was marked since the last sync began; on return everything marked
    // before the call is durable. TemporaryError on failure (the mark stays for a retry).
    void sync_marked();
    // Syncs whatever was marked or not.
    void sync();
    // syncfs rounds so far (diagnostics and tests).
    std::size_t rounds() const { return rounds_.load(); }
    // File systems synced by each round.
    std::size_t file_systems() const { return fds_.size(); }

private:
    void sync_locked();

    std::vector<int> fds_;
    std::vector<std::filesystem::path> names_;  // for error messages
    std::atomic<bool> marked_{false};
    // Held during a sync: a caller that finds nothing marked because a concurrent sync
    // took the mark must still wait for that sync to finish.
    std::mutex mutex_;
    std::atomic<std::size_t> rounds_{0};
};

}  // namespace pecd
