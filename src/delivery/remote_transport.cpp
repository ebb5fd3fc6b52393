// remote_transport.cpp - LMTP/SMTP next hops over Boost.Asio (see remote_transport.hpp)
//
// Each connection has its own io_context, run by the queue worker delivering on it (a
// cached one moves between workers, never used by two at once); every network step is
// started asynchronously and the context is run for that step's timeout, so a silent peer
// costs a bounded wait and never blocks the worker for good.
#include "delivery/remote_transport.hpp"

#include <poll.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "core/error.hpp"
#include "core/strings.hpp"
#include "smtp/client.hpp"

namespace pecd::delivery {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

class HandshakeError : public TemporaryError {
public:
    using TemporaryError::TemporaryError;
};

class Connection {
public:
    explicit Connection(std::string what) : what_(std::move(what)) {}

    void connect_tcp(const std::string& host, std::uint16_t port, Clock::duration timeout) {
        tcp::resolver resolver(io_);
        tcp::resolver::results_type endpoints;
        run(
            [&](auto done) {
                resolver.async_resolve(
                    host, std::to_string(port),
                    [&, done](const boost::system::error_code& ec, tcp::resolver::results_type r) {
                        endpoints = std::move(r);
                        done(ec);
                    });
            },
            timeout, "resolve " + host, [&] { resolver.cancel(); });
        tcp_.emplace(io_);
        run(
            [&](auto done) {
                asio::async_connect(
                    *tcp_, endpoints,
                    [done](const boost::system::error_code& ec, const tcp::endpoint&) { done(ec); });
            },
            timeout, "connect to " + what_, [&] { close(); });
        boost::system::error_code ignored;
        tcp_->set_option(tcp::no_delay(true), ignored);
    }

    void connect_unix(const std::string& path, Clock::duration timeout) {
        unix_.emplace(io_);
        run(
            [&](auto done) {
                unix_->async_connect(asio::local::stream_protocol::endpoint(path),
                                     [done](const boost::system::error_code& ec) { done(ec); });
            },
            timeout, "connect to " + path, [&] { close(); });
    }

    void start_tls(tls::ClientTls& tls, const std::string& server_name, const std::string& session_key,
                   Clock::duration timeout) {
        tls_ = std::make_unique<asio::ssl::stream<tcp::socket>>(std::move(*tcp_), tls.context());
        tcp_.reset();
        tls.prepare(tls_->native_handle(), server_name, session_key);
        try {
            run(
                [&](auto done) {
                    tls_->async_handshake(asio::ssl::stream_base::client,
                                          [done](const boost::system::error_code& ec) { done(ec); });
                },
                timeout, "TLS handshake with " + what_, [&] { close(); });
        } catch (const TemporaryError& e) {
            throw HandshakeError(e.what());
        }
    }

    SSL* ssl() { return tls_ ? tls_->native_handle() : nullptr; }

    // Nothing to read and not closed: an idle session the peer has not given up. A
    // peer that timed out has sent 421 or closed, both of which make the socket readable.
    bool quiet() {
        if (tls_ && SSL_pending(tls_->native_handle()) > 0) return false;
        int fd = tls_ ? tls_->lowest_layer().native_handle() : tcp_ ? tcp_->native_handle() : -1;
        if (fd < 0) return false;
        pollfd p{fd, POLLIN, 0};
        return ::poll(&p, 1, 0) == 0;
    }

    void write(std::string_view data, Clock::duration timeout) {
        if (data.empty()) return;
        run(
            [&](auto done) {
                auto handler = [done](const boost::system::error_code& ec, std::size_t) { done(ec); };
                if (tls_)
                    asio::async_write(*tls_, asio::buffer(data), handler);
                else if (tcp_)
                    asio::async_write(*tcp_, asio::buffer(data), handler);
                else
                    asio::async_write(*unix_, asio::buffer(data), handler);
            },
            timeout, "write to " + what_, [&] { close(); });
    }

