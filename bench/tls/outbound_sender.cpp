// outbound_sender.cpp - pecd's outbound TLS path under load: one SMTP transaction per
// connection, STARTTLS on every connection, TLS sessions resumed from ClientTls's cache
//
//   bench_tls_outbound --port P --messages N [--concurrency C] [--ca FILE] [--no-reuse]
//
// Each of C threads connects, reads the banner, EHLO, STARTTLS, handshakes (resuming
// the cached session for the destination), EHLO, MAIL, RCPT, DATA, QUIT, and starts
// over until N messages are accepted in total. The policy is `encrypt`-like (TLS
// required, the peer checked but not enforced). Prints one JSON line: messages, seconds,
// messages_per_second, resumed handshakes. Used by run_outbound_bench.py, which runs
// Postfix's SMTP client against the same sink in the same run.
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "tls/client_tls.hpp"

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

struct Options {
    std::string host = "127.0.0.1";
    unsigned short port = 0;
    int messages = 1000;
    int concurrency = 4;
    std::string ca;
    bool reuse = true;
};

// Reads one (possibly multi-line) reply; returns its code.
template <class Stream>
int read_reply(Stream& s, asio::streambuf& buf) {
    for (;;) {
        asio::read_until(s, buf, "\r\n");
        std::istream in(&buf);
        std::string line;
        std::getline(in, line);
        if (line.size() < 3) throw std::runtime_error("bad reply: " + line);
        if (line.size() == 3 || line[3] == ' ' || line[3] == '\r') return std::stoi(line.substr(0, 3));
    }
}

template <class Stream>
void expect(Stream& s, asio::streambuf& buf, const std::string& command, int code) {
    if (!command.empty()) asio::write(s, asio::buffer(command));
    int got = read_reply(s, buf);
    if (got != code) throw std::runtime_error("'" + command.substr(0, 20) + "' got " + std::to_string(got));
}

std::string message_body() {
    std::string body =
        "From: <bench@sender.test>\r\nTo: <sink@remote.test>\r\nSubject: outbound TLS benchmark\r\n"
        "Message-ID: <bench@sender.test>\r\n\r\n";
    for (int i = 0; i < 30; ++i)
        body += "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\r\n";
    return body + ".\r\n";
}

// One transaction on a fresh connection; returns whether the TLS session was resumed.
bool send_one(asio::io_context& io, const tcp::resolver::results_type& endpoints,
              pecd::tls::ClientTls& client, const Options& o, const std::string& body) {
    tcp::socket sock(io);
    asio::connect(sock, endpoints);
    sock.set_option(tcp::no_delay(true));
    asio::streambuf buf;
    expect(sock, buf, "", 220);
    expect(sock, buf, "EHLO sender.test\r\n", 250);
    expect(sock, buf, "STARTTLS\r\n", 220);
    asio::ssl::stream<tcp::socket&> tls(sock, client.context());
    client.prepare(tls.native_handle(), "sink.test", o.host + ":" + std::to_string(o.port));
    tls.handshake(asio::ssl::stream_base::client);
    bool resumed = SSL_session_reused(tls.native_handle()) == 1;
    asio::streambuf tbuf;
    expect(tls, tbuf, "EHLO sender.test\r\n", 250);
    expect(tls, tbuf, "MAIL FROM:<bench@sender.test>\r\n", 250);
    expect(tls, tbuf, "RCPT TO:<sink@remote.test>\r\n", 250);
    expect(tls, tbuf, "DATA\r\n", 354);
    expect(tls, tbuf, body, 250);
    expect(tls, tbuf, "QUIT\r\n", 221);
    boost::system::error_code ec;
    tls.shutdown(ec);  // close_notify; the peer may already have closed
    return resumed;
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
        if (a == "--host")
            o.host = next();
        else if (a == "--port")
            o.port = static_cast<unsigned short>(std::stoi(next()));
        else if (a == "--messages")
            o.messages = std::stoi(next());
        else if (a == "--concurrency")
            o.concurrency = std::stoi(next());
        else if (a == "--ca")
            o.ca = next();
        else if (a == "--no-reuse")
            o.reuse = false;
        else {
            std::cerr << "usage: bench_tls_outbound --port P [--messages N] [--concurrency C] [--ca FILE] "
                         "[--no-reuse]\n";
            return 2;
        }
    }
    pecd::tls::ClientTlsSettings settings;
    settings.ca_file = o.ca;
    settings.reuse_sessions = o.reuse;
    pecd::tls::ClientTls client(settings);
    const std::string body = message_body();
    std::atomic<int> next{0}, resumed{0}, failed{0};
    auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> workers;
    for (int t = 0; t < o.concurrency; ++t) {
        workers.emplace_back([&] {
            asio::io_context io;
            tcp::resolver resolver(io);
            auto endpoints = resolver.resolve(o.host, std::to_string(o.port));
            while (next.fetch_add(1) < o.messages) {
                try {
                    if (send_one(io, endpoints, client, o, body)) ++resumed;
                } catch (const std::exception& e) {
                    if (failed++ < 5) std::cerr << "bench_tls_outbound: " << e.what() << "\n";
                }
            }
        });
    }
    for (auto& w : workers) w.join();
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    int sent = o.messages - failed.load();
    std::printf(
        "{\"messages\": %d, \"failed\": %d, \"seconds\": %.3f, \"messages_per_second\": %.1f, \"resumed\": "
        "%d}\n",
        sent, failed.load(), seconds, sent / seconds, resumed.load());
    return failed.load() == 0 ? 0 : 1;
}
