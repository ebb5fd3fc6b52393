// fuzz_smtp_client.cpp - libFuzzer target: the SMTP/LMTP client session delivering one
// message to a server that says anything; a broken promise (see smtp_entries.hpp) aborts
// with its finding.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "smtp_entries.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto o = pecd::fuzz::smtp_client_entry(std::string_view(reinterpret_cast<const char*>(data), size));
    if (!o.violation.empty()) {
        std::fprintf(stderr, "smtp client: %s\n", o.violation.c_str());
        std::abort();
    }
    return 0;
}
