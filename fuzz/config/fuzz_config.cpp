// fuzz_config.cpp - libFuzzer target: the TOML configuration reader; a broken promise
// (see config_entries.hpp) aborts with its finding.
#include "config_entries.hpp"
#include "fuzz_main.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    return pecd::fuzz::run_fuzz_entry("config", pecd::fuzz::config_entry, data, size);
}
