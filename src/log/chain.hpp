// chain.hpp - the hash chain over legal-log records and the segment manifest
//
// Definitions (also written in the export bundle's README, for third parties):
//   digest(record)  = lower-hex SHA-256 of the canonical record bytes (log/event.hpp)
//   chain(0)        = 64 '0' characters
//   chain(n)        = lower-hex SHA-256 of  chain(n-1) + "\n" + digest(record n)
// so `printf '%s\n%s' "$prev" "$digest" | sha256sum` recomputes a link. Chaining the
// digests (not the records) lets a bundle disclose some records of a segment and only
// the digests of the others, and still prove the whole segment.
//
// A segment is the run of records first..last closed together; its manifest is the
// text that is signed (CMS, detached) and time-stamped (RFC 3161, over SHA-256 of the
// manifest). Lines end in CRLF so that S/MIME canonicalisation leaves it unchanged.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/clock.hpp"

namespace pecd::log {

inline const std::string kGenesisChain(64, '0');

std::string record_digest(std::string_view record);
std::string chain_link(std::string_view previous_chain, std::string_view digest);

struct SegmentManifest {
    std::int64_t segment = 0;
    std::int64_t first_seq = 0;
    std::int64_t last_seq = 0;
    std::string previous_chain;  // chain(first_seq - 1)
    std::string head_chain;      // chain(last_seq)
    TimePoint opened{};
    TimePoint closed{};
};

std::string format_manifest(const SegmentManifest& m);
// Throws ParseError naming the line/field.
SegmentManifest parse_manifest(std::string_view text);

}  // namespace pecd::log
