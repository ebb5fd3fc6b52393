// index_service.cpp - sources, verification, swap and schedule of the provider index
#include "index/index_service.hpp"

#include <spdlog/spdlog.h>

#include "core/error.hpp"
#include "core/fs.hpp"
#include "index/document.hpp"
#include "index/https_fetch.hpp"
#include "index/ldap_source.hpp"

namespace pecd::index {

struct IndexService::Fetched {
    bool not_modified = false;
    std::string bytes;               // file / HTTPS document
    std::vector<LdifEntry> entries;  // LDAP
    std::string etag, last_modified;
};

IndexService::IndexService(IndexSettings settings, const Clock& clock)
    : settings_(std::move(settings)), clock_(clock), live_(std::make_shared<LiveIndex>()) {
    if (!settings_.trust_anchor.empty())
        trust_.emplace("index", settings_.trust_anchor, std::filesystem::path{});
}

IndexService::~IndexService() {
    stop();
}

std::shared_ptr<const crypto::TrustStore> IndexService::current_trust() {
    if (!trust_) return nullptr;
    trust_->reload_if_changed();  // a renewed anchor (the index signer's new CA) without a restart
    return trust_->current();
}

IndexService::Fetched IndexService::fetch() {
    Fetched f;
    switch (settings_.source) {
        case SourceKind::none:
            throw Error("no index source configured");
        case SourceKind::file:
            f.bytes = fs::read_file(settings_.file);
            f.not_modified = !last_bytes_.empty() && f.bytes == last_bytes_;
            break;
        case SourceKind::https: {
            HttpsRequest r;
            r.url = settings_.url;
            r.ca_file = settings_.ca_file;
            r.timeout = settings_.timeout;
            {
                std::lock_guard lock(status_mutex_);
                r.etag = status_.etag;
                r.last_modified = status_.last_modified;
            }
            auto res = https_get(r);
            f.not_modified = res.status == 304;
            f.bytes = std::move(res.body);
            f.etag = std::move(res.etag);
            f.last_modified = std::move(res.last_modified);
            break;
        }
        case SourceKind::ldap: {
            LdapQuery q;
            q.uri = settings_.ldap_uri;
            q.base = settings_.ldap_base;
            q.bind_dn = settings_.ldap_bind_dn;
            q.password = settings_.ldap_password;
            q.ca_file = settings_.ca_file;
            q.timeout = settings_.timeout;
            f.entries = ldap_fetch_entries(q);
            break;
        }
    }
    return f;
}

RefreshOutcome IndexService::refresh() {
    std::lock_guard serial(refresh_mutex_);
    RefreshOutcome out;
    auto now = clock_.now();
    {
        std::lock_guard lock(status_mutex_);
        status_.last_attempt = now;
    }
    std::string signer;
    bool keep_validators = false;
    Fetched f;
    try {
        f = fetch();
        if (f.not_modified) {
            out.kind = RefreshOutcome::Kind::not_modified;
            out.message = "index unchanged";
        } else if (settings_.source == SourceKind::ldap) {
            auto index = build_index(f.entries, &out.problems);
            if (index->counts().providers + index->counts().units == 0)
                throw Error("the directory holds no usable provider record");
            live_->store(index);
            out.kind = RefreshOutcome::Kind::replaced;
        } else {
            DocumentPolicy policy;
            const auto trust = current_trust();
            policy.trust = trust.get();
            policy.require_signature = trust_.has_value();
            policy.clock = &clock_;
            auto loaded = load_document(f.bytes, policy);
            signer = loaded.signer;
            out.problems = std::move(loaded.problems);
            live_->store(loaded.index);
            last_bytes_ = f.bytes;
            keep_validators = true;
            out.kind = RefreshOutcome::Kind::replaced;
            if (!settings_.cache_file.empty() && settings_.source == SourceKind::https) {
                try {
                    fs::write_file_durable(settings_.cache_file, f.bytes, 0640);
                } catch (const std::exception& e) {
                    spdlog::warn("index: cannot keep the local copy {}: {}", settings_.cache_file.string(),
                                 e.what());
                }
            }
        }
    } catch (const std::exception& e) {
        out.kind = RefreshOutcome::Kind::failed;
        out.message = e.what();
    }
    auto counts = live_->current()->counts();
    std::lock_guard lock(status_mutex_);
    status_.counts = counts;
    switch (out.kind) {
        case RefreshOutcome::Kind::failed:
            ++status_.failures;
            status_.last_error = out.message;
            spdlog::error("index: refresh failed, the previous index stays in use: {}", out.message);
            break;
        case RefreshOutcome::Kind::not_modified:
            ++status_.not_modified;
            status_.last_success = now;
            status_.last_error.clear();
            spdlog::debug("index: unchanged");
            break;
        case RefreshOutcome::Kind::replaced:
            ++status_.refreshes;
            status_.last_success = now;
            status_.last_error.clear();
            status_.signer = signer;
            if (keep_validators) {
                status_.etag = f.etag;
                status_.last_modified = f.last_modified;
            }
            out.message = "index loaded: " + std::to_string(counts.providers) + " providers, " +
                          std::to_string(counts.units) + " units, " + std::to_string(counts.domains) +
                          " domains, " + std::to_string(out.problems.size()) + " problems";
            spdlog::info("index: {}", out.message);
            for (std::size_t i = 0; i < out.problems.size() && i < 20; ++i)
                spdlog::warn("index: {}", out.problems[i].describe());
            break;
    }
    return out;
}

bool IndexService::load_cache() {
    if (settings_.cache_file.empty() || !std::filesystem::exists(settings_.cache_file)) return false;
    try {
        DocumentPolicy policy;
        const auto trust = current_trust();
        policy.trust = trust.get();
        policy.require_signature = trust_.has_value();
        policy.clock = &clock_;
        auto loaded = load_document(fs::read_file(settings_.cache_file), policy);
        live_->store(loaded.index);
        std::lock_guard lock(status_mutex_);
        status_.counts = loaded.index->counts();
        spdlog::info("index: local copy {} loaded", settings_.cache_file.string());
        return true;
    } catch (const std::exception& e) {
        spdlog::warn("index: local copy {} not used: {}", settings_.cache_file.string(), e.what());
        return false;
    }
}

void IndexService::start() {
    if (settings_.source == SourceKind::none || thread_.joinable()) return;
    load_cache();
    thread_ = std::jthread([this](std::stop_token st) { run(st); });
}

void IndexService::run(std::stop_token stop) {
    while (!stop.stop_requested()) {
        auto outcome = refresh();
        auto wait = outcome.kind == RefreshOutcome::Kind::failed
                        ? std::min(settings_.retry_interval, settings_.refresh_interval)
                        : settings_.refresh_interval;
        std::unique_lock lock(wake_mutex_);
        wake_.wait_for(lock, stop, wait, [] { return false; });
    }
}

void IndexService::stop() {
    if (!thread_.joinable()) return;
    thread_.request_stop();
    thread_.join();
}

IndexStatus IndexService::status() const {
    std::lock_guard lock(status_mutex_);
    return status_;
}

}  // namespace pecd::index
