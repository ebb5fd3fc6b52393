// fuzz_pec_verify.cpp - libFuzzer target: raw message -> S/MIME, classification, verification
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "pec_entries.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    pecd::fuzz::verify_message_entry(std::string_view(reinterpret_cast<const char*>(data), size));
    return 0;
}
