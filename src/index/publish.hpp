// publish.hpp - this provider's own index record, as LDIF and as signed LDIF (.p7m)
//
// pec.md 6.2: each provider publishes its record(s) at its LDIFLocationURL as an LDIF
// signed with its PEC key (CMS SignedData, attached, DER). The record carries the
// provider's name, every current certificate with its SHA-1 hash (two during a renewal),
// the managed domains, the service mailbox and the URL; units follow as sub-records
// (without LDIFLocationURL).
//
// Contract: provider_ldif() validates the record the same way the index does (the output
// of publish must pass `pecctl index check`) and throws Error naming the bad field;
// sign_ldif() returns DER CMS with the LDIF attached, signed by the identity.
#pragma once

#include <string>
#include <vector>

#include "crypto/identity.hpp"

namespace pecd::index {

struct PublishedUnit {
    std::string name;  // providerUnit
    std::string mail_receipt;
    std::vector<std::string> domains;
};

struct PublishSpec {
    std::string provider_name;
    std::string mail_receipt;
    std::vector<std::string> domains;
    std::vector<crypto::X509Ptr> certificates;  // signing certificate(s), renewal overlap
    std::string ldif_url;
    std::string description;
    std::vector<PublishedUnit> units;
};

std::string provider_ldif(const PublishSpec& spec);
std::string sign_ldif(const crypto::SigningIdentity& identity, const std::string& ldif);

}  // namespace pecd::index
