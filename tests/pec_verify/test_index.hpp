// test_index.hpp - an in-memory index::ProviderLookup for the reading-side tests
//
// Follows the interface contract: domains and hashes match case-insensitively, and a
// certificate is a provider's only when its SHA-1 is listed AND its DER equals one of the
// provider's certificates.
#pragma once

#include <string>
#include <vector>

#include "core/strings.hpp"
#include "crypto/cms.hpp"
#include "index/lookup.hpp"

namespace pecd::test {

class TestIndex final : public index::ProviderLookup {
public:
    void add(std::string dn, std::string name, std::vector<std::string> domains, std::vector<X509*> certs) {
        auto p = std::make_shared<index::Provider>();
        p->dn = std::move(dn);
        p->name = std::move(name);
        p->mail_receipt = "posta-certificata@" + (domains.empty() ? std::string("invalid") : domains[0]);
        for (auto& d : domains) p->domains.push_back(to_lower(d));
        for (X509* c : certs) {
            p->certificate_hashes.push_back(crypto::certificate_sha1_hex(c));
            p->certificates_der.push_back(crypto::certificate_der(c));
        }
        providers_.push_back(std::move(p));
    }
    index::ProviderPtr by_domain(std::string_view domain) const override {
        for (auto& p : providers_)
            for (auto& d : p->domains)
                if (iequals(d, domain)) return p;
        return nullptr;
    }
    index::ProviderPtr by_certificate(X509* cert) const override {
        auto hash = crypto::certificate_sha1_hex(cert);
        auto der = crypto::certificate_der(cert);
        for (auto& p : providers_)
            for (std::size_t i = 0; i < p->certificate_hashes.size(); ++i)
                if (iequals(p->certificate_hashes[i], hash) && p->certificates_der[i] == der) return p;
        return nullptr;
    }

private:
    std::vector<std::shared_ptr<index::Provider>> providers_;
};

}  // namespace pecd::test
