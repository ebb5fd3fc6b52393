#include "server/daemon.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <iostream>
#include <map>
#include <thread>

#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/offset_clock.hpp"
#include "provider/demo.hpp"
#include "server/listeners_file.hpp"
#include "server/mail_services.hpp"
#include "server/smtp_server.hpp"
#include "tls/server_tls.hpp"

namespace pecd::server {
namespace {

smtp::ListenerPolicy listener_policy(const config::Config& c, const config::Listener& l) {
    smtp::ListenerPolicy p;
    p.name = l.name;
    p.hostname = c.hostname;
    p.tls = parse_tls_mode(l.tls);
    p.auth = l.auth;
    p.require_auth = l.require_auth;
    p.sender_must_match_auth = l.sender_must_match_auth;
    p.lmtp = l.lmtp;
    p.limits.command_line = 2048;
    p.limits.data_line = c.limits.line_length;
    p.limits.header_block = c.limits.header_size;
    p.limits.message_size = c.limits.message_size;
    p.limits.recipients = c.limits.recipients;
    p.limits.errors = c.limits.errors;
    return p;
}

// One ServerTls per distinct certificate pair, shared by the listeners that use it.
class TlsContexts {
public:
    TlsContexts(const config::Config& c) : config_(c) {
        if (c.tls.certificate.empty()) {
            default_pair_ = tls::ensure_self_signed(c.data_dir / "tls", {c.hostname, "localhost"});
        } else {
            default_pair_ = {c.tls.certificate, c.tls.key};
        }
    }
    std::shared_ptr<tls::ServerTls> for_listener(const config::Listener& l) {
        tls::CertificatePair pair =
            l.certificate.empty() ? default_pair_ : tls::CertificatePair{l.certificate, l.key};
        // Listeners with the same default pair and the same SNI pairs share one context.
        auto key = pair.certificate.string() + "\n" + pair.key.string();
        std::map<std::string, tls::CertificatePair> sni;
        for (auto& e : l.sni) {
            sni[e.name] = {e.certificate, e.key};
            key += "\n" + e.name + "\n" + e.certificate.string() + "\n" + e.key.string();
        }
        auto& slot = by_pair_[key];
        if (!slot) {
            tls::ServerTlsSettings s;
            s.pair = pair;
            s.sni = std::move(sni);
            s.min_version = config_.tls.min_version;
            // Its validity is logged at start and daily by the ServerTls itself.
            s.role = "listener certificate";
            slot = std::make_shared<tls::ServerTls>(s);
        }
        return slot;
    }
    void reload_all() {
        for (auto& [k, t] : by_pair_) t->reload_if_changed();
    }

private:
    const config::Config& config_;
    tls::CertificatePair default_pair_;
    std::map<std::string, std::shared_ptr<tls::ServerTls>> by_pair_;
};

// Each SMTP session holds a descriptor; the soft limit (often 1024) would cap the
// connection limit long before memory does.
void raise_descriptor_limit() {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &rl);
    }
}

void setup_logging(const std::string& level) {
    auto logger = spdlog::stderr_color_mt("pecd");
    spdlog::set_default_logger(logger);
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v");
    spdlog::set_level(spdlog::level::from_str(level));
}

// pecctl as built beside this pecd (build/app/pecctl/pecctl), else from PATH.
std::string pecctl_command() {
    std::error_code ec;
    auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        auto beside = exe.parent_path().parent_path() / "pecctl" / "pecctl";
        if (std::filesystem::exists(beside, ec)) return beside.string();
    }
    return "pecctl";
}

void print_banner(const config::Config& c, const std::vector<BoundListener>& bound,
                  const std::vector<std::pair<std::string, std::string>>& demo) {
    std::cout << "pecd is ready. Data directory: " << c.data_dir.string() << "\n";
    for (auto& l : bound)
        std::cout << "  " << l.name << ": " << l.address << " port " << l.port << " (" << tls_mode_name(l.tls)
                  << ")\n";
    if (!demo.empty()) {
        std::cout << "Demo mailboxes (passwords in " << (c.data_dir / "demo-credentials.txt").string()
                  << "):\n";
        for (auto& [addr, pw] : demo) std::cout << "  " << addr << "\n";
        const BoundListener* sub = nullptr;
        for (auto& l : bound)
            if (l.name == "submission") sub = &l;
        if (sub && demo.size() >= 2)
            std::cout << "Send a first message:\n  swaks --server " << sub->address << " --port " << sub->port
                      << " --tls --auth PLAIN --auth-user " << demo[0].first
                      << " --auth-password \"$(awk '$1==\"" << demo[0].first << "\"{print $2}' "
                      << (c.data_dir / "demo-credentials.txt").string() << ")\" --from " << demo[0].first
                      << " --to " << demo[1].first << "\n";
        if (demo.size() >= 2)
            std::cout << "Read it (the list, then one message by its id):\n  " << pecctl_command()
                      << " mailbox read " << demo[1].first << " --data-dir " << c.data_dir.string() << "\n  "
                      << pecctl_command() << " mailbox read " << demo[1].first << " ID --data-dir "
                      << c.data_dir.string() << "\n";
    }
    std::cout.flush();
}

}  // namespace

