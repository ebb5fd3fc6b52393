// fuzz_timestamp.cpp - libFuzzer target: RFC 3161 time-stamp replies through the reader
// and verifier the legal log's sealer uses; a broken promise (see timestamp_entries.hpp)
// aborts with its finding.
#include "fuzz_main.hpp"
#include "timestamp_entries.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    return pecd::fuzz::run_fuzz_entry("timestamp", pecd::fuzz::timestamp_entry, data, size);
}
