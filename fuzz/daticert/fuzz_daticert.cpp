// fuzz_daticert.cpp - libFuzzer target: daticert.xml parser (DTD validation) and writer
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "pec_entries.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    pecd::fuzz::daticert_entry(std::string_view(reinterpret_cast<const char*>(data), size));
    return 0;
}
