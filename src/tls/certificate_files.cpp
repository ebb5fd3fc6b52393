// certificate_files.cpp - pairs read and checked, file watches, validity lines (see the header)
#include "tls/certificate_files.hpp"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include "core/calendar.hpp"

namespace pecd::tls {
namespace {

FileStamp stamp_of(const std::filesystem::path& p) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) return {};
    return {true, static_cast<std::uintmax_t>(st.st_size),
            static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
            static_cast<std::uint64_t>(st.st_ino)};
}

}  // namespace

CheckedPair read_pair(const CertificatePair& pair, TimePoint now) {
    CheckedPair p{load_chain_file(pair.certificate.string()), load_key_file(pair.key.string())};
    if (!key_matches(p.leaf(), p.key.get()))
        throw Error(pair.key.string() + ": private key does not match certificate " +
                    pair.certificate.string());
    if (days_until_expiry(p.leaf(), now) < 0)
        throw Error(pair.certificate.string() + ": certificate expired");
    if (auto from = not_valid_until(p.leaf(), now))
        throw NotYetValid(pair.certificate.string() + ": certificate not valid until " + rfc3339_utc(*from),
                          *from);
    return p;
}

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

void log_validity(const std::string& what, const std::string& path, X509* cert, const std::string& harm,
                  TimePoint now, std::chrono::days warning) {
    const int days = days_until_expiry(cert, now);
    if (auto from = not_valid_until(cert, now))
        spdlog::error("{} {} is not valid until {}: {} before then", what, path, rfc3339_utc(*from), harm);
    else if (days < 0)
        spdlog::error("{} {} EXPIRED {} days ago: {}", what, path, -days, harm);
    else if (days < warning.count())
        spdlog::warn("{} {} expires in {} days", what, path, days);
    else
        spdlog::info("{} {} valid for {} more days", what, path, days);
}

}  // namespace pecd::tls
