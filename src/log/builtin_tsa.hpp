// builtin_tsa.hpp - the built-in time-stamping authority's identity on disk
//
// The embedded default needs a TSA without any setup: on first use a self-signed TSA
// certificate (critical timeStamping EKU) and its key are created in `dir` as tsa.pem
// and tsa.key (mode 0600, written durably); later starts load the same pair, so tokens
// made over the years verify against one certificate, which operators hand to third
// parties as the TSA trust anchor. Throws Error naming the file on failure.
#pragma once

#include <filesystem>
#include <string>

#include "crypto/identity.hpp"

namespace pecd::log {

crypto::SigningIdentity load_or_create_builtin_tsa(const std::filesystem::path& dir,
                                                   const std::string& common_name = "pecd built-in TSA");

}  // namespace pecd::log
