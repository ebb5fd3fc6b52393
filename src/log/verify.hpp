// verify.hpp - checking the legal log: chain, segments, seals, time stamps
//
// verify_log() walks every record in sequence order and every segment, and reports each
// problem with the sequence number where it shows:
//   - a gap in the sequence: the record at that number was removed;
//   - a record whose content says another number: a record was inserted (or renumbered);
//   - content that does not match its stored digest: the record was altered;
//   - a stored chain value that does not follow from the previous one: something before
//     it was altered, inserted or removed, or the chain column was rewritten;
//   - a segment whose records do not lead to the head its manifest states (the check
//     that catches an attacker who rewrote digests and chain values as well);
//   - a seal whose CMS signature or RFC 3161 time stamp does not verify.
// Problems are listed in log order, so problems.front() is the first spot. Nothing is
// modified.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "crypto/identity.hpp"
#include "log/legal_log.hpp"

namespace pecd::log {

struct VerifyOptions {
    // Trust anchors for the seal signer (the provider) and for the TSA. Empty: the
    // certificates carried in the seal are used, and the report says "not anchored".
    std::vector<crypto::X509Ptr> signer_anchors;
    std::vector<crypto::X509Ptr> tsa_anchors;
};

struct Problem {
    std::int64_t seq = 0;      // record position (0 when the problem is a segment's)
    std::int64_t segment = 0;  // segment id (0 when not in a closed segment)
    std::string what;
};

struct VerifyReport {
    std::int64_t records = 0;
    std::int64_t segments_sealed = 0;
    std::int64_t segments_unsealed = 0;
    std::int64_t segments_purged = 0;
    bool anchored = false;  // seals were checked against operator-given anchors
    std::vector<Problem> problems;
    bool ok() const { return problems.empty(); }
};

VerifyReport verify_log(const LegalLog& log, const VerifyOptions& options = {});

// Checks one closed segment alone: its records against its manifest and its seal (what
// `pecctl log search` shows as the proof of the records it prints, without walking the
// whole log). Problems in log order; empty = intact.
std::vector<Problem> verify_segment(const LegalLog& log, const Segment& segment,
                                    const VerifyOptions& options = {});

// Checks one seal over a manifest; returns "" when the signature and the time stamp
// both verify, else the first problem in words.
std::string check_seal(const std::string& manifest, const std::string& signature,
                       const std::string& timestamp, const VerifyOptions& options);

}  // namespace pecd::log
