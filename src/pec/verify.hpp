// verify.hpp - verifying an incoming PEC message, one verdict per question
//
// verify_message() answers, separately (pec.md 5.2):
//   signature    the S/MIME signature is present, parses and matches the signed part
//   chain        the signer chains to the configured trust store (CRL when given);
//                not_checked when no trust store is configured
//   provider     the signer certificate is a provider certificate of the index
//                (index::ProviderLookup::by_certificate); not_checked without an index
//   from_domain  the From: domain is managed by that same provider (pec.md 5.2 point 4);
//                not_checked without an index or when switched off
//   consistency  the unsigned headers agree with the signed daticert.xml (X-Ricevuta vs
//                postacert@tipo, X-Trasporto vs posta-certificata, X-Riferimento-Message-ID
//                vs msgid, X-VerificaSicurezza vs errore=virus, X-TipoRicevuta vs ricevuta,
//                envelope Message-ID and postacert.eml vs identificativo, X-Mittente)
// plus the classification (pec::classify). Decisions rest on daticert.xml and the
// signature, never on the unsigned headers alone. Pure apart from CPU: no I/O, never
// throws on hostile input.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/cms.hpp"
#include "crypto/smime.hpp"
#include "index/lookup.hpp"
#include "pec/classify.hpp"
#include "pec/daticert.hpp"
#include "pec/signed_message.hpp"

namespace pecd::pec {

enum class Verdict { pass, fail, not_checked };
std::string_view to_string(Verdict v) noexcept;

struct Check {
    Verdict verdict = Verdict::not_checked;
    std::string detail;
};

struct VerifyOptions {
    const crypto::TrustStore* trust = nullptr;
    const index::ProviderLookup* index = nullptr;
    bool check_from_domain = true;  // with an index: From's domain must belong to the signer's provider
};

struct PecVerification {
    MessageFacts facts;
    crypto::CmsVerification cms;
    std::optional<Daticert> daticert;
    std::string daticert_error;
    Classification classification;
    std::string signer_subject;
    std::string signer_sha1;  // lower-case hex of the DER, the index's hash form
    index::ProviderPtr provider;
    Check signature, chain, provider_check, from_domain, consistency;
    std::vector<std::string> inconsistencies;
    std::vector<std::string> warnings;

    // A PEC message of a known kind, well formed, intact and consistent, and no checked
    // verdict failed (not_checked verdicts do not invalidate).
    bool valid() const noexcept;
};

PecVerification verify_message(std::string_view raw, const VerifyOptions& options = {});

// The consistency rules alone (headers vs daticert), for callers that parsed already.
std::vector<std::string> header_inconsistencies(const PecHeaders& h, const MessageContent& content,
                                                const Daticert& d, std::optional<MessageKind> kind);

}  // namespace pecd::pec
