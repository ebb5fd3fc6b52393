// sealer.hpp - closes legal-log segments on a schedule and seals them
//
// Contract:
// - run_once() adds the search keys of new records (LegalLog::index_pending), closes
//   a segment when an interval boundary (hourly by default) has
//   passed since the last one (or when forced), then seals every closed, unsealed segment
//   in order: it re-checks the segment's records against its manifest, signs the
//   manifest (CMS detached, the provider identity) and obtains an RFC 3161 time stamp
//   over SHA-256(manifest) from the TimestampSource, checking the reply's status, nonce,
//   imprint and signature.
// - A TSA that is unreachable or refuses leaves the segment closed and unsealed, records
//   the reason on the segment, logs an alert (spdlog error) and is retried on the next
//   pass; appends are never blocked by sealing (they do not touch segments).
// - start() runs passes on a background thread every `tick` until stop() or
//   destruction; the daemon may instead call run_once() from its own timer.
// - Retention: each pass also purges sealed segments closed more than
//   retention_months ago (LegalLog::purge), unless retention_months is 0.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/clock.hpp"
#include "crypto/identity.hpp"
#include "crypto/timestamp.hpp"
#include "crypto/trust_files.hpp"
#include "log/legal_log.hpp"

namespace pecd::log {

// Where time stamps come from: send a DER TimeStampReq, get a DER TimeStampResp.
// Throws TemporaryError when the TSA cannot be reached.
class TimestampSource {
public:
    virtual ~TimestampSource() = default;
    virtual std::string exchange(std::string_view request_der) = 0;
    virtual std::string name() const = 0;
};

// The built-in TSA, called in-process.
class LocalTimestampSource final : public TimestampSource {
public:
    explicit LocalTimestampSource(std::shared_ptr<crypto::TimestampAuthority> tsa) : tsa_(std::move(tsa)) {}
    std::string exchange(std::string_view request_der) override { return tsa_->respond(request_der); }
    std::string name() const override { return "built-in TSA"; }

private:
    std::shared_ptr<crypto::TimestampAuthority> tsa_;
};

struct SealerOptions {
    std::chrono::seconds segment_interval{3600};  // segments close on these boundaries (UTC)
    std::chrono::milliseconds tick{60000};        // background pass period (and TSA retry)
    int retention_months = 30;                    // 0 = keep forever
    // Roots for the TSA's tokens, re-read by their owner when the file changes (each seal
    // takes the roots of the moment); null: the TSA's own certificate.
    std::shared_ptr<const crypto::TrustFiles> tsa_trust;
};

struct SealerStatus {
    std::int64_t unsealed_segments = 0;
    std::string last_error;  // empty when the last pass sealed everything
    std::optional<TimePoint> last_sealed;
    bool alert() const { return !last_error.empty(); }
};

class Sealer {
public:
    // Each seal is signed with signer's identity of the moment (renewed without restart).
    Sealer(LegalLog& log, std::shared_ptr<const crypto::IdentitySource> signer, TimestampSource& tsa,
           const Clock& clock, SealerOptions options = {});
    Sealer(LegalLog& log, crypto::SigningIdentity signer, TimestampSource& tsa, const Clock& clock,
           SealerOptions options = {})
        : Sealer(log, std::make_shared<crypto::FixedIdentity>(std::move(signer)), tsa, clock,
                 std::move(options)) {}
    ~Sealer();
    Sealer(const Sealer&) = delete;
    Sealer& operator=(const Sealer&) = delete;

    // Returns the number of segments sealed in this pass.
    int run_once(bool force_close = false);
    void start();
    void stop();
    SealerStatus status() const;

private:
    bool close_due(TimePoint now) const;
    // "" when sealed, else why not.
    std::string seal(const Segment& s);
    std::string check_records(const Segment& s) const;

    LegalLog& log_;
    std::shared_ptr<const crypto::IdentitySource> signer_;
    TimestampSource& tsa_;
    const Clock& clock_;
    SealerOptions options_;

    mutable std::mutex mutex_;  // guards status_ and serializes passes
    std::mutex pass_mutex_;
    SealerStatus status_;
    std::condition_variable wake_;
    std::mutex wake_mutex_;
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace pecd::log
