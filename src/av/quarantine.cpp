// quarantine.cpp - durable special storage for infected messages (see quarantine.hpp)
#include "av/quarantine.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/calendar.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/strings.hpp"

namespace pecd::av {
namespace fsys = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kMessageFile = "message.eml";
constexpr const char* kMetaFile = "meta.json";
constexpr const char* kTmpPrefix = ".tmp-";
constexpr const char* kPurgePrefix = ".purge-";

std::int64_t to_us(TimePoint t) {
    return stored_count<std::chrono::microseconds>(t);
}
TimePoint from_us(std::int64_t us) {
    return stored_time<std::chrono::microseconds>(us);
}

std::string compact_utc(TimePoint t) {
    auto secs = std::chrono::floor<std::chrono::seconds>(t);
    auto day = std::chrono::floor<std::chrono::days>(secs);
    std::chrono::year_month_day ymd(day);
    std::chrono::hh_mm_ss hms(secs - day);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04d%02u%02uT%02d%02d%02dZ", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                  static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                  static_cast<int>(hms.seconds().count()));
    return buf;
}

std::string random_hex(std::size_t bytes) {
    std::string raw(bytes, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1)
        throw Error("quarantine: no random bytes for an id");
    return to_hex(raw);
}

std::string sha256_hex(std::string_view data) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
    unsigned int len = 0;
    if (EVP_Digest(data.data(), data.size(), md.data(), &len, EVP_sha256(), nullptr) != 1)
        throw Error("quarantine: SHA-256 failed");
    return to_hex(std::string_view(reinterpret_cast<const char*>(md.data()), len));
}

json to_json(const QuarantineEntry& e) {
    return json{{"id", e.id},
                {"detected_at_us", to_us(e.detected_at)},
                {"point", e.point},
                {"host", e.host},
                {"scanner", e.scanner},
                {"virus", e.virus},
                {"pec_msgid", e.pec_msgid},
                {"client_msgid", e.client_msgid},
                {"mail_from", e.mail_from},
                {"recipients", e.recipients},
                {"client_ip", e.client_ip},
                {"helo", e.helo},
                {"auth_user", e.auth_user},
                {"listener", e.listener},
                {"received_at_us", to_us(e.received_at)},
                {"size", e.size},
                {"sha256", e.sha256}};
}

QuarantineEntry from_json(const json& j) {
    QuarantineEntry e;
    e.id = j.at("id").get<std::string>();
    e.detected_at = from_us(j.at("detected_at_us").get<std::int64_t>());
    e.point = j.value("point", "");
    e.host = j.value("host", "");
    e.scanner = j.value("scanner", "");
    e.virus = j.value("virus", "");
    e.pec_msgid = j.value("pec_msgid", "");
    e.client_msgid = j.value("client_msgid", "");
    e.mail_from = j.value("mail_from", "");
    e.recipients = j.value("recipients", std::vector<std::string>{});
    e.client_ip = j.value("client_ip", "");
    e.helo = j.value("helo", "");
    e.auth_user = j.value("auth_user", "");
    e.listener = j.value("listener", "");
    e.received_at = from_us(j.value("received_at_us", std::int64_t{0}));
    e.size = j.value("size", std::uint64_t{0});
    e.sha256 = j.value("sha256", "");
    return e;
}

std::optional<QuarantineEntry> read_entry(const fsys::path& entry_dir) {
    std::error_code ec;
    if (!fsys::is_regular_file(entry_dir / kMetaFile, ec)) return std::nullopt;
    try {
        return from_json(json::parse(fs::read_file(entry_dir / kMetaFile)));
    } catch (const std::exception&) {
        return std::nullopt;  // unreadable metadata: not listed, kept for the operator
    }
}

bool valid_id(const std::string& id) {
    if (id.empty() || id.size() > 64 || id.front() == '.') return false;
    return std::all_of(id.begin(), id.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '-';
    });
}

}  // namespace

Quarantine::Quarantine(fsys::path dir, const Clock& clock, int retention_months)
    : dir_(std::move(dir)), clock_(clock), retention_months_(retention_months) {
    if (retention_months_ < 1 || retention_months_ > kMaxRetentionMonths)
        throw Error("quarantine: retention must be 1 to " + std::to_string(kMaxRetentionMonths) + " months");
    fs::ensure_dir(dir_, 0700);
}

