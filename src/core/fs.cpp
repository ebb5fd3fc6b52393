#include "core/fs.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.hpp"

namespace pecd::fs {
namespace {

std::string errno_text(const std::string& what, const std::filesystem::path& p) {
    return what + " " + p.string() + ": " + std::strerror(errno);
}

void write_all(int fd, std::string_view data, const std::filesystem::path& p) {
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            throw TemporaryError(errno_text("write", p));
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
}

}  // namespace

void fsync_dir(const std::filesystem::path& dir) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) throw TemporaryError(errno_text("open directory", dir));
    int rc = ::fsync(fd);
    int saved = errno;
    ::close(fd);
    errno = saved;
    if (rc != 0) throw TemporaryError(errno_text("fsync directory", dir));
}

namespace {

// Creates (or truncates) `path`, writes `data` and, with `sync`, syncs it (fdatasync: for
// a file just written, that includes its size and blocks); on failure the file is removed.
void write_synced(const std::filesystem::path& path, std::string_view data, unsigned mode, bool sync = true) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0) throw TemporaryError(errno_text("create", path));
    try {
        write_all(fd, data, path);
        if (sync && ::fdatasync(fd) != 0) throw TemporaryError(errno_text("fsync", path));
    } catch (...) {
        ::close(fd);
        ::unlink(path.c_str());
        throw;
    }
    ::close(fd);
}

std::filesystem::path directory_of(const std::filesystem::path& path) {
    auto dir = path.parent_path();
    return dir.empty() ? std::filesystem::path(".") : dir;
}

}  // namespace

void write_file_durable(const std::filesystem::path& path, std::string_view data, unsigned mode) {
    auto dir = directory_of(path);
    auto tmp = dir / ("." + path.filename().string() + ".tmp" + std::to_string(::getpid()));
    write_synced(tmp, data, mode);
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        auto msg = errno_text("rename to", path);
        ::unlink(tmp.c_str());
        throw TemporaryError(msg);
    }
    fsync_dir(dir);
}

void write_unreferenced_file_durable(const std::filesystem::path& path, std::string_view data,
                                     unsigned mode) {
    write_synced(path, data, mode);
    fsync_dir(directory_of(path));
}

void write_unreferenced_file(const std::filesystem::path& path, std::string_view data, unsigned mode) {
    write_synced(path, data, mode, false);
}

// One open, one fstat and reads straight into a string of the file's size: every queue
// stage reads its message whole, and a stream with a string buffer copied it twice.
std::string read_file(const std::filesystem::path& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw Error("cannot open " + path.string() + ": " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        auto msg = "cannot read " + path.string() + ": " + std::strerror(errno);
        ::close(fd);
        throw Error(msg);
    }
    std::string out;
    // A file that grows or shrinks while read is read to its end all the same.
    std::size_t want = st.st_size > 0 ? static_cast<std::size_t>(st.st_size) + 1 : 4096;
    out.resize(want);
    std::size_t got = 0;
    for (;;) {
        if (got == out.size()) out.resize(out.size() * 2);
        ssize_t n = ::read(fd, out.data() + got, out.size() - got);
        if (n < 0) {
            if (errno == EINTR) continue;
            auto msg = "cannot read " + path.string() + ": " + std::strerror(errno);
            ::close(fd);
            throw Error(msg);
        }
        if (n == 0) break;
        got += static_cast<std::size_t>(n);
    }
    ::close(fd);
    out.resize(got);
    return out;
}

void ensure_dir(const std::filesystem::path& dir, unsigned mode) {
    std::error_code ec;
    if (std::filesystem::is_directory(dir, ec)) return;
    std::filesystem::create_directories(dir, ec);
    if (ec) throw Error("cannot create directory " + dir.string() + ": " + ec.message());
    ::chmod(dir.c_str(), mode);
}

}  // namespace pecd::fs
