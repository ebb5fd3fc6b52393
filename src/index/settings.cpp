// settings.cpp - the [index] configuration section as IndexService settings
#include "config/config.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/strings.hpp"
#include "index/index_service.hpp"

namespace pecd::index {

IndexSettings settings_from_config(const config::Index& c) {
    IndexSettings s;
    if (c.source == "file")
        s.source = SourceKind::file;
    else if (c.source == "https")
        s.source = SourceKind::https;
    else if (c.source == "ldap")
        s.source = SourceKind::ldap;
    else
        s.source = SourceKind::none;
    s.file = c.file;
    s.url = c.url;
    s.ldap_uri = c.ldap_uri;
    s.ldap_base = c.ldap_base;
    s.ldap_bind_dn = c.ldap_bind_dn;
    if (!c.ldap_password_file.empty())
        s.ldap_password = std::string(trim(fs::read_file(c.ldap_password_file)));
    s.trust_anchor = c.trust_anchor;
    s.ca_file = c.ca_file;
    s.cache_file = c.cache_file;
    s.refresh_interval = c.refresh_interval;
    s.retry_interval = c.retry_interval;
    s.timeout = c.timeout;
    return s;
}

}  // namespace pecd::index
