// pec_entries.cpp - fuzz entry functions over the PEC reading side
#include "pec_entries.hpp"

#include <cstdlib>
#include <exception>

#include "pec/daticert.hpp"
#include "pec/verify.hpp"

namespace pecd::fuzz {
namespace {

std::string first_finding(const pec::PecVerification& r) {
    for (const pec::Check* c : {&r.signature, &r.chain, &r.provider_check, &r.from_domain, &r.consistency})
        if (c->verdict == pec::Verdict::fail) return c->detail.empty() ? "verdict failed" : c->detail;
    if (!r.classification.problems.empty()) return r.classification.problems.front();
    if (!r.inconsistencies.empty()) return r.inconsistencies.front();
    if (!r.classification.kind) return "not a PEC message: " + pec::classification_name(r.classification);
    if (r.consistency.verdict != pec::Verdict::pass) return "consistency " + r.consistency.detail;
    return "rejected without a stated reason";
}

}  // namespace

Outcome verify_message_entry(std::string_view data) {
    Outcome o;
    auto r = pec::verify_message(data);
    o.accepted = r.valid();
    if (!o.accepted) o.finding = first_finding(r);
    // Results must be self-consistent whatever the input.
    if (o.accepted && (r.signature.verdict != pec::Verdict::pass || !r.classification.kind)) std::abort();
    return o;
}

Outcome daticert_entry(std::string_view data) {
    Outcome o;
    try {
        auto d = pec::parse_daticert(data);
        auto again = pec::parse_daticert(pec::write_daticert(d));
        if (!(again == d)) {
            o.finding = "write/parse round trip changed the document";
            return o;
        }
        o.accepted = true;
    } catch (const std::exception& e) {
        o.finding = e.what();
        if (o.finding.empty()) o.finding = "rejected (empty error text)";
    }
    return o;
}

}  // namespace pecd::fuzz
