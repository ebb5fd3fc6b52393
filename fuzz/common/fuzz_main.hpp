// fuzz_main.hpp - the body of an entry-based libFuzzer target: run the entry on the
// input and abort with its finding when a promise broke (the entries report a
// `violation`, empty when every promise held), so libFuzzer saves the input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace pecd::fuzz {

template <class Entry>
int run_fuzz_entry(const char* target, Entry entry, const uint8_t* data, size_t size) {
    auto outcome = entry(std::string_view(reinterpret_cast<const char*>(data), size));
    if (!outcome.violation.empty()) {
        std::fprintf(stderr, "%s: %s\n", target, outcome.violation.c_str());
        std::abort();
    }
    return 0;
}

}  // namespace pecd::fuzz
