// fuzz_mime_view.cpp - libFuzzer target: arbitrary bytes as a stored message, read the
// way the API reads it; a broken promise (see mime_view_entries.hpp) aborts with its
// finding.
#include "fuzz_main.hpp"
#include "mime_view_entries.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    return pecd::fuzz::run_fuzz_entry("mime view", pecd::fuzz::mime_view_entry, data, size);
}
