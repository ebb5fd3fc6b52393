// outbound_config.cpp - [outbound] and [dns] into MailSystemOptions (see outbound_config.hpp)
#include "delivery/outbound_config.hpp"

#include "core/error.hpp"
#include "core/strings.hpp"

namespace pecd::delivery {

tls::PolicyMap policy_map(const config::Outbound& o) {
    tls::PolicyMap map(tls::DestinationPolicy{tls::parse_policy(o.tls_policy), {}});
    for (const auto& p : o.policies) map.set(p.domain, {tls::parse_policy(p.policy), p.names});
    return map;
}

void apply_outbound_config(const config::Config& c, MailSystemOptions& o) {
    const auto& out = c.outbound;
    dns::ResolverSettings dns;
    dns.servers = c.dns.servers;
    dns.timeout = c.dns.timeout;
    dns.tries = static_cast<int>(c.dns.tries);
    dns.use_ipv6 = c.dns.ipv6;
    o.dns = dns;
    o.mx_port = out.port;

    for (const auto& r : out.routes) o.static_routes[to_lower(r.domain)] = store::parse_route(r.route);
    o.remote.policies = policy_map(out);
    o.remote.connections_per_destination = out.connections_per_destination;
    o.remote.connect_timeout = out.connect_timeout;
    tls::ClientTlsSettings t;
    t.ca_file = out.ca_file;
    t.min_version = c.tls.min_version;
    if (!out.client_certificate.empty())
        t.client_certificate = tls::CertificatePair{out.client_certificate, out.client_key};
    try {
        o.remote.tls = std::make_shared<tls::ClientTls>(t);
    } catch (const Error& e) {
        throw Error(std::string("outbound TLS ([outbound] ca_file / client_certificate / client_key): ") +
                    e.what());
    }

    o.runner.workers = out.queue_workers;
    o.runner.retry.first = out.retry_first;
    o.runner.retry.max = out.retry_max;
    o.runner.retry.delay_warning = out.delay_warning;
    o.runner.retry.lifetime = out.lifetime;
    o.runner.retry.pec_lifetime = out.pec_lifetime;
}

}  // namespace pecd::delivery
