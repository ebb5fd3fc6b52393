// timestamp_entries.hpp - an RFC 3161 time-stamp reply from arbitrary bytes, as the legal
// log's sealer receives it from a TSA over HTTP; for the timestamp fuzz target and the
// time-stamp mutation test
//
// timestamp_entry() reads the reply and verifies it for the SHA-256 of "pecd fuzz seal"
// against a fixed TSA certificate, whose key signed the seeds in fuzz/timestamp/corpus (one
// reply from pecd's own TSA, one from `openssl ts -reply`) and was then thrown away. It
// checks:
//   - parse_timestamp_response() and timestamp_certificates() let nothing escape but
//     ParseError;
//   - verify_timestamp_response() throws nothing, and verifies nothing without a trust
//     anchor;
//   - a verified reply has a time, the digest asked for, and one of the seeds' serial
//     numbers: without the key, no other token can be signed.
// A broken promise is reported in `violation` (empty when all held).
#pragma once

#include <string>
#include <string_view>

namespace pecd::fuzz {

struct TimestampOutcome {
    std::string violation;  // empty: every promise above held
    bool parsed = false;    // a TimeStampResp (granted or not)
    bool verified = false;  // verify_timestamp_response() said ok
};

TimestampOutcome timestamp_entry(std::string_view reply);

}  // namespace pecd::fuzz
