// fuzz_smtp_client.cpp - libFuzzer target: the SMTP/LMTP client session delivering one
// message to a server that says anything; a broken promise (see smtp_entries.hpp) aborts
// with its finding.
#include "fuzz_main.hpp"
#include "smtp_entries.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    return pecd::fuzz::run_fuzz_entry("smtp client", pecd::fuzz::smtp_client_entry, data, size);
}
