// pec_view.hpp - what the API says about a message as PEC: status, linked receipts, verdict
//
// The PEC engine (classification, signature verification, daticert) lives in src/pec;
// the API asks this small interface so that it does not depend on how the engine is
// built. StorePecView answers from what the mailbox store and the message headers know:
//   - status: "delivered" for a message stored in a mailbox (that is what being there
//     means), "receipt" for a PEC receipt, "ordinary" for non-PEC mail;
//   - linked receipts: the messages of the same mailbox whose X-Riferimento-Message-ID
//     names this message (and the original a receipt refers to), found by the catalog;
//   - verdict: "unavailable" with the reason, since no signature is checked here.
// A view backed by src/pec replaces it without changing the API's responses' shape.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "api/mime_view.hpp"

namespace pecd::api {

// One legal-log event that names a message: what the provider did with it.
struct PecEventInfo {
    std::string kind;  // log/event.hpp kind name, e.g. "delivery", "take_in_charge"
    std::string time;  // RFC 3339 UTC
    std::string outcome;
    std::vector<std::string> recipients;
    std::vector<std::string> generated_ids;  // ids of the receipts / notices it produced
};

struct Verdict {
    std::string verdict;  // valid | invalid | not-pec | unavailable
    std::string reason;
    std::map<std::string, std::string> details;
};

class PecView {
public:
    virtual ~PecView() = default;
    virtual std::string status(const MessageHeaders& h) const = 0;
    virtual Verdict verify(std::string_view raw, const MessageHeaders& h) const = 0;
    // The provider's events for the PEC message a stored message belongs to (its
    // X-Riferimento-Message-ID), oldest first: the receipts and notices issued for it.
    virtual std::vector<PecEventInfo> history(const MessageHeaders&) const { return {}; }
    // Names the source of these answers in responses ("store" or "pec-engine").
    virtual std::string source() const = 0;
};

class StorePecView final : public PecView {
public:
    std::string status(const MessageHeaders& h) const override;
    Verdict verify(std::string_view raw, const MessageHeaders& h) const override;
    std::string source() const override { return "store"; }
};

}  // namespace pecd::api