QuarantineEntry Quarantine::store(std::string_view message, const Envelope& envelope, QuarantineEntry meta) {
    std::lock_guard lock(mu_);
    meta.detected_at = clock_.now();
    meta.id = compact_utc(meta.detected_at) + "-" + random_hex(8);
    meta.size = message.size();
    meta.sha256 = sha256_hex(message);
    meta.mail_from = envelope.mail_from;
    meta.recipients.clear();
    for (const auto& r : envelope.recipients) meta.recipients.push_back(r.address);
    meta.client_ip = envelope.session.client_ip;
    meta.helo = envelope.session.helo;
    meta.auth_user = envelope.session.auth_user;
    meta.listener = envelope.session.listener;
    meta.received_at = envelope.received_at;

    auto tmp = dir_ / (std::string(kTmpPrefix) + meta.id);
    auto final_dir = dir_ / meta.id;
    std::error_code ec;
    fsys::create_directory(tmp, ec);
    if (ec) throw TemporaryError("quarantine: cannot create " + tmp.string() + ": " + ec.message());
    try {
        fs::write_file_durable(tmp / kMessageFile, message, 0600);
        // What came from outside (a sender's address) may not be UTF-8: kept as U+FFFD in
        // the metadata rather than refusing to quarantine the message (stored intact).
        fs::write_file_durable(
            tmp / kMetaFile, to_json(meta).dump(2, ' ', false, json::error_handler_t::replace) + "\n", 0600);
        fsys::rename(tmp, final_dir, ec);
        if (ec)
            throw TemporaryError("quarantine: cannot rename into " + final_dir.string() + ": " +
                                 ec.message());
        fs::fsync_dir(dir_);
    } catch (...) {
        std::error_code ignored;
        fsys::remove_all(tmp, ignored);
        throw;
    }
    return meta;
}

std::vector<QuarantineEntry> Quarantine::list() const {
    std::vector<QuarantineEntry> out;
    std::error_code ec;
    for (const auto& d : fsys::directory_iterator(dir_, ec)) {
        auto name = d.path().filename().string();
        if (!valid_id(name)) continue;  // temporary and purge leftovers start with '.'
        if (auto e = read_entry(d.path())) out.push_back(std::move(*e));
    }
    if (ec) throw TemporaryError("quarantine: cannot list " + dir_.string() + ": " + ec.message());
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
        return a.detected_at != b.detected_at ? a.detected_at < b.detected_at : a.id < b.id;
    });
    return out;
}

std::optional<QuarantineEntry> Quarantine::find(const std::string& id) const {
    if (!valid_id(id)) return std::nullopt;
    return read_entry(dir_ / id);
}

std::string Quarantine::read_message(const std::string& id) const {
    if (!find(id)) throw Error("quarantine: no entry \"" + id + "\"");
    return fs::read_file(dir_ / id / kMessageFile);
}

std::size_t Quarantine::purge() {
    std::lock_guard lock(mu_);
    auto cutoff = months_before(clock_.now(), retention_months_);
    std::size_t removed = 0;
    std::error_code ec;
    std::vector<fsys::path> leftovers;
    for (const auto& e : list()) {
        if (e.detected_at >= cutoff) continue;
        // Rename first: the entry leaves the listing atomically, then its files go.
        auto doomed = dir_ / (std::string(kPurgePrefix) + e.id);
        fsys::rename(dir_ / e.id, doomed, ec);
        if (ec) throw TemporaryError("quarantine: cannot purge " + e.id + ": " + ec.message());
        leftovers.push_back(doomed);
        ++removed;
    }
    if (removed) fs::fsync_dir(dir_);
    // Leftovers of interrupted purges, and of stores interrupted more than an hour ago
    // (file time, not the injected clock: this is about crashed writers).
    auto now_file = fsys::file_time_type::clock::now();
    for (const auto& d : fsys::directory_iterator(dir_, ec)) {
        auto name = d.path().filename().string();
        if (istarts_with(name, kPurgePrefix)) {
            leftovers.push_back(d.path());
        } else if (istarts_with(name, kTmpPrefix)) {
            std::error_code tec;
            auto t = fsys::last_write_time(d.path(), tec);
            if (!tec && now_file - t > std::chrono::hours(1)) leftovers.push_back(d.path());
        }
    }
    std::sort(leftovers.begin(), leftovers.end());
    leftovers.erase(std::unique(leftovers.begin(), leftovers.end()), leftovers.end());
    for (const auto& p : leftovers) fsys::remove_all(p, ec);
    fs::fsync_dir(dir_);
    return removed;
}

}  // namespace pecd::av
