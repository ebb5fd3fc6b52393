// fuzz_smtp_session.cpp - libFuzzer target: a whole SMTP connection against the server
// session state machine; a broken promise (see smtp_entries.hpp) aborts with its
// finding.
#include "fuzz_main.hpp"
#include "smtp_entries.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    return pecd::fuzz::run_fuzz_entry("smtp session", pecd::fuzz::smtp_session_entry, data, size);
}
