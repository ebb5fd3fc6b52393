// fuzz_mime_view.cpp - libFuzzer target: arbitrary bytes as a stored message, read the way
// the API reads it; a broken promise (see mime_view_entries.hpp) aborts with its finding.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "mime_view_entries.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto o = pecd::fuzz::mime_view_entry(std::string_view(reinterpret_cast<const char*>(data), size));
    if (!o.violation.empty()) {
        std::fprintf(stderr, "mime view: %s\n", o.violation.c_str());
        std::abort();
    }
    return 0;
}
