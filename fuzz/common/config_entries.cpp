// config_entries.cpp - the configuration reader's promises (see config_entries.hpp)
#include "config_entries.hpp"

#include <chrono>
#include <exception>
#include <set>

#include "config/config.hpp"
#include "core/calendar.hpp"
#include "core/error.hpp"

namespace pecd::fuzz {
namespace {

constexpr auto kTenYears = std::chrono::seconds(10ll * 365 * 86400);

// In floating point, so that checking an absurd period cannot overflow itself.
using Period = std::chrono::duration<double>;

std::string period_problem(const char* key, Period d) {
    if (d <= Period::zero()) return std::string(key) + " is not positive";
    if (d > kTenYears) return std::string(key) + " is longer than ten years";
    return {};
}

std::string usable(const config::Config& c) {
    if (c.data_dir.empty()) return "no data directory";
    if (c.listeners.empty()) return "no listener";
    if (c.threads < 1 || c.threads > 256) return "threads out of range";
    std::set<std::string> names;
    for (const auto& l : c.listeners) {
        if (!names.insert(l.name).second) return "duplicate listener " + l.name;
        if (l.tls != "none" && l.tls != "starttls" && l.tls != "starttls-required" && l.tls != "implicit")
            return "unknown TLS mode " + l.tls;
        if (l.auth && l.tls == "none") return "AUTH offered without TLS on " + l.name;
    }
    const std::pair<const char*, Period> periods[] = {
        {"limits.idle_timeout", c.limits.idle_timeout},
        {"limits.auth_failure_window", c.limits.auth_failure_window},
        {"limits.in_flow_delay", c.limits.in_flow_delay},
        {"antivirus.connect_timeout", c.antivirus.connect_timeout},
        {"antivirus.timeout", c.antivirus.timeout},
        {"tls.reload_interval", c.tls.reload_interval},
        {"outbound.connect_timeout", c.outbound.connect_timeout},
        {"outbound.retry_first", c.outbound.retry_first},
        {"outbound.retry_max", c.outbound.retry_max},
        {"outbound.lifetime", c.outbound.lifetime},
        {"outbound.pec_lifetime", c.outbound.pec_lifetime},
        {"dns.timeout_ms", c.dns.timeout},
        {"store.claim_lease", c.store.claim_lease},
        {"index.refresh_interval", c.index.refresh_interval},
        {"index.retry_interval", c.index.retry_interval},
        {"index.timeout", c.index.timeout},
        {"pec.timer_interval", c.pec.timer_interval},
        {"pec.notice24_after", c.pec.notice24_after},
        {"log.segment_interval", c.log.segment_interval},
        {"api.jwks_refresh", c.api.jwks_refresh},
        {"api.jwks_min_refresh", c.api.jwks_min_refresh},
        {"api.leeway", c.api.leeway},
        {"api.idle_timeout", c.api.idle_timeout},
        {"api.closure_sweep_interval", c.api.closure_sweep_interval},
    };
    for (const auto& [key, d] : periods)
        if (auto p = period_problem(key, d); !p.empty()) return p;
    // Zero turns delay notices off.
    if (c.outbound.delay_warning < std::chrono::seconds(0) || c.outbound.delay_warning > kTenYears)
        return "outbound.delay_warning out of range";
    for (unsigned months : {c.log.retention_months, c.antivirus.retention_months})
        if (months < 30 || months > static_cast<unsigned>(kMaxRetentionMonths))
            return "retention out of range";
    if (c.dns.tries < 1 || c.dns.tries > 10) return "dns.tries out of range";
    if (c.dns.timeout > std::chrono::minutes(1)) return "dns.timeout_ms over a minute";
    if (c.api.enabled && (!config::split_host_port(c.api.listen) || !c.pec.enabled || !c.log.enabled))
        return "API on without a listen address, [pec] or [log]";
    if (c.pec.enabled && (c.pec.max_recipients < 50 || c.pec.max_volume < (30ull << 20)))
        return "PEC limits below pec.md 5.1";
    return {};
}

}  // namespace

ConfigOutcome config_entry(std::string_view text) {
    ConfigOutcome out;
    try {
        auto c = config::parse_config(text, "fuzz.toml");
        out.accepted = true;
        if (auto p = usable(c); !p.empty()) out.violation = "accepted but unusable: " + p;
    } catch (const ParseError& e) {
        out.error = e.what();
        if (e.line() == 0 && e.field().empty())
            out.violation = "refused without a line or a key: " + out.error;
    } catch (const std::exception& e) {
        out.violation = std::string("escaped: ") + e.what();
    }
    return out;
}

}  // namespace pecd::fuzz
