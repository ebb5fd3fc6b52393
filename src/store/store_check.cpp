#include "store/store_check.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <unordered_set>

#include "core/calendar.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"

namespace pecd::store {
namespace {

namespace fsys = std::filesystem;

// The inode's last change (link, write, rename), which a plain mtime would not show for a
// blob hard-linked from an older spool file. Saturated rather than converted as it is: a
// clock set past 2262 would otherwise overflow the nanosecond time point.
std::optional<TimePoint> changed_at(const fsys::path& p) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) return std::nullopt;
    return clamp_to_time_point(std::chrono::sys_seconds(std::chrono::seconds(st.st_ctim.tv_sec)));
}

void check_rows(Database& db, BlobStore& blobs, StoreCheckReport& r, std::unordered_set<std::string>& named) {
    db.read([&](Tx& tx) {
        for (const auto& row : tx.query("SELECT m.id, b.address, m.blob_key, m.size FROM mailbox_messages m "
                                        "JOIN mailboxes b ON b.id = m.mailbox_id ORDER BY m.id")) {
            ++r.messages;
            MessageProblem p{row.text(1), row.integer(0), row.text(2),
                             static_cast<std::uint64_t>(row.integer(3)), 0};
            named.insert(p.blob_key);
            std::error_code ec;
            auto size = fsys::file_size(blobs.path_of(p.blob_key), ec);
            if (ec) {
                r.missing.push_back(std::move(p));
            } else if (size != p.expected_size) {
                p.actual_size = size;
                r.wrong_size.push_back(std::move(p));
            }
        }
        for (const auto& row : tx.query(
                 "SELECT b.address, b.used_bytes, b.message_count, COALESCE(SUM(m.size), 0), COUNT(m.id) "
                 "FROM mailboxes b LEFT JOIN mailbox_messages m ON m.mailbox_id = b.id "
                 "GROUP BY b.id, b.address, b.used_bytes, b.message_count ORDER BY b.address")) {
            CounterProblem c{row.text(0), static_cast<std::uint64_t>(row.integer(1)),
                             static_cast<std::uint64_t>(row.integer(3)), row.integer(2), row.integer(4)};
            if (c.recorded_bytes != c.actual_bytes || c.recorded_messages != c.actual_messages)
                r.counters.push_back(std::move(c));
        }
    });
}

bool still_unnamed(Database& db, const std::string& key) {
    bool unnamed = true;
    db.read([&](Tx& tx) {
        unnamed = !tx.query_one("SELECT 1 FROM mailbox_messages WHERE blob_key = ?", {key}).has_value();
    });
    return unnamed;
}

}  // namespace

StoreCheckReport check_store(Database& db, BlobStore& blobs, TimePoint now,
                             const StoreCheckOptions& options) {
    StoreCheckReport r;
    std::unordered_set<std::string> named;
    check_rows(db, blobs, r, named);
    std::error_code ec;
    if (!fsys::is_directory(blobs.root(), ec)) return r;
    // The store's files sit one level down, in its fan-out directories.
    for (const auto& dir : fsys::directory_iterator(blobs.root())) {
        if (!dir.is_directory()) continue;
        for (const auto& file : fsys::directory_iterator(dir.path())) {
            if (!file.is_regular_file()) continue;
            ++r.files;
            auto key = file.path().filename().string();
            if (named.count(key)) continue;
            auto changed = changed_at(file.path());
            if (!changed || now - *changed < options.grace) {
                ++r.young_unnamed;
                continue;
            }
            r.orphans.push_back(key);
            // The file as found (a name the store would not choose, or in another fan-out
            // directory, is removed where it is).
            if (options.remove_orphans && still_unnamed(db, key)) {
                if (::unlink(file.path().c_str()) != 0 && errno != ENOENT)
                    throw TemporaryError("unlink " + file.path().string() + ": " + std::strerror(errno));
                fs::fsync_dir(dir.path());
                ++r.orphans_removed;
            }
        }
    }
    return r;
}

}  // namespace pecd::store
