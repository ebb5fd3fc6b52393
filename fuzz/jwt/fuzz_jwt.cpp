// fuzz_jwt.cpp - libFuzzer target: arbitrary bytes as a bearer token through the API's
// verifier; a broken promise (see jwt_entries.hpp) aborts with its finding.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "jwt_entries.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto o = pecd::fuzz::jwt_entry(std::string_view(reinterpret_cast<const char*>(data), size));
    if (!o.violation.empty()) {
        std::fprintf(stderr, "jwt: %s\n", o.violation.c_str());
        std::abort();
    }
    return 0;
}
