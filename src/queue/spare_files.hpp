// spare_files.hpp - spool files reused instead of unlinked and created again
//
// Every message crosses the spool as a file that lives for seconds. Creating and unlinking
// one per message makes the file system allocate and free an inode each time, and on some
// file systems that is the dearest step of the whole queue: ext4 without a journal skips
// every inode freed in the last minutes when it looks for a free one (fs/ext4/ialloc.c,
// recently_deleted()), so at a few hundred messages a second each create scans tens of
// thousands of inodes (measured here: 6 µs on tmpfs, 75 µs on a quiet ext4 directory,
// 800 µs after 60 000 deletions). A finished file is therefore moved into a
// directory of spares, and the next spool file takes a spare's inode by rename and is
// emptied then.
//
// Only a file with a single name becomes a spare: one that the mailbox store linked, or that
// the spool linked to a second queue id, loses a name and keeps its data. A spare is
// re-checked when taken, so a spare that also has another name (after a crash, a file
// system check may leave one) is never emptied under its other name.
#pragma once

#include <cstddef>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

namespace pecd::queue {

class SpareFiles {
public:
    // `dir` holds the spares (created if missing). With capacity 0 nothing is kept: create()
    // always makes a new file and remove() unlinks. adopt_existing: take over the spares
    // already in `dir` (the owning process at start); false for a second process.
    SpareFiles(std::filesystem::path dir, std::size_t capacity, bool adopt_existing);

    // Opens a new, empty file at `path` for writing (mode 0640), reusing a spare's inode
    // when there is one. Returns the descriptor; -1 with errno set on failure, like open(2).
    // The caller makes the directory entry of `path` durable, as for any new file.
    int create(const std::filesystem::path& path);

    // Removes the name `path`. Its inode becomes a spare when it has no other name and the
    // pool has room; otherwise the name is unlinked. Never throws: a failure leaves at
    // worst a file the spool's recovery removes.
    void remove(const std::filesystem::path& path) noexcept;

    std::size_t spares() const;

private:
    std::filesystem::path dir_;
    std::size_t capacity_;
    mutable std::mutex mutex_;
    std::vector<std::string> names_;  // entries of dir_, each an empty file with one name
};

}  // namespace pecd::queue