int run_daemon(config::Config c, const RunOptions& options) {
    setup_logging(c.log_level);
    raise_descriptor_limit();
    c.data_dir = std::filesystem::absolute(c.data_dir);
    fs::ensure_dir(c.data_dir, 0750);

    std::unique_ptr<OffsetFileClock> test_clock;
    const Clock* clock = &SystemClock::instance();
    if (!options.clock_offset_file.empty()) {
        test_clock = std::make_unique<OffsetFileClock>(options.clock_offset_file);
        clock = test_clock.get();
        spdlog::warn("pecd: running on a test clock (offset in {})", options.clock_offset_file);
    }
    // The embedded default is a working PEC provider: its own demo CA, signing
    // certificate and provider index, made once under DATA_DIR/pec.
    if (c.pec.enabled && options.embedded_demo) provider::ensure_demo_provider(c);

    boost::asio::io_context io;
    auto services = open_mail_services(c, options.embedded_demo, io, *clock);
    TlsContexts contexts(c);

    ServerLimits limits;
    limits.max_connections = c.limits.connections;
    limits.per_client = c.limits.connections_per_client;
    limits.idle = c.limits.idle_timeout;
    limits.tls_reload_interval = c.tls.reload_interval;
    limits.in_flow_backlog = c.limits.in_flow_backlog;
    limits.in_flow_delay = c.limits.in_flow_delay;
    smtp::AuthLimits auth{c.limits.auth_failures_per_address, c.limits.auth_failures_per_account,
                          c.limits.auth_failure_window};
    SmtpServer server(io, services->directory(), services->sink(), *clock, limits, auth);
    server.set_queue_backlog([&services] { return services->backlog(); });
    for (auto& l : c.listeners) {
        ListenerConfig lc;
        lc.policy = listener_policy(c, l);
        lc.address = l.address;
        lc.port = options.any_port ? 0 : l.port;
        if (lc.policy.tls != smtp::TlsMode::none) lc.tls = contexts.for_listener(l);
        server.add_listener(std::move(lc));
    }

    boost::asio::steady_timer expiry_timer(io);
    boost::asio::steady_timer reload_timer(io);
    boost::asio::signal_set stop_signals(io, SIGTERM, SIGINT);
    boost::asio::signal_set hup(io, SIGHUP);
    stop_signals.async_wait([&](const boost::system::error_code& ec, int sig) {
        if (ec) return;
        spdlog::info("pecd: signal {}, shutting down", sig);
        server.stop();
        hup.cancel();
        expiry_timer.cancel();
        reload_timer.cancel();
        services->stop();
        io.stop();
    });
    std::function<void()> wait_hup = [&] {
        hup.async_wait([&](const boost::system::error_code& ec, int) {
            if (ec) return;
            spdlog::info("pecd: SIGHUP, re-reading certificates");
            contexts.reload_all();
            services->reload_certificates();
            wait_hup();
        });
    };
    wait_hup();

    // The SMTP listeners watch their own files; the API's and the outbound client
    // certificate's are watched here, as often.
    std::function<void()> watch_certificates = [&] {
        reload_timer.expires_after(c.tls.reload_interval);
        reload_timer.async_wait([&](const boost::system::error_code& ec) {
            if (ec) return;
            services->reload_certificates();
            watch_certificates();
        });
    };
    watch_certificates();

    std::function<void()> daily_expiry = [&] {
        expiry_timer.expires_after(std::chrono::hours(24));
        expiry_timer.async_wait([&](const boost::system::error_code& ec) {
            if (ec) return;
            services->log_certificate_expiry();
            daily_expiry();
        });
    };
    daily_expiry();

    services->log_certificate_expiry();
    services->start();
    server.start();
    auto bound = server.listeners();
    for (auto& l : services->other_listeners()) bound.push_back(l);
    write_listeners_file(c.data_dir / "listeners.json", c.hostname, bound);
    print_banner(c, bound, services->demo_accounts());
    spdlog::info("pecd: serving with {} threads", c.threads);

    std::vector<std::thread> threads;
    for (unsigned i = 1; i < c.threads; ++i) threads.emplace_back([&] { io.run(); });
    io.run();
    for (auto& t : threads) t.join();
    std::error_code ec;
    std::filesystem::remove(c.data_dir / "listeners.json", ec);
    spdlog::info("pecd: stopped");
    return 0;
}

}  // namespace pecd::server
