// tsa_http.hpp - RFC 3161 over HTTP: a client for a configured TSA and the built-in
//                TSA's server
//
// RFC 3161 section 3.4: a POST with Content-Type application/timestamp-query carrying
// the DER TimeStampReq; the reply is application/timestamp-reply carrying the DER
// TimeStampResp.
//
// Contract:
// - HttpTimestampSource("http://host:port/path", timeout) sends one request per
//   exchange(); any network failure, timeout, non-200 status or wrong content type
//   throws TemporaryError naming the URL (the sealer retries later).
// - TsaHttpServer(io, endpoint, tsa) listens at once (port 0 = ephemeral; port() tells)
//   and serves on the io_context's threads: POST with the right content type and a body
//   of at most 64 KiB gets a TimeStampResp; anything else gets 405/415/413/400. stop()
//   closes the listener.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "crypto/timestamp.hpp"
#include "log/sealer.hpp"

namespace pecd::log {

class HttpTimestampSource final : public TimestampSource {
public:
    // Throws Error on a URL that is not http://host[:port][/path].
    explicit HttpTimestampSource(const std::string& url,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(10));
    std::string exchange(std::string_view request_der) override;
    std::string name() const override { return "TSA " + url_; }

private:
    std::string url_, host_, port_, target_;
    std::chrono::milliseconds timeout_;
};

class TsaHttpServer {
public:
    TsaHttpServer(boost::asio::io_context& io, const boost::asio::ip::tcp::endpoint& endpoint,
                  std::shared_ptr<crypto::TimestampAuthority> tsa);
    ~TsaHttpServer();
    unsigned short port() const;
    void stop();

private:
    struct State;
    std::shared_ptr<State> state_;
};

}  // namespace pecd::log
