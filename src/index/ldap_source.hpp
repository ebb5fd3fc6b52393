// ldap_source.hpp - reading the provider directory from a live LDAP server (libldap)
//
// One subtree search under the base (o=postacert) returns every entry with the PEC
// attributes; providerCertificate is asked for with the ;binary option (its syntax,
// Certificate, is transferred that way). The entries go through the same build_index()
// as a file, so LDAP and LDIF lookups agree.
//
// Contract: ldap_fetch_entries() binds (anonymously unless bind_dn is set), searches, and
// returns the entries; a connection, bind or search failure, a timeout, or a truncated
// result (size or time limit) throws TemporaryError naming the URI and libldap's reason.
// The password is never logged or put in an error message.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "index/ldif.hpp"

namespace pecd::index {

struct LdapQuery {
    std::string uri;  // ldap://host:port or ldaps://host:port
    std::string base = "o=postacert";
    std::string bind_dn;            // empty: anonymous
    std::string password;           // never logged
    std::filesystem::path ca_file;  // for ldaps:// and StartTLS; empty: system default
    bool starttls = false;
    std::chrono::milliseconds timeout{30000};
};

std::vector<LdifEntry> ldap_fetch_entries(const LdapQuery& query);

}  // namespace pecd::index
