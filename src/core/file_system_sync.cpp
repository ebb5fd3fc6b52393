// file_system_sync.cpp - one syncfs per file system for a round of writes (see the header)
#include "core/file_system_sync.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.hpp"

namespace pecd {

FileSystemSync::FileSystemSync(const std::vector<std::filesystem::path>& dirs) {
    std::vector<dev_t> devices;
    for (const auto& dir : dirs) {
        int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        struct stat st {};
        if (fd < 0 || ::fstat(fd, &st) != 0) {
            auto why = std::string(std::strerror(errno));
            if (fd >= 0) ::close(fd);
            for (int f : fds_) ::close(f);
            throw Error("cannot open " + dir.string() + " for file system syncs: " + why);
        }
        bool known = false;
        for (auto d : devices) known = known || d == st.st_dev;
        if (known) {
            ::close(fd);
            continue;
        }
        devices.push_back(st.st_dev);
        fds_.push_back(fd);
        names_.push_back(dir);
    }
}

FileSystemSync::~FileSystemSync() {
    for (int fd : fds_) ::close(fd);
}

void FileSystemSync::mark() noexcept {
    marked_.store(true, std::memory_order_release);
}

void FileSystemSync::sync_marked() {
    std::lock_guard lock(mutex_);
    if (marked_.exchange(false, std::memory_order_acq_rel)) sync_locked();
}

void FileSystemSync::sync() {
    std::lock_guard lock(mutex_);
    marked_.store(false, std::memory_order_release);
    sync_locked();
}

void FileSystemSync::sync_locked() {
    for (std::size_t i = 0; i < fds_.size(); ++i) {
        if (::syncfs(fds_[i]) != 0) {
            const int saved = errno;
            marked_.store(true, std::memory_order_release);  // what was marked is not durable yet
            throw TemporaryError("syncfs of the file system of " + names_[i].string() + ": " +
                                 std::strerror(saved));
        }
    }
    rounds_.fetch_add(1);
}

}  // namespace pecd
