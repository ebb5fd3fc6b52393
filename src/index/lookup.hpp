// lookup.hpp - questions every PEC point asks of the provider index
//
// Is this domain a PEC domain, and whose? Is this certificate a provider's signing
// certificate? Where do presa-in-carico notices for that provider go? Implemented by the
// in-memory index (index/provider_index.hpp); the PEC engine depends only on this.
// Matching is case-insensitive for domains and hex hashes (pec.md 6.3, 10.5).
#pragma once

#include <openssl/x509.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace pecd::index {

struct Provider {
    std::string dn;            // e.g. providerName=Aruba PEC,o=postacert
    std::string name;          // providerName
    std::string unit;          // providerUnit, empty for the main record
    std::string mail_receipt;  // service mailbox (mailReceipt)
    std::vector<std::string> domains;            // managedDomains, lower-case
    std::vector<std::string> certificate_hashes; // providerCertificateHash, lower-case hex
    std::vector<std::string> certificates_der;   // providerCertificate;binary
    std::string ldif_url;
    std::string description;
};

using ProviderPtr = std::shared_ptr<const Provider>;

class ProviderLookup {
public:
    virtual ~ProviderLookup() = default;
    // The provider managing this mail domain, or null (= not a PEC domain).
    virtual ProviderPtr by_domain(std::string_view domain) const = 0;
    // The provider whose published certificate is exactly this one (hash found AND the
    // DER bytes equal one of its providerCertificate values), or null.
    virtual ProviderPtr by_certificate(X509* cert) const = 0;
    // False while no index has been loaded yet (a daemon just started, its source not yet
    // read): every answer would be "not a provider", so callers wait instead of deciding.
    virtual bool ready() const { return true; }
};

}  // namespace pecd::index
