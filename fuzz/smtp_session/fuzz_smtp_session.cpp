// fuzz_smtp_session.cpp - libFuzzer target: a whole SMTP connection against the server
// session state machine; a broken promise (see smtp_entries.hpp) aborts with its finding.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "smtp_entries.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto o = pecd::fuzz::smtp_session_entry(std::string_view(reinterpret_cast<const char*>(data), size));
    if (!o.violation.empty()) {
        std::fprintf(stderr, "smtp session: %s\n", o.violation.c_str());
        std::abort();
    }
    return 0;
}
