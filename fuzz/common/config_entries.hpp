// config_entries.hpp - pecd's configuration reader driven by arbitrary text, for the
// config fuzz target and its smoke test
//
// The configuration comes from the operator, and a typo must get a clear refusal at
// start, never a crash and never a value the daemon cannot use. config_entry() parses
// the text as pecd --check-config does and checks:
//   - nothing but ParseError escapes, and its message names a line or a key;
//   - an accepted configuration is usable: data directory set, at least one listener,
//     unique listener names and known TLS modes, 1-256 threads, every period positive
//     and at most ten years, retentions of 30 to 1200 months, DNS tries 1-10 with at most
//     a minute per try, an API listen address that parses when the API is on (which
//     needs [pec] and [log]), the PEC limits no lower than pec.md 5.1 allows.
// A broken promise is reported in `violation` (empty when all held).
#pragma once

#include <string>
#include <string_view>

namespace pecd::fuzz {

struct ConfigOutcome {
    std::string violation;  // empty: every promise above held
    bool accepted = false;
    std::string error;  // the ParseError's message when refused
};

ConfigOutcome config_entry(std::string_view text);

}  // namespace pecd::fuzz
