// demo.hpp - the embedded default's PEC provider: a demo CA, a signing certificate and
//            a provider index that lists this provider
//
// A PEC provider needs a signing certificate from a CA its peers trust and a place in
// the provider index (pec.md 6). On a fresh machine there is neither, so the embedded
// default makes its own, once, under <data_dir>/pec:
//   ca.pem, ca.key            a demo CA (RSA 2048), the trust anchor of provider signatures
//   signing.pem, signing.key  posta-certificata@<domain>, issued by that CA with the PEC
//                             profile (digitalSignature, emailProtection, rfc822Name SAN)
//   index.ldif                this provider's index record (providerName, certificate and
//                             its SHA-1, managed domains, mailReceipt)
// Files that exist are kept, so restarts sign with the same key. Keys are mode 0600.
// A real provider replaces all of this with [pec] signing_* / trust_anchors and [index].
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace pecd::provider {

struct DemoIdentity {
    std::filesystem::path ca_certificate;
    std::filesystem::path certificate;
    std::filesystem::path key;
};

// Creates dir/ca.pem + dir/ca.key unless present.
void ensure_demo_ca(const std::filesystem::path& dir);
// Issues <out>/signing.pem + signing.key for posta-certificata@<domain> from the CA in
// ca_dir unless present.
DemoIdentity ensure_demo_signing(const std::filesystem::path& ca_dir, const std::filesystem::path& out,
                                 const std::string& domain, const std::string& provider_name);

// Fills [pec] (signing pair, trust anchors) and, when no index source is configured,
// [index] (source = file) of the embedded default, creating the files above.
void ensure_demo_provider(config::Config& c);

}  // namespace pecd::provider
