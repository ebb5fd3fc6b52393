// fuzz_jwt.cpp - libFuzzer target: bearer tokens through the API's verifier; a broken
// promise (see jwt_entries.hpp) aborts with its finding.
#include "fuzz_main.hpp"
#include "jwt_entries.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    return pecd::fuzz::run_fuzz_entry("jwt", pecd::fuzz::jwt_entry, data, size);
}
