// publish.cpp - writing and signing this provider's LDIF record
#include "index/publish.hpp"

#include "core/error.hpp"
#include "core/strings.hpp"
#include "crypto/cms.hpp"
#include "index/ldif.hpp"
#include "index/provider_index.hpp"

namespace pecd::index {
namespace {

// RFC 4514: characters that must be escaped in an RDN value.
std::string escape_rdn(std::string_view v) {
    std::string out;
    for (std::size_t i = 0; i < v.size(); ++i) {
        char c = v[i];
        bool special = c == ',' || c == '+' || c == '"' || c == '\\' || c == '<' || c == '>' || c == ';' ||
                       c == '=' || (i == 0 && (c == ' ' || c == '#')) || (i + 1 == v.size() && c == ' ');
        if (special) out += '\\';
        out += c;
    }
    return out;
}

void require(bool ok, const std::string& field, const std::string& why) {
    if (!ok) throw Error("publish: " + field + ": " + why);
}

std::string record(const std::string& dn, const PublishSpec& s, const std::string& unit,
                   const std::string& mail_receipt, const std::vector<std::string>& domains) {
    std::string out = write_ldif_line("dn", dn);
    out += "objectClass: top\n";
    out += "objectClass: provider\n";
    if (unit.empty() && !s.ldif_url.empty()) out += "objectClass: LDIFLocationURLObject\n";
    out += write_ldif_line("providerName", s.provider_name);
    if (!unit.empty()) out += write_ldif_line("providerUnit", unit);
    out += write_ldif_line("mailReceipt", mail_receipt);
    for (auto& d : domains) out += write_ldif_line("managedDomains", to_lower(d));
    for (auto& c : s.certificates) {
        out += write_ldif_line("providerCertificateHash", crypto::certificate_sha1_hex(c.get()));
        out += write_ldif_line("providerCertificate;binary", crypto::certificate_der(c.get()));
    }
    if (unit.empty() && !s.ldif_url.empty()) out += write_ldif_line("LDIFLocationURL", s.ldif_url);
    if (unit.empty() && !s.description.empty()) out += write_ldif_line("description", s.description);
    return out;
}

}  // namespace

std::string provider_ldif(const PublishSpec& s) {
    require(!s.provider_name.empty(), "providerName", "required");
    require(!s.mail_receipt.empty(), "mailReceipt", "required");
    require(!s.domains.empty(), "managedDomains", "at least one domain is required");
    require(!s.certificates.empty(), "providerCertificate", "at least one certificate is required");
    require(s.ldif_url.empty() || istarts_with(s.ldif_url, "https://"), "LDIFLocationURL",
            "must be an https:// URL");
    std::string main_dn = "providerName=" + escape_rdn(s.provider_name) + ",o=postacert";
    // No "version: 1" line: RFC 2849 readers accept its absence, slapadd refuses its presence.
    std::string out = record(main_dn, s, "", s.mail_receipt, s.domains);
    for (auto& u : s.units) {
        require(!u.name.empty(), "providerUnit", "a unit needs a name");
        out += "\n" + record("providerUnit=" + escape_rdn(u.name) + "," + main_dn, s, u.name,
                             u.mail_receipt.empty() ? s.mail_receipt : u.mail_receipt, u.domains);
    }
    // The same checks a receiving index applies: what we publish must load cleanly.
    std::vector<Problem> problems;
    auto index = index_from_ldif(out, &problems);
    if (!problems.empty()) throw Error("publish: " + problems.front().describe());
    return out;
}

std::string sign_ldif(const crypto::SigningIdentity& identity, const std::string& ldif) {
    return crypto::cms_sign_attached(identity, ldif);
}

}  // namespace pecd::index
