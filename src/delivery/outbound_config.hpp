// outbound_config.hpp - the [outbound] and [dns] configuration applied to the mail system
//
// apply_outbound_config() fills MailSystemOptions from the configuration: MX routing on
// (resolvers from [dns], MX port), the TLS policy map with its default, the outbound TLS
// context (trusted roots, client certificate), the per-destination connection limit, retry
// intervals, delay notice time and queue lifetimes. Throws pecd::Error naming the
// configuration key when a value cannot be used (a policy name, an unreadable file).
#pragma once

#include "config/config.hpp"
#include "delivery/mail_system.hpp"

namespace pecd::delivery {

void apply_outbound_config(const config::Config& c, MailSystemOptions& o);

// The policy map described by [outbound] (default and per-domain entries).
tls::PolicyMap policy_map(const config::Outbound& o);

}  // namespace pecd::delivery
