// verified_pec_view.hpp - the daemon's answers about a stored message as PEC
//
// What the running provider knows beyond the mailbox store:
//   - verify(): the verdict of `pecctl verify` (pec/verify.hpp): S/MIME structure,
//     signature, signer chain against the provider trust anchors, signer in the provider
//     index, daticert consistency; "valid" or "invalid" with the failed checks named;
//   - history(): the legal-log events naming the message's PEC id (X-Riferimento-
//     Message-ID): presa in carico, consegna, mancata consegna ... with the ids of the
//     receipts issued, so a receive-only mailbox's reader sees which receipts the sender got.
// status() is the store's (what being in a mailbox means).
// Thread-safe: verification keeps no state, and the legal log reads are snapshot reads.
#pragma once

#include "api/pec_view.hpp"
#include "crypto/trust_files.hpp"
#include "index/lookup.hpp"
#include "log/legal_log.hpp"

namespace pecd::api {

class VerifiedPecView final : public PecView {
public:
    // index may be null (no provider index: the provider checks are "not checked").
    VerifiedPecView(const crypto::TrustFiles& trust, const index::ProviderLookup* index,
                    const log::LegalLog& log)
        : trust_(trust), index_(index), log_(log) {}
    std::string status(const MessageHeaders& h) const override { return store_.status(h); }
    Verdict verify(std::string_view raw, const MessageHeaders& h) const override;
    std::vector<PecEventInfo> history(const MessageHeaders& h) const override;
    std::string source() const override { return "pec-engine"; }

private:
    StorePecView store_;
    const crypto::TrustFiles& trust_;
    const index::ProviderLookup* index_;
    const log::LegalLog& log_;
};

}  // namespace pecd::api
