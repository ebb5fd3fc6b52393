#include "core/fs.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

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

void write_file_durable(const std::filesystem::path& path, std::string_view data, unsigned mode) {
    auto dir = path.parent_path();
    if (dir.empty()) dir = ".";
    auto tmp = dir / ("." + path.filename().string() + ".tmp" + std::to_string(::getpid()));
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) throw TemporaryError(errno_text("create", tmp));
    try {
        write_all(fd, data, tmp);
        if (::fsync(fd) != 0) throw TemporaryError(errno_text("fsync", tmp));
    } catch (...) {
        ::close(fd);
        ::unlink(tmp.c_str());
        throw;
    }
    ::close(fd);
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        auto msg = errno_text("rename to", path);
        ::unlink(tmp.c_str());
        throw TemporaryError(msg);
    }
    fsync_dir(dir);
}

std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error("cannot open " + path.string() + ": " + std::strerror(errno));
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) throw Error("cannot read " + path.string());
    return ss.str();
}

void ensure_dir(const std::filesystem::path& dir, unsigned mode) {
    std::error_code ec;
    if (std::filesystem::is_directory(dir, ec)) return;
    std::filesystem::create_directories(dir, ec);
    if (ec) throw Error("cannot create directory " + dir.string() + ": " + ec.message());
    ::chmod(dir.c_str(), mode);
}

}  // namespace pecd::fs
