// pec_entries.hpp - the entry functions the fuzz targets and the fuzz smoke test share
//
// Each takes arbitrary bytes and must return (never crash, never hang, never throw). The
// Outcome says whether the input was accepted and, when it was not, the finding the
// reading side reported: a rejected input always comes with a non-empty finding.
#pragma once

#include <string>
#include <string_view>

namespace pecd::fuzz {

struct Outcome {
    bool accepted = false;
    std::string finding;  // non-empty whenever !accepted
};

// A whole incoming message through classification and verification (pec::verify_message).
Outcome verify_message_entry(std::string_view data);
// daticert.xml through the DTD-validating parser; an accepted document must also survive
// write -> parse unchanged.
Outcome daticert_entry(std::string_view data);

}  // namespace pecd::fuzz