    std::size_t read_some(char* buf, std::size_t size, Clock::duration timeout) {
        std::size_t n = 0;
        run(
            [&](auto done) {
                auto handler = [&n, done](const boost::system::error_code& ec, std::size_t k) {
                    n = k;
                    done(ec);
                };
                if (tls_)
                    tls_->async_read_some(asio::buffer(buf, size), handler);
                else if (tcp_)
                    tcp_->async_read_some(asio::buffer(buf, size), handler);
                else
                    unix_->async_read_some(asio::buffer(buf, size), handler);
            },
            timeout, "read from " + what_, [&] { close(); });
        return n;
    }

    void close() {
        boost::system::error_code ec;
        if (tls_) tls_->lowest_layer().close(ec);
        if (tcp_) tcp_->close(ec);
        if (unix_) unix_->close(ec);
    }

private:
    // Starts one operation with a completion `done(ec)` and runs the context until it
    // completes or the timeout passes (then `cancel` and a TemporaryError).
    template <class Start, class Cancel>
    void run(Start&& start, Clock::duration timeout, const std::string& what, Cancel&& cancel) {
        bool finished = false;
        boost::system::error_code result;
        start([&finished, &result](const boost::system::error_code& ec) {
            result = ec;
            finished = true;
        });
        io_.restart();
        io_.run_for(timeout);
        if (!finished) {
            cancel();
            io_.restart();
            io_.run();
            throw TemporaryError(what + ": timed out");
        }
        if (result) throw TemporaryError(what + ": " + result.message());
    }

    std::string what_;
    asio::io_context io_;
    std::optional<tcp::socket> tcp_;
    std::optional<asio::local::stream_protocol::socket> unix_;
    std::unique_ptr<asio::ssl::stream<tcp::socket>> tls_;
};

smtp::Reply read_reply(Connection& c, smtp::ReplyParser& parser, Clock::duration timeout) {
    char buf[8192];
    for (;;) {
        if (auto r = parser.next()) return *r;
        auto n = c.read_some(buf, sizeof buf, timeout);
        parser.feed(std::string_view(buf, n));
    }
}

void send_body(Connection& c, const std::filesystem::path& data, Clock::duration timeout) {
    std::ifstream in(data, std::ios::binary);
    if (!in) throw TemporaryError("cannot open queued message " + data.string());
    smtp::DotStuffer stuffer;
    std::string chunk(64 * 1024, '\0');
    for (;;) {
        in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
        auto n = static_cast<std::size_t>(in.gcount());
        if (in.bad()) throw TemporaryError("cannot read queued message " + data.string());
        auto out = stuffer.encode(std::string_view(chunk.data(), n));
        const bool last = !in;
        if (last) out += stuffer.finish();  // with the last chunk: one TLS record fewer
        c.write(out, timeout);
        if (last) return;
    }
}

// An SMTP session between transactions: what the next ClientSession needs to resume it.
struct OpenSession {
    std::unique_ptr<Connection> conn;
    smtp::ReplyParser parser;
    smtp::Extensions ext;
    bool tls_active = false;
    std::string tls_note;
    std::size_t uses = 0;  // transactions completed on it
    Clock::time_point opened;
};

// A reused session that broke before the body went out: the message may go again.
class StaleSession : public TemporaryError {
public:
    using TemporaryError::TemporaryError;
};

struct AttemptResult {
    std::vector<std::optional<smtp::Reply>> replies;
    bool handshake_failed = false;
    bool stale = false;  // a reused session failed before the body: retry on a new connection
    bool reused = false;
    std::string tls_note;               // policy, protocol, cipher, verification outcome
    std::unique_ptr<OpenSession> keep;  // the session, when it can carry another message
};

void say_goodbye(OpenSession& s) {
    try {
        s.conn->write("QUIT\r\n", std::chrono::seconds(1));
    } catch (const std::exception&) {
        // The peer may be gone already; the socket closes either way.
    }
    s.conn->close();
}

// One place to connect to: a host name (for TLS names and logs) and its address.
struct Target {
    std::string name;
    std::string address;  // what to connect to (an IP address, or the name for a next hop)
    std::uint16_t port = 0;
    std::string unix_path;
    std::string label() const {
        if (!unix_path.empty()) return unix_path;
        return name == address ? name + ":" + std::to_string(port)
                               : name + "[" + address + "]:" + std::to_string(port);
    }
};

}  // namespace

