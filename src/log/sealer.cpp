// sealer.cpp - segment closing, sealing and retention passes (see sealer.hpp)
#include "log/sealer.hpp"

#include <spdlog/spdlog.h>

#include "core/error.hpp"
#include "crypto/cms.hpp"
#include "log/event.hpp"

namespace pecd::log {

Sealer::Sealer(LegalLog& log, std::shared_ptr<const crypto::IdentitySource> signer, TimestampSource& tsa,
               const Clock& clock, SealerOptions options)
    : log_(log), signer_(std::move(signer)), tsa_(tsa), clock_(clock), options_(std::move(options)) {
    if (options_.segment_interval.count() <= 0) throw Error("legal log: segment interval must be positive");
}

Sealer::~Sealer() {
    stop();
}

bool Sealer::close_due(TimePoint now) const {
    auto segments = log_.segments();
    if (segments.empty()) return true;
    const auto interval =
        std::chrono::duration_cast<std::chrono::microseconds>(options_.segment_interval).count();
    return to_micros(now) / interval > segments.back().closed_us / interval;
}

std::string Sealer::check_records(const Segment& s) const {
    // Sealing vouches for the records: never seal a segment that no longer matches the
    // head recorded when it was closed.
    std::string chain = s.previous_chain;
    std::int64_t expected = s.first_seq;
    for (const auto& r : log_.records(s.first_seq, s.last_seq)) {
        if (r.seq != expected) return "record " + std::to_string(expected) + " is missing";
        chain = chain_link(chain, record_digest(r.record));
        ++expected;
    }
    if (expected != s.last_seq + 1) return "record " + std::to_string(expected) + " is missing";
    if (chain != s.head_chain) return "the records no longer match the segment head";
    return {};
}

std::string Sealer::seal(const Segment& s) {
    if (std::string bad = check_records(s); !bad.empty()) return "refusing to seal segment: " + bad;
    std::string signature = crypto::cms_sign_detached(*signer_->current(), s.manifest);
    std::string digest = crypto::sha256(s.manifest);
    crypto::TimestampRequest request = crypto::make_timestamp_request(digest);
    std::string response;
    try {
        response = tsa_.exchange(request.der);
    } catch (const Error& e) {
        return tsa_.name() + " unavailable: " + e.what();
    }
    crypto::TimestampResponse parsed;
    try {
        parsed = crypto::parse_timestamp_response(response);
    } catch (const ParseError& e) {
        return tsa_.name() + " sent an unreadable reply: " + e.what();
    }
    if (!parsed.granted())
        return tsa_.name() + " refused the request (status " + std::to_string(parsed.status) + " " +
               parsed.status_text + ")";
    auto anchors = options_.tsa_trust ? options_.tsa_trust->current()->anchors
                                      : crypto::timestamp_certificates(response);
    auto verdict = crypto::verify_timestamp_response(response, digest, anchors, request.nonce);
    if (!verdict.ok) return tsa_.name() + " sent a time stamp that does not verify: " + verdict.error;
    log_.record_seal(s.id, signature, response, clock_.now());
    return {};
}

int Sealer::run_once(bool force_close) {
    std::lock_guard pass(pass_mutex_);
    TimePoint now = clock_.now();
    // Search keys first (in chunks, so appenders wait for one chunk at most).
    for (int chunk = 0; chunk < 10000 && log_.index_pending() > 0; ++chunk) {
    }
    if (force_close || close_due(now)) log_.close_segment(now);
    int sealed = 0;
    std::string error;
    auto pending = log_.unsealed_segments();
    for (const auto& s : pending) {
        try {
            error = seal(s);
        } catch (const std::exception& e) {
            error = e.what();
        }
        if (!error.empty()) {
            // Later segments wait too: seals are made in order.
            spdlog::error(
                "ALERT legal log: segment {} (records {}..{}) is not sealed: {}; records keep being "
                "written and sealing is retried",
                s.id, s.first_seq, s.last_seq, error);
            log_.record_seal_failure(s.id, error);
            break;
        }
        ++sealed;
    }
    if (options_.retention_months > 0) {
        try {
            if (auto n = log_.purge(now, options_.retention_months, italy_utc_offset_minutes(now)); n > 0)
                spdlog::info("legal log: retention removed {} records older than {} months", n,
                             options_.retention_months);
        } catch (const std::exception& e) {
            spdlog::error("legal log: retention purge failed: {}", e.what());
        }
    }
    std::lock_guard lock(mutex_);
    status_.unsealed_segments = static_cast<std::int64_t>(pending.size()) - sealed;
    status_.last_error = error;
    if (sealed > 0) status_.last_sealed = now;
    return sealed;
}

void Sealer::start() {
    if (thread_.joinable()) return;
    {
        std::lock_guard lock(wake_mutex_);
        stopping_ = false;
    }
    thread_ = std::thread([this] {
        std::unique_lock lock(wake_mutex_);
        while (!stopping_) {
            lock.unlock();
            try {
                run_once();
            } catch (const std::exception& e) {
                spdlog::error("ALERT legal log: sealing pass failed: {}", e.what());
            }
            lock.lock();
            wake_.wait_for(lock, options_.tick, [this] { return stopping_; });
        }
    });
}

void Sealer::stop() {
    {
        std::lock_guard lock(wake_mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
}

SealerStatus Sealer::status() const {
    std::lock_guard lock(mutex_);
    return status_;
}

}  // namespace pecd::log
