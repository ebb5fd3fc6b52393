// spare_files.cpp - spool files reused instead of unlinked (see spare_files.hpp)
#include "queue/spare_files.hpp"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "core/fs.hpp"

namespace pecd::queue {
namespace {

// A spare keeps its blocks up to this size (create() empties it when it is taken), so a
// small file costs one rename each way; a larger one is emptied at once, which bounds
// the space spares hold to capacity times this.
constexpr off_t kept_bytes = 64 * 1024;

// A file that may be emptied and reused: a regular file with no other name.
bool single_named_file(const struct stat& st) {
    return S_ISREG(st.st_mode) && st.st_nlink == 1;
}

// rename(2) that never replaces an existing name, so a reused inode can never take the
// place of a file someone else just created.
int rename_no_replace(const std::filesystem::path& from, const std::filesystem::path& to) {
    return ::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE);
}

}  // namespace

SpareFiles::SpareFiles(std::filesystem::path dir, std::size_t capacity, bool adopt_existing)
    : dir_(std::move(dir)), capacity_(adopt_existing ? capacity : 0) {
    if (!adopt_existing) return;  // the pool belongs to the process that adopts it
    fs::ensure_dir(dir_, 0750);
    std::error_code ec;
    for (auto it = std::filesystem::directory_iterator(dir_, ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
        auto path = it->path();
        struct stat st {};
        bool keep = ::lstat(path.c_str(), &st) == 0 && single_named_file(st) && names_.size() < capacity_ &&
                    (st.st_size <= kept_bytes || ::truncate(path.c_str(), 0) == 0);
        if (keep)
            names_.push_back(path.filename().string());
        else
            ::unlink(path.c_str());  // drops this name only; another name keeps its data
    }
}

int SpareFiles::create(const std::filesystem::path& path) {
    std::uint64_t stale = 0;
    return take(path, true, stale);
}

int SpareFiles::create_overwriting(const std::filesystem::path& path, std::uint64_t& stale_bytes) {
    return take(path, false, stale_bytes);
}

int SpareFiles::trim(int fd, std::uint64_t written, std::uint64_t stale_bytes) {
    if (stale_bytes <= written) return 0;
    return ::ftruncate(fd, static_cast<off_t>(written));
}

int SpareFiles::take(const std::filesystem::path& path, bool empty_it, std::uint64_t& stale_bytes) {
    stale_bytes = 0;
    for (;;) {
        std::string name;
        {
            std::lock_guard lock(mutex_);
            if (names_.empty()) break;
            name = std::move(names_.back());
            names_.pop_back();
        }
        auto spare = dir_ / name;
        if (rename_no_replace(spare, path) != 0) {
            if (errno != EEXIST) continue;  // the spare is gone: try the next one
            std::lock_guard lock(mutex_);
            names_.push_back(std::move(name));
            return -1;  // errno EEXIST, as open(O_EXCL) would say
        }
        int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
        struct stat st {};
        if (fd >= 0 && ::fstat(fd, &st) == 0 && single_named_file(st)) {
            if (!empty_it) {
                stale_bytes = static_cast<std::uint64_t>(st.st_size);
                return fd;
            }
            if (st.st_size == 0 || ::ftruncate(fd, 0) == 0) return fd;
        }
        if (fd >= 0) ::close(fd);
        ::unlink(path.c_str());  // not reusable: drop the name we gave it
    }
    return ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
}

void SpareFiles::remove(const std::filesystem::path& path) noexcept {
    struct stat st {};
    if (capacity_ > 0 && ::lstat(path.c_str(), &st) == 0 && single_named_file(st)) {
        bool room;
        {
            std::lock_guard lock(mutex_);
            room = names_.size() < capacity_;
        }
        // Named after its inode: unique among live files, so spares never collide.
        auto name = std::to_string(st.st_ino);
        if (room && (st.st_size <= kept_bytes || ::truncate(path.c_str(), 0) == 0) &&
            rename_no_replace(path, dir_ / name) == 0) {
            std::lock_guard lock(mutex_);
            names_.push_back(std::move(name));
            return;
        }
    }
    ::unlink(path.c_str());
}

std::size_t SpareFiles::spares() const {
    std::lock_guard lock(mutex_);
    return names_.size();
}

}  // namespace pecd::queue
