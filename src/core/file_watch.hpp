// file_watch.hpp - when files an in-memory copy was read from are to be read again
//
// Certificates, trust anchors and CRLs are replaced on disk by renewal tools and cron
// jobs while pecd runs; their owners poll a FileWatch and re-read on a change (size,
// mtime or inode: a rename into place changes the inode even when size and second agree).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <vector>

#include "core/clock.hpp"

namespace pecd::fs {

struct FileStamp {
    bool exists = false;
    std::uintmax_t size = 0;
    std::int64_t mtime_ns = 0;
    std::uint64_t inode = 0;
    bool operator==(const FileStamp&) const = default;
};
using FileStamps = std::vector<FileStamp>;

// Not thread-safe: its owner serialises calls.
class FileWatch {
public:
    // The files as they are now count as read.
    explicit FileWatch(std::vector<std::filesystem::path> files);
    // The files' stamps when they are to be read now: changed since the last read and not
    // already tried as they are, or deferred until a time that has come. The attempt is
    // recorded, so a broken replacement is reported once, not at every check.
    std::optional<FileStamps> due(TimePoint now);
    // The attempt with these stamps succeeded.
    void read(FileStamps stamps) { read_ = std::move(stamps); }
    // The attempted files are to be read again at `when` even if unchanged.
    void defer_until(TimePoint when) { retry_at_ = when; }

private:
    FileStamps current() const;
    std::vector<std::filesystem::path> files_;
    FileStamps read_;       // behind what is in use
    FileStamps attempted_;  // the last attempt, failed or not
    std::optional<TimePoint> retry_at_;
};

}  // namespace pecd::fs
