// resolver.cpp - DNS lookups for mail routing (c-ares): MX, A, AAAA, and the mail route
//
// See resolver.hpp for the contract. The wait loop uses ares_getsock() + poll() rather than
// ares_fds() + select(): a daemon with thousands of open connections has descriptors
// above FD_SETSIZE, which select() cannot handle.
#include "dns/resolver.hpp"

#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <poll.h>

#include <algorithm>
#include <memory>
#include <mutex>

#include "core/error.hpp"
#include "core/strings.hpp"

namespace pecd::dns {
namespace {

void init_library() {
    static std::once_flag once;
    std::call_once(once, [] {
        int rc = ares_library_init(ARES_LIB_INIT_ALL);
        if (rc != ARES_SUCCESS) throw Error(std::string("c-ares init: ") + ares_strerror(rc));
    });
}

struct ChannelDeleter {
    void operator()(ares_channel c) const noexcept { ares_destroy(c); }
};
using ChannelPtr = std::unique_ptr<std::remove_pointer_t<ares_channel>, ChannelDeleter>;

ChannelPtr open_channel(const ResolverSettings& s) {
    init_library();
    ares_options opts{};
    opts.timeout = static_cast<int>(s.timeout.count());
    opts.tries = s.tries;
    ares_channel raw = nullptr;
    int rc = ares_init_options(&raw, &opts, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
    if (rc != ARES_SUCCESS) throw TemporaryError(std::string("DNS resolver: ") + ares_strerror(rc));
    ChannelPtr channel(raw);
    if (!s.servers.empty()) {
        std::string csv;
        for (const auto& server : s.servers) csv += (csv.empty() ? "" : ",") + server;
        rc = ares_set_servers_ports_csv(channel.get(), csv.c_str());
        if (rc != ARES_SUCCESS) throw Error("DNS servers '" + csv + "': " + ares_strerror(rc));
    }
    return channel;
}

void wait_for(ares_channel channel) {
    // Bounded: c-ares' own timeouts end every query; the cap only guards against a bug.
    for (int rounds = 0; rounds < 100000; ++rounds) {
        ares_socket_t socks[ARES_GETSOCK_MAXNUM];
        int mask = ares_getsock(channel, socks, ARES_GETSOCK_MAXNUM);
        pollfd fds[ARES_GETSOCK_MAXNUM];
        nfds_t n = 0;
        for (int i = 0; i < ARES_GETSOCK_MAXNUM; ++i) {
            short events = 0;
            if (ARES_GETSOCK_READABLE(mask, i)) events |= POLLIN;
            if (ARES_GETSOCK_WRITABLE(mask, i)) events |= POLLOUT;
            if (events) fds[n++] = pollfd{socks[i], events, 0};
        }
        if (n == 0) return;
        timeval tv{};
        timeval* left = ares_timeout(channel, nullptr, &tv);
        int ms = left ? static_cast<int>(left->tv_sec * 1000 + left->tv_usec / 1000) + 1 : 1000;
        int ready = ::poll(fds, n, ms);
        if (ready <= 0) {
            ares_process_fd(channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // timeouts
            continue;
        }
        for (nfds_t i = 0; i < n; ++i) {
            ares_socket_t r = (fds[i].revents & (POLLIN | POLLERR | POLLHUP)) ? fds[i].fd : ARES_SOCKET_BAD;
            ares_socket_t w = (fds[i].revents & (POLLOUT | POLLERR | POLLHUP)) ? fds[i].fd : ARES_SOCKET_BAD;
            if (r != ARES_SOCKET_BAD || w != ARES_SOCKET_BAD) ares_process_fd(channel, r, w);
        }
    }
}

struct Reply {
    bool done = false;
    int status = ARES_ETIMEOUT;
    std::string answer;
};

Reply query(const ResolverSettings& s, std::string_view name, int type) {
    auto channel = open_channel(s);
    Reply reply;
    std::string qname(name);
    ares_query(
        channel.get(), qname.c_str(), ns_c_in, type,
        [](void* arg, int status, int, unsigned char* abuf, int alen) {
            auto* r = static_cast<Reply*>(arg);
            r->done = true;
            r->status = status;
            if (abuf && alen > 0)
                r->answer.assign(reinterpret_cast<char*>(abuf), static_cast<std::size_t>(alen));
        },
        &reply);
    wait_for(channel.get());
    return reply;
}

std::string normalized_name(std::string_view name) {
    std::string n = to_lower(trim(name));
    if (!n.empty() && n.back() == '.') n.pop_back();
    if (n.empty()) throw Error("DNS: empty domain name");
    if (n.size() > 253 || n.find_first_of(" \t\r\n,") != std::string::npos)
        throw Error("DNS: invalid domain name '" + std::string(name) + "'");
    return n;
}

const char* type_name(int type) {
    switch (type) {
        case ns_t_mx:
            return "MX";
        case ns_t_a:
            return "A";
        case ns_t_aaaa:
            return "AAAA";
        default:
            return "?";
    }
}

// Throws for NXDOMAIN and failures; returns false for "no records of this type".
bool check_status(const Reply& r, std::string_view name, int type) {
    switch (r.status) {
        case ARES_SUCCESS:
            return true;
        case ARES_ENODATA:
            return false;
        case ARES_ENOTFOUND:
            throw Error("DNS: " + std::string(name) + " does not exist (" + type_name(type) +
                        " lookup: NXDOMAIN)");
        default:
            throw TemporaryError("DNS: " + std::string(type_name(type)) + " lookup of " + std::string(name) +
                                 " failed: " + ares_strerror(r.status));
    }
}

const unsigned char* bytes(const std::string& s) {
    return reinterpret_cast<const unsigned char*>(s.data());
}

}  // namespace

Resolver::Resolver(ResolverSettings settings) : settings_(std::move(settings)) {
    init_library();
}

std::vector<MxRecord> Resolver::mx(std::string_view domain) const {
    auto name = normalized_name(domain);
    auto reply = query(settings_, name, ns_t_mx);
    if (!check_status(reply, name, ns_t_mx)) return {};
    ares_mx_reply* head = nullptr;
    int rc = ares_parse_mx_reply(bytes(reply.answer), static_cast<int>(reply.answer.size()), &head);
    if (rc == ARES_ENODATA) return {};
    if (rc != ARES_SUCCESS) throw TemporaryError("DNS: bad MX answer for " + name + ": " + ares_strerror(rc));
    std::vector<MxRecord> out;
    for (ares_mx_reply* m = head; m; m = m->next) {
        std::string host = to_lower(m->host ? m->host : "");
        if (!host.empty() && host.back() == '.') host.pop_back();
        out.push_back({host, m->priority});
    }
    ares_free_data(head);
    return out;
}

std::vector<std::string> Resolver::a(std::string_view host) const {
    auto name = normalized_name(host);
    auto reply = query(settings_, name, ns_t_a);
    if (!check_status(reply, name, ns_t_a)) return {};
    ares_addrttl ttls[64];
    int count = 64;
    hostent* he = nullptr;
    int rc =
        ares_parse_a_reply(bytes(reply.answer), static_cast<int>(reply.answer.size()), &he, ttls, &count);
    if (he) ares_free_hostent(he);
    if (rc == ARES_ENODATA) return {};
    if (rc != ARES_SUCCESS) throw TemporaryError("DNS: bad A answer for " + name + ": " + ares_strerror(rc));
    std::vector<std::string> out;
    for (int i = 0; i < count; ++i) {
        char buf[INET_ADDRSTRLEN];
        if (inet_ntop(AF_INET, &ttls[i].ipaddr, buf, sizeof buf)) out.emplace_back(buf);
    }
    return out;
}

std::vector<std::string> Resolver::aaaa(std::string_view host) const {
    auto name = normalized_name(host);
    auto reply = query(settings_, name, ns_t_aaaa);
    if (!check_status(reply, name, ns_t_aaaa)) return {};
    ares_addr6ttl ttls[64];
    int count = 64;
    hostent* he = nullptr;
    int rc =
        ares_parse_aaaa_reply(bytes(reply.answer), static_cast<int>(reply.answer.size()), &he, ttls, &count);
    if (he) ares_free_hostent(he);
    if (rc == ARES_ENODATA) return {};
    if (rc != ARES_SUCCESS)
        throw TemporaryError("DNS: bad AAAA answer for " + name + ": " + ares_strerror(rc));
    std::vector<std::string> out;
    for (int i = 0; i < count; ++i) {
        char buf[INET6_ADDRSTRLEN];
        if (inet_ntop(AF_INET6, &ttls[i].ip6addr, buf, sizeof buf)) out.emplace_back(buf);
    }
    return out;
}

std::vector<std::string> Resolver::addresses(std::string_view host) const {
    std::vector<std::string> v4, v6;
    std::string temporary;
    try {
        v4 = a(host);
    } catch (const TemporaryError& e) {
        temporary = e.what();
    }
    if (settings_.use_ipv6) {
        try {
            v6 = aaaa(host);
        } catch (const TemporaryError& e) {
            temporary = e.what();
        } catch (const Error&) {
            // NXDOMAIN for AAAA after A answered cannot be; without A it is reported below.
            if (!v4.empty()) throw;
        }
    }
    if (v4.empty() && v6.empty() && !temporary.empty()) throw TemporaryError(temporary);
    auto& first = settings_.prefer_ipv6 ? v6 : v4;
    auto& second = settings_.prefer_ipv6 ? v4 : v6;
    first.insert(first.end(), second.begin(), second.end());
    return first;
}

std::vector<MxRecord> order_mx(std::vector<MxRecord> records, std::mt19937& rng) {
    std::shuffle(records.begin(), records.end(), rng);
    std::stable_sort(records.begin(), records.end(),
                     [](const MxRecord& x, const MxRecord& y) { return x.preference < y.preference; });
    return records;
}

bool is_null_mx(const std::vector<MxRecord>& records) {
    return records.size() == 1 && records.front().host.empty();
}

MailRoute Resolver::mail_route(std::string_view domain) const {
    MailRoute route;
    route.domain = normalized_name(domain);
    auto records = mx(route.domain);  // NXDOMAIN and failures propagate
    if (is_null_mx(records)) throw Error("domain " + route.domain + " accepts no mail (null MX, RFC 7505)");
    if (records.empty()) {
        route.implicit_mx = true;
        records.push_back({route.domain, 0});
    }
    thread_local std::mt19937 rng{std::random_device{}()};
    std::string temporary;
    for (auto& r : order_mx(std::move(records), rng)) {
        if (r.host.empty()) continue;  // a root target mixed with real hosts is meaningless
        MailHost host{r.host, r.preference, {}, {}};
        try {
            host.addresses = addresses(r.host);
            if (host.addresses.empty()) host.error = "no A/AAAA records";
        } catch (const TemporaryError& e) {
            host.error = e.what();
            temporary = e.what();
        } catch (const Error& e) {
            host.error = e.what();
        }
        route.hosts.push_back(std::move(host));
    }
    bool reachable = std::any_of(route.hosts.begin(), route.hosts.end(),
                                 [](const MailHost& h) { return !h.addresses.empty(); });
    if (!reachable) {
        if (!temporary.empty())
            throw TemporaryError("no mail host of " + route.domain + " resolved: " + temporary);
        throw Error("no mail host of " + route.domain + " has an address" +
                    (route.hosts.empty() ? "" : " (" + route.hosts.front().error + ")"));
    }
    return route;
}

}  // namespace pecd::dns