// Counts open connections per destination; acquire() waits (bounded) for a free slot.
class RemoteTransport::Slots {
public:
    class Lease {
    public:
        Lease(Slots* s, std::string key) : slots_(s), key_(std::move(key)) {}
        Lease(Lease&& o) noexcept : slots_(std::exchange(o.slots_, nullptr)), key_(std::move(o.key_)) {}
        Lease(const Lease&) = delete;
        Lease& operator=(const Lease&) = delete;
        Lease& operator=(Lease&&) = delete;
        ~Lease() {
            if (slots_) slots_->release(key_);
        }
        explicit operator bool() const { return slots_ != nullptr; }

    private:
        Slots* slots_;
        std::string key_;
    };

    Lease acquire(const std::string& key, std::size_t limit, std::chrono::milliseconds wait) {
        std::unique_lock lock(mutex_);
        if (!cv_.wait_for(lock, wait, [&] { return open_[key] < std::max<std::size_t>(1, limit); }))
            return Lease(nullptr, key);
        ++open_[key];
        peak_[key] = std::max(peak_[key], open_[key]);
        return Lease(this, key);
    }
    std::size_t peak(const std::string& key) const {
        std::lock_guard lock(mutex_);
        auto it = peak_.find(key);
        return it == peak_.end() ? 0 : it->second;
    }

private:
    void release(const std::string& key) {
        {
            std::lock_guard lock(mutex_);
            if (--open_[key] == 0) open_.erase(key);
        }
        cv_.notify_all();
    }
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::map<std::string, std::size_t> open_;
    std::map<std::string, std::size_t> peak_;
};

// Idle SMTP sessions by session key (slot key, next hop, TLS policy, reference names),
// each holding its connection slot. A reaper thread closes those idle too long.
class RemoteTransport::Cache {
public:
    struct Entry {
        std::unique_ptr<OpenSession> session;
        Slots::Lease lease;
        std::string slot_key;
        Clock::time_point idle_since;
    };

    Cache(const RemoteOptions& o) : options_(o) {
        if (enabled()) reaper_ = std::thread([this] { reap(); });
    }
    ~Cache() {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        cv_.notify_all();
        if (reaper_.joinable()) reaper_.join();
        for (auto& [key, list] : idle_)
            for (auto& e : list) say_goodbye(*e->session);
    }
    bool enabled() const { return options_.connection_idle.count() > 0; }

    // The most recently parked live session for `key`; dead or expired ones are closed.
    std::unique_ptr<Entry> take(const std::string& key) {
        for (;;) {
            std::unique_ptr<Entry> e;
            {
                std::lock_guard lock(mutex_);
                auto it = idle_.find(key);
                if (it == idle_.end()) return nullptr;
                e = std::move(it->second.back());
                it->second.pop_back();
                if (it->second.empty()) idle_.erase(it);
            }
            if (Clock::now() - e->idle_since < options_.connection_idle && e->session->conn->quiet() &&
                !e->session->parser.has_partial()) {
                reused_.fetch_add(1);
                return e;
            }
            e->session->conn->close();
        }
    }

    // Parks a session after a transaction, unless it has served its uses or its time.
    void put(const std::string& key, std::unique_ptr<Entry> e) {
        if (e->session->uses >= options_.connection_max_uses ||
            Clock::now() - e->session->opened >= options_.connection_max_age) {
            say_goodbye(*e->session);
            return;
        }
        e->idle_since = Clock::now();
        std::lock_guard lock(mutex_);
        idle_[key].push_back(std::move(e));
    }

