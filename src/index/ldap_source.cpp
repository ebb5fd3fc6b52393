// ldap_source.cpp - the provider directory over LDAP with the OpenLDAP client library
#include "index/ldap_source.hpp"

#include <ldap.h>

#include <memory>

#include "core/error.hpp"

namespace pecd::index {
namespace {

struct LdapFree {
    void operator()(LDAP* ld) const noexcept { ldap_unbind_ext_s(ld, nullptr, nullptr); }
};
struct MessageFree {
    void operator()(LDAPMessage* m) const noexcept { ldap_msgfree(m); }
};

timeval to_timeval(std::chrono::milliseconds ms) {
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
    return tv;
}

LdifEntry read_entry(LDAP* ld, LDAPMessage* msg) {
    LdifEntry e;
    if (char* dn = ldap_get_dn(ld, msg)) {
        e.dn = dn;
        ldap_memfree(dn);
    }
    BerElement* ber = nullptr;
    for (char* attr = ldap_first_attribute(ld, msg, &ber); attr; attr = ldap_next_attribute(ld, msg, ber)) {
        std::string desc = attr;
        ldap_memfree(attr);
        LdifValue proto;
        auto semi = desc.find(';');
        proto.type = desc.substr(0, semi);
        while (semi != std::string::npos) {
            auto next = desc.find(';', semi + 1);
            std::string opt =
                desc.substr(semi + 1, next == std::string::npos ? std::string::npos : next - semi - 1);
            for (auto& c : opt) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            proto.options.push_back(opt);
            semi = next;
        }
        berval** values = ldap_get_values_len(ld, msg, desc.c_str());
        for (int i = 0; values && values[i]; ++i) {
            LdifValue v = proto;
            v.value.assign(values[i]->bv_val, values[i]->bv_len);
            e.attributes.push_back(std::move(v));
        }
        ldap_value_free_len(values);
    }
    if (ber) ber_free(ber, 0);
    return e;
}

}  // namespace

std::vector<LdifEntry> ldap_fetch_entries(const LdapQuery& q) {
    const std::string where = "LDAP " + q.uri + ": ";
    LDAP* raw = nullptr;
    int rc = ldap_initialize(&raw, q.uri.c_str());
    if (rc != LDAP_SUCCESS || !raw) throw Error(where + "bad URI: " + ldap_err2string(rc));
    std::unique_ptr<LDAP, LdapFree> ld(raw);
    int version = LDAP_VERSION3;
    ldap_set_option(ld.get(), LDAP_OPT_PROTOCOL_VERSION, &version);
    ldap_set_option(ld.get(), LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
    timeval tv = to_timeval(q.timeout);
    ldap_set_option(ld.get(), LDAP_OPT_NETWORK_TIMEOUT, &tv);
    ldap_set_option(ld.get(), LDAP_OPT_TIMEOUT, &tv);
    if (!q.ca_file.empty()) {
        ldap_set_option(ld.get(), LDAP_OPT_X_TLS_CACERTFILE, q.ca_file.c_str());
        int require = LDAP_OPT_X_TLS_DEMAND;
        ldap_set_option(ld.get(), LDAP_OPT_X_TLS_REQUIRE_CERT, &require);
        int new_ctx = 0;
        ldap_set_option(ld.get(), LDAP_OPT_X_TLS_NEWCTX, &new_ctx);
    }
    if (q.starttls) {
        rc = ldap_start_tls_s(ld.get(), nullptr, nullptr);
        if (rc != LDAP_SUCCESS) throw TemporaryError(where + "StartTLS: " + ldap_err2string(rc));
    }
    berval cred{};
    cred.bv_val = const_cast<char*>(q.password.c_str());
    cred.bv_len = q.password.size();
    rc = ldap_sasl_bind_s(ld.get(), q.bind_dn.empty() ? nullptr : q.bind_dn.c_str(), LDAP_SASL_SIMPLE, &cred,
                          nullptr, nullptr, nullptr);
    if (rc != LDAP_SUCCESS) throw TemporaryError(where + "bind: " + ldap_err2string(rc));

    const char* attrs[] = {"objectClass",
                           "providerName",
                           "providerUnit",
                           "mailReceipt",
                           "managedDomains",
                           "providerCertificateHash",
                           "providerCertificate;binary",
                           "LDIFLocationURL",
                           "description",
                           nullptr};
    LDAPMessage* res_raw = nullptr;
    rc = ldap_search_ext_s(ld.get(), q.base.c_str(), LDAP_SCOPE_SUBTREE, "(objectClass=*)",
                           const_cast<char**>(attrs), 0, nullptr, nullptr, &tv, LDAP_NO_LIMIT, &res_raw);
    std::unique_ptr<LDAPMessage, MessageFree> res(res_raw);
    if (rc == LDAP_SIZELIMIT_EXCEEDED || rc == LDAP_TIMELIMIT_EXCEEDED || rc == LDAP_ADMINLIMIT_EXCEEDED)
        throw TemporaryError(where + "search under " + q.base + " truncated: " + ldap_err2string(rc) +
                             " (raise the server's limits for this client)");
    if (rc != LDAP_SUCCESS)
        throw TemporaryError(where + "search under " + q.base + ": " + ldap_err2string(rc));
    std::vector<LdifEntry> entries;
    for (LDAPMessage* m = ldap_first_entry(ld.get(), res.get()); m; m = ldap_next_entry(ld.get(), m))
        entries.push_back(read_entry(ld.get(), m));
    return entries;
}

}  // namespace pecd::index
