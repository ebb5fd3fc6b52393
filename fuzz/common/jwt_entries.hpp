// jwt_entries.hpp - a bearer token from arbitrary bytes through the API's verifier, for
// the jwt fuzz target and the API's token mutation test
//
// jwt_entry() verifies the token against a fixed JWK Set (an RSA key "rsa1" and a P-256
// key "ec1", whose private halves signed the seeds in fuzz/jwt/corpus and were then
// thrown away), the policy iss "https://idp.test", aud "pecd-api", and a fixed time
// (kJwtNow) at which the seeds are valid. It checks:
//   - nothing escapes but TokenError;
//   - an accepted token is spelt canonically: each of its three parts decodes and encodes
//     back to itself (RFC 4648 3.5), so no valid token has a second spelling;
//   - an accepted token carries the seeds' claims (subject "portal-a", domain a.example
//     only): without the private keys nothing else can be signed.
// A broken promise is reported in `violation` (empty when all held).
#pragma once

#include <string>
#include <string_view>

#include "core/clock.hpp"

namespace pecd::fuzz {

inline const TimePoint kJwtNow = TimePoint(std::chrono::seconds(1790000000));

struct JwtOutcome {
    std::string violation;  // empty: every promise above held
    bool accepted = false;
};

JwtOutcome jwt_entry(std::string_view token);

}  // namespace pecd::fuzz
