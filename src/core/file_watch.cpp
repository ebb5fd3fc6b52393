// file_watch.cpp - see file_watch.hpp
#include "core/file_watch.hpp"

#include <sys/stat.h>

namespace pecd::fs {
namespace {

FileStamp stamp_of(const std::filesystem::path& p) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) return {};
    return {true, static_cast<std::uintmax_t>(st.st_size),
            static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
            static_cast<std::uint64_t>(st.st_ino)};
}

}  // namespace

FileWatch::FileWatch(std::vector<std::filesystem::path> files) : files_(std::move(files)) {
    read_ = attempted_ = current();
}

FileStamps FileWatch::current() const {
    FileStamps out;
    out.reserve(files_.size());
    for (const auto& f : files_) out.push_back(stamp_of(f));
    return out;
}

std::optional<FileStamps> FileWatch::due(TimePoint now) {
    auto stamps = current();
    if (stamps == read_) return std::nullopt;
    if (stamps == attempted_ && !(retry_at_ && now >= *retry_at_)) return std::nullopt;
    attempted_ = stamps;
    retry_at_.reset();
    return stamps;
}

}  // namespace pecd::fs
