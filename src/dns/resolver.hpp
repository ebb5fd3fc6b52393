// resolver.hpp - DNS lookups for mail routing (c-ares): MX, A, AAAA, and the mail route
//
// Resolver asks DNS servers directly (never /etc/hosts, never search domains: a mail
// domain is always fully qualified). Each lookup runs its own c-ares channel and waits
// with poll(), so a Resolver may be shared by any number of worker threads; from Asio
// code use async_mail_route(), which runs the lookup on a thread pool and completes on
// the caller's executor (co_await it with boost::asio::use_awaitable).
//
// Outcomes, the way a mail router needs them:
//   - the name exists but has no record of that type (NODATA) -> empty result;
//   - the name does not exist (NXDOMAIN) -> pecd::Error (permanent: bounce);
//   - server failure, refusal, timeout, unreachable server -> pecd::TemporaryError (retry).
//
// mail_route() implements RFC 5321 section 5.1: MX hosts by preference (hosts of equal
// preference in random order), each with its addresses; a domain without MX records is
// its own mail host (implicit MX, A/AAAA of the domain); a null MX (RFC 7505, "MX 0 .")
// means the domain accepts no mail (permanent).
#pragma once

#include <boost/asio/async_result.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <cstdint>
#include <exception>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace pecd::dns {

struct ResolverSettings {
    // "192.0.2.1", "127.0.0.1:5353", "[::1]:5353"; empty: the system's (/etc/resolv.conf).
    std::vector<std::string> servers;
    std::chrono::milliseconds timeout{3000};  // per try
    int tries = 2;
    bool use_ipv6 = true;      // look up AAAA records for mail hosts
    bool prefer_ipv6 = false;  // IPv6 addresses before IPv4 ones for the same host
};

struct MxRecord {
    std::string host;  // lower case, no trailing dot; "" for a null MX
    std::uint16_t preference = 0;
    bool operator==(const MxRecord&) const = default;
};

struct MailHost {
    std::string name;
    std::uint16_t preference = 0;
    std::vector<std::string> addresses;  // textual IPv4 / IPv6, in the order to try
    std::string error;                   // why there are no addresses (lookup failure), if any
};

struct MailRoute {
    std::string domain;
    bool implicit_mx = false;     // no MX records: the domain itself
    std::vector<MailHost> hosts;  // in the order to try; hosts without addresses are kept
};

class Resolver {
public:
    explicit Resolver(ResolverSettings settings = {});
    std::vector<MxRecord> mx(std::string_view domain) const;
    std::vector<std::string> a(std::string_view host) const;
    std::vector<std::string> aaaa(std::string_view host) const;
    // A and AAAA of host, ordered per the settings; a temporary failure of one family is
    // ignored when the other answers.
    std::vector<std::string> addresses(std::string_view host) const;
    MailRoute mail_route(std::string_view domain) const;
    const ResolverSettings& settings() const { return settings_; }

private:
    ResolverSettings settings_;
};

// Sorts by preference; records of equal preference are shuffled with rng (RFC 5321 5.1).
std::vector<MxRecord> order_mx(std::vector<MxRecord> records, std::mt19937& rng);
// True for the RFC 7505 null MX: a single record whose host is the root.
bool is_null_mx(const std::vector<MxRecord>& records);

// For Asio code on any executor: the lookup runs on `pool` and the completion handler is
// invoked on the caller's executor with (exception_ptr, MailRoute); with use_awaitable a
// failure is thrown from co_await. Written with async_initiate + post rather than a
// coroutine lambda handed to co_spawn, which GCC 12 miscompiles (double destruction of
// the lambda's captures).
template <class CompletionToken>
auto async_mail_route(const Resolver& resolver, boost::asio::thread_pool& pool, std::string domain,
                      CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, void(std::exception_ptr, MailRoute)>(
        [&resolver, &pool](auto handler, std::string name) {
            auto work = boost::asio::make_work_guard(handler);
            boost::asio::post(pool, [&resolver, name = std::move(name), handler = std::move(handler),
                                     work = std::move(work)]() mutable {
                std::exception_ptr error;
                MailRoute route;
                try {
                    route = resolver.mail_route(name);
                } catch (...) {
                    error = std::current_exception();
                }
                auto executor = work.get_executor();
                boost::asio::post(executor,
                                  [handler = std::move(handler), error, route = std::move(route)]() mutable {
                                      std::move(handler)(error, std::move(route));
                                  });
            });
        },
        token, std::move(domain));
}

}  // namespace pecd::dns
