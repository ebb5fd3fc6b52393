// ldif_entries.hpp - a provider directory (the index's LDIF, pec.md 6) from arbitrary
// text, for the ldif fuzz target and the index tests
//
// ldif_entry() reads the text and builds the provider index from it, as an index refresh
// does with what the central directory served, and checks:
//   - nothing escapes but ParseError, and a ParseError names the line;
//   - a built index answers look-ups by domain (any case, empty, a lone dot) and by
//     certificate hash.
// A broken promise is reported in `violation` (empty when all held).
#pragma once

#include <string>
#include <string_view>

namespace pecd::fuzz {

struct LdifOutcome {
    std::string violation;  // empty: every promise above held
    bool indexed = false;   // an index was built (else: refused with a ParseError)
};

LdifOutcome ldif_entry(std::string_view text);

}  // namespace pecd::fuzz
