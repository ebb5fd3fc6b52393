// fuzz_config.cpp - libFuzzer target: arbitrary text through the configuration reader; a
// broken promise (see config_entries.hpp) aborts with its finding.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "config_entries.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto o = pecd::fuzz::config_entry(std::string_view(reinterpret_cast<const char*>(data), size));
    if (!o.violation.empty()) {
        std::fprintf(stderr, "config: %s\n", o.violation.c_str());
        std::abort();
    }
    return 0;
}