    // Closes one idle session holding a slot of `slot_key`, for a delivery that needs one.
    bool evict_one(const std::string& slot_key) {
        std::unique_ptr<Entry> victim;
        {
            std::lock_guard lock(mutex_);
            for (auto it = idle_.begin(); it != idle_.end() && !victim; ++it) {
                auto& list = it->second;
                for (auto e = list.begin(); e != list.end(); ++e)
                    if ((*e)->slot_key == slot_key) {
                        victim = std::move(*e);
                        list.erase(e);
                        break;
                    }
                if (list.empty()) {
                    idle_.erase(it);
                    break;
                }
            }
        }
        if (victim) say_goodbye(*victim->session);
        return victim != nullptr;
    }

    std::size_t reused() const { return reused_.load(); }

private:
    void reap() {
        std::unique_lock lock(mutex_);
        auto period = std::max<Clock::duration>(options_.connection_idle / 2, std::chrono::milliseconds(50));
        while (!stopping_) {
            cv_.wait_for(lock, period, [&] { return stopping_; });
            std::vector<std::unique_ptr<Entry>> expired;
            auto now = Clock::now();
            for (auto it = idle_.begin(); it != idle_.end();) {
                auto& list = it->second;
                for (auto e = list.begin(); e != list.end();) {
                    if (now - (*e)->idle_since >= options_.connection_idle) {
                        expired.push_back(std::move(*e));
                        e = list.erase(e);
                    } else {
                        ++e;
                    }
                }
                it = list.empty() ? idle_.erase(it) : std::next(it);
            }
            if (expired.empty()) continue;
            // QUIT may wait on the network: not while deliveries need the lock.
            lock.unlock();
            for (auto& e : expired) say_goodbye(*e->session);
            expired.clear();
            lock.lock();
        }
    }

    const RemoteOptions& options_;
    std::mutex mutex_;
    std::condition_variable cv_;
    bool stopping_ = false;
    std::map<std::string, std::vector<std::unique_ptr<Entry>>> idle_;
    std::atomic<std::size_t> reused_{0};
    std::thread reaper_;
};

RemoteTransport::RemoteTransport(RemoteOptions options)
    : options_(std::move(options)),
      slots_(std::make_unique<Slots>()),
      cache_(std::make_unique<Cache>(options_)) {}

RemoteTransport::~RemoteTransport() = default;

std::size_t RemoteTransport::reused_sessions() const {
    return cache_->reused();
}

std::size_t RemoteTransport::peak_connections(const std::string& destination) const {
    return slots_->peak(to_lower(destination));
}

