// fuzz_ldif.cpp - libFuzzer target: arbitrary text as the provider directory; a broken
// promise (see ldif_entries.hpp) aborts with its finding.
#include "fuzz_main.hpp"
#include "ldif_entries.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    return pecd::fuzz::run_fuzz_entry("ldif", pecd::fuzz::ldif_entry, data, size);
}
