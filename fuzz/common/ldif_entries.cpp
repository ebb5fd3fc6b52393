// ldif_entries.cpp - the provider directory reader's promises (see ldif_entries.hpp)
#include "ldif_entries.hpp"

#include <exception>
#include <vector>

#include "core/error.hpp"
#include "index/provider_index.hpp"

namespace pecd::fuzz {

LdifOutcome ldif_entry(std::string_view text) {
    LdifOutcome out;
    try {
        std::vector<index::Problem> problems;
        auto built = index::index_from_ldif(text, &problems);
        if (!built) {
            out.violation = "no index and no ParseError";
            return out;
        }
        for (const char* domain : {"pec.acme.example", "PEC.ACME.EXAMPLE", "backup.acme.example", "", "."})
            (void)built->by_domain(domain);
        (void)built->by_hash("0123456789abcdef0123456789abcdef01234567");
        out.indexed = true;
    } catch (const ParseError& e) {
        if (e.line() == 0) out.violation = std::string("ParseError without a line: ") + e.what();
    } catch (const std::exception& e) {
        out.violation = std::string("escaped: ") + e.what();
    }
    return out;
}

}  // namespace pecd::fuzz
