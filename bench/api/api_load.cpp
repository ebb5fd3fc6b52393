// api_load.cpp - HTTPS load client for the mailbox API (and for the same load on a peer)
//
//   pecd_api_load --port P --ca SERVER_CA --cert CLIENT.pem --key CLIENT.key
//                 [--host 127.0.0.1] [--token-file F] [--paths-file F | --path /x]
//                 [--connections 16] [--seconds 10] [--warmup 2] [--max-requests N]
//
// Each connection is one thread with one keep-alive TLS session (client certificate
// presented, TLS resumption not needed: the session lives for the whole run). It sends
// GET requests in a loop, cycling through the paths, with "Authorization: Bearer" when a
// token is given, and records every latency after the warm-up. The result is one JSON
// line: requests, errors, seconds, requests/s, p50/p90/p99/max latency (ms), statuses.
//
// Written with Boost.Beast rather than a stock tool because the Debian load generators
// (ab, h2load, wrk) cannot present a client certificate.
#include <algorithm>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace ssl = asio::ssl;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
    std::string host = "127.0.0.1";
    std::string port;
    std::string ca, cert, key, token;
    std::vector<std::string> paths;
    int connections = 16;
    double seconds = 10;
    double warmup = 2;
    long max_requests = 0;
};

std::string read_all(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error("cannot read " + path);
    return {std::istreambuf_iterator<char>(f), {}};
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
            return argv[++i];
        };
        if (a == "--host")
            o.host = value();
        else if (a == "--port")
            o.port = value();
        else if (a == "--ca")
            o.ca = value();
        else if (a == "--cert")
            o.cert = value();
        else if (a == "--key")
            o.key = value();
        else if (a == "--token-file") {
            o.token = read_all(value());
            while (!o.token.empty() && (o.token.back() == '\n' || o.token.back() == '\r')) o.token.pop_back();
        } else if (a == "--path")
            o.paths.push_back(value());
        else if (a == "--paths-file") {
            std::ifstream f(value());
            for (std::string line; std::getline(f, line);)
                if (!line.empty()) o.paths.push_back(line);
        } else if (a == "--connections")
            o.connections = std::stoi(value());
        else if (a == "--seconds")
            o.seconds = std::stod(value());
        else if (a == "--warmup")
            o.warmup = std::stod(value());
        else if (a == "--max-requests")
            o.max_requests = std::stol(value());
        else
            throw std::runtime_error("unknown option " + a);
    }
    if (o.port.empty() || o.ca.empty() || o.cert.empty() || o.key.empty() || o.paths.empty())
        throw std::runtime_error("--port, --ca, --cert, --key and at least one --path are required");
    return o;
}

struct Shared {
    std::atomic<long> sent{0};
    std::atomic<long> answered{0};  // every response, warm-up included
    std::mutex m;
    std::vector<double> latencies_ms;
    std::map<int, long> statuses;
    long errors = 0;
    std::string first_error;
};

void run_connection(const Options& o, ssl::context& ctx, Clock::time_point measure_from,
                    Clock::time_point until, int index, Shared& shared) {
    std::vector<double> lat;
    std::map<int, long> statuses;
    long errors = 0;
    std::string first_error;
    try {
        asio::io_context io;
        tcp::resolver resolver(io);
        boost::beast::ssl_stream<boost::beast::tcp_stream> stream(io, ctx);
        boost::beast::get_lowest_layer(stream).connect(resolver.resolve(o.host, o.port));
        stream.handshake(ssl::stream_base::client);
        boost::beast::flat_buffer buffer;
        std::size_t next = static_cast<std::size_t>(index) % o.paths.size();
        while (true) {
            auto start = Clock::now();
            if (start >= until) break;
            if (o.max_requests > 0 && shared.sent.fetch_add(1) >= o.max_requests) break;
            http::request<http::empty_body> req{http::verb::get, o.paths[next], 11};
            next = (next + 1) % o.paths.size();
            req.set(http::field::host, o.host);
            req.keep_alive(true);
            if (!o.token.empty()) req.set(http::field::authorization, "Bearer " + o.token);
            http::write(stream, req);
            http::response<http::string_body> res;
            http::read(stream, buffer, res);
            auto end = Clock::now();
            shared.answered.fetch_add(1);
            if (start >= measure_from) {
                lat.push_back(std::chrono::duration<double, std::milli>(end - start).count());
                ++statuses[static_cast<int>(res.result_int())];
            }
            if (!res.keep_alive()) break;
        }
    } catch (const std::exception& e) {
        ++errors;
        first_error = e.what();
    }
    std::lock_guard lock(shared.m);
    shared.latencies_ms.insert(shared.latencies_ms.end(), lat.begin(), lat.end());
    for (auto& [s, n] : statuses) shared.statuses[s] += n;
    shared.errors += errors;
    if (shared.first_error.empty()) shared.first_error = first_error;
}

double percentile(const std::vector<double>& sorted, double p) {
    if (sorted.empty()) return 0;
    auto i = static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1) + 0.5);
    return sorted[std::min(i, sorted.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
    try {
        auto o = parse(argc, argv);
        ssl::context ctx(ssl::context::tls_client);
        ctx.set_options(ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
        ctx.load_verify_file(o.ca);
        ctx.use_certificate_chain_file(o.cert);
        ctx.use_private_key_file(o.key, ssl::context::pem);
        ctx.set_verify_mode(ssl::verify_peer);
        Shared shared;
        auto t0 = Clock::now();
        auto measure_from =
            t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.warmup));
        auto until = measure_from +
                     std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.seconds));
        std::vector<std::thread> threads;
        for (int i = 0; i < o.connections; ++i)
            threads.emplace_back([&, i] { run_connection(o, ctx, measure_from, until, i, shared); });
        for (auto& t : threads) t.join();
        auto measured = std::chrono::duration<double>(std::min(Clock::now(), until) - measure_from).count();
        auto& l = shared.latencies_ms;
        std::sort(l.begin(), l.end());
        nlohmann::json statuses = nlohmann::json::object();
        for (auto& [s, n] : shared.statuses) statuses[std::to_string(s)] = n;
        nlohmann::json out = {
            {"requests", l.size()},
            {"errors", shared.errors},
            {"seconds", measured},
            {"requests_per_second", measured > 0 ? static_cast<double>(l.size()) / measured : 0},
            {"p50_ms", percentile(l, 0.50)},
            {"p90_ms", percentile(l, 0.90)},
            {"p99_ms", percentile(l, 0.99)},
            {"max_ms", l.empty() ? 0 : l.back()},
            {"statuses", statuses},
            {"answered_total", shared.answered.load()},
            {"connections", o.connections}};
        if (!shared.first_error.empty()) out["first_error"] = shared.first_error;
        std::cout << out.dump() << std::endl;
        return shared.errors == 0 ? 0 : 1;
    } catch (const std::exception& e) {
        std::cerr << "pecd_api_load: " << e.what() << "\n";
        return 2;
    }
}
