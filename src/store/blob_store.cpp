// blob_store.cpp - message bodies as durable files (see blob_store.hpp for the contract)
#include "store/blob_store.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include "core/error.hpp"
#include "core/fs.hpp"

namespace pecd::store {
namespace {

std::mutex hook_mutex;
std::function<void(std::string_view)> failure_hook;

void run_hook(std::string_view step) {
    std::function<void(std::string_view)> h;
    {
        std::lock_guard lock(hook_mutex);
        h = failure_hook;
    }
    if (h) h(step);
}

std::string fan_out(std::string_view key) {
    // FNV-1a: cheap and stable; only spreads names, needs no cryptographic strength.
    std::uint32_t h = 2166136261u;
    for (unsigned char c : key) h = (h ^ c) * 16777619u;
    static const char* digits = "0123456789abcdef";
    return {digits[(h >> 4) & 15], digits[h & 15]};
}

std::string errno_text(const std::string& what, const std::filesystem::path& p) {
    return what + " " + p.string() + ": " + std::strerror(errno);
}

}  // namespace

void check_blob_key(std::string_view key) {
    if (key.empty() || key.size() > 200 || key.front() == '.')
        throw Error("invalid blob key \"" + std::string(key) + "\"");
    for (char c : key) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                  c == '_' || c == '.';
        if (!ok) throw Error("invalid blob key \"" + std::string(key) + "\"");
    }
}

void BlobStore::set_failure_hook(std::function<void(std::string_view)> hook) {
    std::lock_guard lock(hook_mutex);
    failure_hook = std::move(hook);
}

BlobStore::BlobStore(std::filesystem::path root) : root_(std::move(root)) {
    fs::ensure_dir(root_, 0750);
}

std::filesystem::path BlobStore::path_of(std::string_view key) const {
    check_blob_key(key);
    return root_ / fan_out(key) / std::string(key);
}

void BlobStore::put(std::string_view key, std::string_view bytes) {
    auto p = path_of(key);
    fs::ensure_dir(p.parent_path(), 0750);
    run_hook("write");
    // In place: no row names the blob until deliver()'s transaction commits after this,
    // and a delivery retried under the same key writes it again.
    if (!deferred_) {
        fs::write_unreferenced_file_durable(p, bytes, 0640);
        return;
    }
    fs::write_unreferenced_file(p, bytes, 0640);
    deferred_->mark();
}

void BlobStore::make_durable() {
    if (deferred_) deferred_->sync_marked();
}

void BlobStore::sync_entry(const std::filesystem::path& dir) {
    if (deferred_)
        deferred_->mark();
    else
        fs::fsync_dir(dir);
}

void BlobStore::link_from(std::string_view key, const std::filesystem::path& source) {
    auto p = path_of(key);
    auto dir = p.parent_path();
    if (!std::filesystem::is_directory(dir)) {
        fs::ensure_dir(dir, 0750);
        sync_entry(root_);
    }
    run_hook("link");
    if (::link(source.c_str(), p.c_str()) != 0) {
        if (errno == EEXIST) {
            sync_entry(dir);  // the earlier link may not have been synced before a crash
            return;
        }
        if (errno != EXDEV) throw TemporaryError(errno_text("link " + source.string() + " to", p));
        fs::write_file_durable(p, fs::read_file(source), 0640);
        return;
    }
    sync_entry(dir);
}

std::string BlobStore::get(std::string_view key) const {
    return fs::read_file(path_of(key));
}

bool BlobStore::exists(std::string_view key) const {
    std::error_code ec;
    return std::filesystem::exists(path_of(key), ec);
}

void BlobStore::remove(std::string_view key) {
    auto p = path_of(key);
    if (::unlink(p.c_str()) != 0) {
        if (errno == ENOENT) return;
        throw TemporaryError(errno_text("unlink", p));
    }
    fs::fsync_dir(p.parent_path());
}

}  // namespace pecd::store
