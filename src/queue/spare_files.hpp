// spare_files.hpp - spool files reused instead of unlinked and created again
//
// Every message crosses the spool as a file that lives for seconds. Creating and unlinking
// one per message makes the file system allocate and free an inode each time, and on some
// file systems that is the dearest step of the whole queue: ext4 without a journal skips
// every inode freed in the last minutes when it looks for a free one (fs/ext4/ialloc.c,
// recently_deleted()), so at a few hundred messages a second each create scans tens of
// thousands of inodes (measured here: 6 µs on tmpfs, 75 µs on a quiet ext4 directory,
// 800 µs after 60 000 deletions). A finished file is therefore moved into a
// directory of spares, and the next spool file takes a spare's inode by rename and
// overwrites its old bytes, cutting what is left of them.
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
    // The same, but a reused spare keeps its old bytes, whose count goes to `stale_bytes`
    // (0 for a new file): the caller overwrites from offset 0 and then calls trim(). Why:
    // rewriting blocks the file already has, at an unchanged size, leaves fdatasync()
    // nothing to write but the data; emptying the file first freed the blocks, so the
    // sync had to allocate them again and write the inode too (one more disk request per
    // message, and spool files are all about the same size).
    int create_overwriting(const std::filesystem::path& path, std::uint64_t& stale_bytes);
    // Cuts what is left of the old bytes after `written` new ones; 0, or -1 with errno.
    static int trim(int fd, std::uint64_t written, std::uint64_t stale_bytes);

    // Removes the name `path`. Its inode becomes a spare when it has no other name and the
    // pool has room; otherwise the name is unlinked. Never throws: a failure leaves at
    // worst a file the spool's recovery removes.
    void remove(const std::filesystem::path& path) noexcept;

    std::size_t spares() const;

private:
    int take(const std::filesystem::path& path, bool empty_it, std::uint64_t& stale_bytes);

    std::filesystem::path dir_;
    std::size_t capacity_;
    mutable std::mutex mutex_;
    std::vector<std::string> names_;  // entries of dir_, each an empty file with one name
};

}  // namespace pecd::queue
