// fuzz_ldif.cpp - libFuzzer target: arbitrary text as the provider directory; a broken
// promise (see ldif_entries.hpp) aborts with its finding.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "ldif_entries.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto o = pecd::fuzz::ldif_entry(std::string_view(reinterpret_cast<const char*>(data), size));
    if (!o.violation.empty()) {
        std::fprintf(stderr, "ldif: %s\n", o.violation.c_str());
        std::abort();
    }
    return 0;
}