std::vector<queue::RecipientResult> RemoteTransport::deliver(const queue::DeliveryAttempt& a) {
    const auto& route = a.route;
    const bool lmtp = route.kind == store::Route::Kind::lmtp;
    const bool via_mx = route.kind == store::Route::Kind::smtp && route.host.empty();
    std::string destination =
        a.recipients.empty() ? std::string() : to_lower(domain_of(a.recipients.front().address));
    auto all = [&](queue::Outcome outcome, const std::string& status, const std::string& why) {
        std::vector<queue::RecipientResult> out;
        for (const auto& r : a.recipients) out.push_back({r.id, outcome, status, why, {}, false});
        return out;
    };
    // Without an index yet, a PEC domain would look like any other and get the weaker
    // policy of ordinary mail: wait for it.
    if (options_.providers && !options_.providers->ready())
        return all(queue::Outcome::deferred, "4.4.3", "provider index not loaded yet");
    const bool pec_domain =
        options_.providers && !destination.empty() && options_.providers->by_domain(destination);
    auto policy = lmtp ? tls::DestinationPolicy{tls::Policy::none, {}}
                       : options_.policies.lookup(destination, pec_domain);
    if (!options_.tls && policy.policy != tls::Policy::none && policy.policy != tls::Policy::may)
        policy.policy = tls::Policy::encrypt;  // and TLS is impossible: recipients wait below

    // Where to connect, in order: the MX hosts' addresses, or the configured next hop.
    std::vector<Target> targets;
    if (via_mx) {
        if (!options_.resolver)
            return all(queue::Outcome::deferred, "4.4.3", "no DNS resolver for MX routing");
        dns::MailRoute mx;
        try {
            mx = options_.resolver->mail_route(destination);
        } catch (const TemporaryError& e) {
            return all(queue::Outcome::deferred, "4.4.3", e.what());
        } catch (const Error& e) {
            // NXDOMAIN, null MX, no host with an address: the domain cannot receive mail.
            return all(queue::Outcome::failed, "5.1.2", e.what());
        }
        for (const auto& h : mx.hosts)
            for (const auto& addr : h.addresses) targets.push_back({h.name, addr, route.port, {}});
        if (targets.empty())
            return all(queue::Outcome::deferred, "4.4.3", "no address for the mail hosts of " + destination);
        if (targets.size() > options_.max_addresses) targets.resize(options_.max_addresses);
    } else if (!route.unix_path.empty()) {
        targets.push_back({"localhost", {}, 0, route.unix_path});
    } else {
        targets.push_back({route.host, route.host, route.port, {}});
    }

    smtp::TlsWanted tls_wanted = smtp::TlsWanted::never;
    switch (policy.policy) {
        case tls::Policy::none:
            tls_wanted = smtp::TlsWanted::never;
            break;
        case tls::Policy::may:
            tls_wanted = smtp::TlsWanted::if_offered;
            break;
        default:
            tls_wanted = smtp::TlsWanted::required;
            break;
    }

    // A cached session is only for a message that would have made the same session: same
    // next hop, same TLS policy and the same names to verify the certificate against.
    const std::string slot_key = via_mx ? destination : store::to_string(route);
    const bool caching = cache_->enabled() && !lmtp;
    auto session_key = [&](const Target& t, smtp::TlsWanted w) {
        std::string k = slot_key + "|" + t.label() + "|" + std::string(tls::to_string(policy.policy)) + "|" +
                        std::to_string(static_cast<int>(w));
        for (const auto& n : tls::reference_names(policy, t.name, destination)) k += "|" + n;
        return k;
    };

    // A slot: with a cached session, or a new one. While all slots are taken, a session
    // parked meanwhile is as good as a free slot, and sessions idle for other TLS
    // parameters give theirs up; without the cache, one wait for a free slot.
    std::unique_ptr<Cache::Entry> cached;
    std::optional<Slots::Lease> lease;
    const auto slot_deadline = Clock::now() + options_.slot_wait;
    for (;;) {
        if (caching && (cached = cache_->take(session_key(targets.front(), tls_wanted)))) {
            lease.emplace(std::move(cached->lease));
            break;
        }
        lease.reset();
        lease.emplace(slots_->acquire(slot_key, options_.connections_per_destination, {}));
        if (*lease) break;
        if (caching && cache_->evict_one(slot_key)) continue;
        auto left =
            std::max(std::chrono::milliseconds(0),
                     std::chrono::duration_cast<std::chrono::milliseconds>(slot_deadline - Clock::now()));
        lease.reset();
        lease.emplace(slots_->acquire(slot_key, options_.connections_per_destination,
                                      caching ? std::min(left, std::chrono::milliseconds(50)) : left));
        if (*lease || !caching || left.count() == 0) break;
    }
    if (!*lease)
        return all(queue::Outcome::deferred, "4.4.5",
                   "too many connections to " + destination + " already open");
    std::unique_ptr<OpenSession> reuse = cached ? std::move(cached->session) : nullptr;
    cached.reset();

    auto attempt = [&](const Target& target, const std::vector<std::size_t>& which, smtp::TlsWanted wanted,
                       std::unique_ptr<OpenSession> open_session) {
        smtp::ClientParams p;
        p.lmtp = lmtp;
        p.helo_name = options_.helo_name;
        p.tls =
            options_.tls ? wanted : (wanted == smtp::TlsWanted::if_offered ? smtp::TlsWanted::never : wanted);
        p.mail_from = a.message.envelope.mail_from;
        for (auto i : which) {
            const auto& r = a.recipients[i];
            p.recipients.push_back({r.address, r.notify, r.orcpt});
        }
        p.size = a.message.size;
        p.eight_bit = iequals(a.message.envelope.body_type, "8BITMIME");
        p.smtputf8 = a.message.envelope.smtputf8;
        p.dsn_ret = a.message.envelope.dsn_ret;
        p.dsn_envid = a.message.envelope.dsn_envid;
        p.keep_open = caching;
        smtp::ClientSession session(p);
        AttemptResult out;
        const bool reused = open_session != nullptr;
        out.reused = reused;
        if (!open_session) {
            open_session = std::make_unique<OpenSession>();
            open_session->conn = std::make_unique<Connection>(target.label());
            open_session->opened = Clock::now();
        } else {
            out.tls_note = open_session->tls_note;
        }
        auto& conn = *open_session->conn;
        auto& parser = open_session->parser;
        bool greeted = reused;
        bool body_started = false;
        // On a reused session, 421 before the body means the peer was closing it, and 503
        // that it saw our transaction as out of sequence: either way, a new connection.
        auto next_reply = [&](Clock::duration timeout) {
            auto r = read_reply(conn, parser, timeout);
            if (reused && !body_started && (r.code == 421 || r.code == 503)) throw StaleSession(r.summary());
            return r;
        };
        try {
            smtp::ClientSession::Action action;
            if (reused) {
                action = session.resume(open_session->ext, open_session->tls_active);
            } else {
                if (target.unix_path.empty())
                    conn.connect_tcp(target.address, target.port, options_.connect_timeout);
                else
                    conn.connect_unix(target.unix_path, options_.connect_timeout);
                action = session.on_reply(read_reply(conn, parser, options_.reply_timeout));
                greeted = true;
            }
            for (;;) {
                using Step = smtp::ClientSession::Step;
                if (action.step == Step::done) {
                    if (session.reusable()) {
                        open_session->ext = session.extensions();
                        open_session->tls_active = session.tls_active();
                        open_session->tls_note = out.tls_note;
                        ++open_session->uses;
                        out.keep = std::move(open_session);
                        break;
                    }
                    try {
                        conn.write(action.bytes, std::chrono::seconds(5));
                    } catch (const std::exception&) {
                        // QUIT is a courtesy; the transaction is already decided.
                    }
                    break;
                }
                if (action.step == Step::start_tls) {
                    conn.start_tls(*options_.tls, target.name, target.label(), options_.connect_timeout);
                    auto refs = tls::reference_names(policy, target.name, destination);
                    auto v = options_.tls->inspect(conn.ssl(), refs);
                    out.tls_note = tls::describe_tls(policy.policy, v);
                    auto verdict = tls::judge_peer(policy.policy, v);
                    if (!verdict.deliver) {
                        out.tls_note += " verdict=defer(" + verdict.reason + ")";
                        session.fail_unresolved("TLS: " + verdict.reason);
                        break;
                    }
                    out.tls_note += " verdict=accepted";
                    action = session.tls_started();
                    continue;
                }
                if (action.step == Step::send_body) {
                    body_started = true;
                    send_body(conn, a.data, options_.data_timeout);
                    action = session.on_reply(next_reply(options_.data_timeout));
                    continue;
                }
                conn.write(action.bytes, options_.reply_timeout);
                action = session.on_reply(next_reply(options_.reply_timeout));
            }
        } catch (const HandshakeError& e) {
            out.handshake_failed = true;
            out.tls_note =
                "tls_policy=" + std::string(tls::to_string(policy.policy)) + " tls=failed(" + e.what() + ")";
            session.fail_unresolved(e.what());
        } catch (const std::exception& e) {
            out.stale = reused && !body_started;
            session.fail_unresolved(e.what());
        }
        if (!out.keep) conn.close();
        if (out.tls_note.empty()) {
            out.tls_note = "tls_policy=" + std::string(tls::to_string(policy.policy)) + " tls=none";
            if (!greeted)
                out.tls_note += " (no session)";
            else if (policy.policy != tls::Policy::none && !lmtp && !session.extensions().starttls)
                out.tls_note += " (STARTTLS not offered)";
        }
        out.replies = session.results();
        return out;
    };

    // RFC 5321 5.1: on a failed connection or a transient error, the next address; each
    // recipient is settled by the first host that gives it a 2xx or 5xx.
    std::vector<std::optional<smtp::Reply>> final(a.recipients.size());
    std::vector<std::string> answered_by(a.recipients.size());
    std::vector<std::size_t> open(a.recipients.size());
    for (std::size_t i = 0; i < open.size(); ++i) open[i] = i;
    std::unique_ptr<OpenSession> parked;
    std::string parked_key;
    for (std::size_t t = 0; t < targets.size(); ++t) {
        const auto& target = targets[t];
        // Hosts in preference order: a session cached for a later one is used only once
        // the earlier ones failed again (it brings its own slot).
        if (t > 0 && caching) {
            if (auto e = cache_->take(session_key(target, tls_wanted))) {
                reuse = std::move(e->session);
                lease.reset();
                lease.emplace(std::move(e->lease));
            }
        }
        auto key_wanted = tls_wanted;
        auto result = attempt(target, open, tls_wanted, std::move(reuse));
        if (result.stale) {
            spdlog::info("delivery: {}: {} via {}: cached session lost before the data ({}); new connection",
                         a.message.id, destination, target.label(),
                         result.replies.empty() || !result.replies.front()
                             ? std::string("no reply")
                             : result.replies.front()->summary());
            result = attempt(target, open, tls_wanted, nullptr);
        }
        if (result.handshake_failed &&
            tls::decide_after_handshake_failure(policy.policy, "handshake failed").step ==
                tls::TlsStep::plain) {
            spdlog::info("delivery: {}: {} via {}: {}; retrying without TLS", a.message.id, destination,
                         target.label(), result.tls_note);
            key_wanted = smtp::TlsWanted::never;
            result = attempt(target, open, key_wanted, nullptr);
        }
        spdlog::info("delivery: {}: {} via {}: {}{}", a.message.id, destination.empty() ? "-" : destination,
                     target.label(), result.tls_note, result.reused ? " (cached session)" : "");
        parked = std::move(result.keep);
        parked_key = session_key(target, key_wanted);
        std::vector<std::size_t> still_open;
        for (std::size_t k = 0; k < open.size(); ++k) {
            auto i = open[k];
            const auto& reply = result.replies[k];
            final[i] = reply;
            answered_by[i] = target.unix_path.empty() ? target.name : "localhost";
            if (!reply || reply->transient()) still_open.push_back(i);
            if (reply && reply->positive() && !lmtp && !final[i]->lines.empty()) {
                // The log line of the runner carries the TLS facts of the delivery.
                final[i]->lines.back() += " (" + result.tls_note + ")";
            }
        }
        open = std::move(still_open);
        if (open.empty()) break;
        // One slot, one connection: the recipients left go to the next host without it.
        if (parked) say_goodbye(*parked);
        parked.reset();
    }
    if (parked)
        cache_->put(parked_key, std::make_unique<Cache::Entry>(
                                    Cache::Entry{std::move(parked), std::move(*lease), slot_key, {}}));

    std::vector<queue::RecipientResult> out;
    for (std::size_t i = 0; i < a.recipients.size(); ++i) {
        queue::RecipientResult r;
        r.recipient_id = a.recipients[i].id;
        r.remote_mta = answered_by[i];
        const auto& reply = final[i];
        if (!reply) {
            r.outcome = queue::Outcome::deferred;
            r.status = "4.4.2";
            r.diagnostic = "no reply from " + targets.back().label();
        } else {
            r.outcome = reply->positive()    ? queue::Outcome::delivered
                        : reply->transient() ? queue::Outcome::deferred
                                             : queue::Outcome::failed;
            r.status = reply->status();
            r.diagnostic = reply->summary();
        }
        out.push_back(std::move(r));
    }
    return out;
}

}  // namespace pecd::delivery
