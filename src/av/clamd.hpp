// clamd.hpp - antivirus client for ClamAV's clamd (INSTREAM over a unix or TCP socket)
//
// Contract:
// - ClamdClient::scan(bytes) is SYNCHRONOUS and thread-safe: each call drives its own
//   connection on that connection's io_context, so queue worker threads call it directly.
//   It never blocks longer than connect_timeout + scan_timeout (plus name resolution for a
//   TCP host name, which shares the connect time limit), twice when a kept session fails.
// - Sessions: scans run in clamd's session mode ("zIDSESSION\0" once, then one command
//   after another on the connection, each reply numbered "<n>: ..."). After a complete
//   reply the connection is kept for the next scan, up to session_idle (clamd's own
//   IdleTimeout, 30 s by default, closes it later) and up to 32 idle connections; this
//   saves clamd and pecd a connection, a thread hand-off in clamd and an io_context per
//   scan. A kept connection that fails (clamd closed it, restarted) is dropped with the
//   other idle ones and the scan runs once more on a new connection: a scan changes
//   nothing, so repeating it is safe. session_idle 0: one connection per scan.
// - Protocol: "zINSTREAM\0", then the data in chunks each preceded by its length as a
//   4-byte big-endian integer, then a zero-length chunk; clamd answers one NUL-terminated
//   line. The reply is read while the data is still being written, so clamd's early
//   "INSTREAM size limit exceeded. ERROR" (it stops reading and closes) is seen even
//   though the write fails.
// - Outcomes:
//     Verdict::clean                "stream: OK"
//     Verdict::infected             "stream: <signature> FOUND"; virus = <signature>
//     Verdict::size_limit_exceeded  "INSTREAM size limit exceeded. ERROR": the message is
//                                   larger than clamd's StreamMaxLength. Permanent for
//                                   this message: retrying cannot help. The caller must
//                                   NOT pass it unscanned; refuse it (and the operator
//                                   should keep StreamMaxLength >= [limits] message_size).
//   Everything else throws TemporaryError with the reason: scanner unreachable
//   (connect refused, missing socket), a time limit hit, the connection closed without
//   an answer, any other "... ERROR" reply, or an answer that is not clamd's protocol.
//   The caller defers the message (SMTP 4xx / queue retry): a message is never passed
//   unscanned.
// - parse_reply() and instream_frame() are the pure protocol halves (tested alone).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace pecd::av {

// Where clamd listens: "unix:/run/clamav/clamd.ctl" or a path starting with '/', or
// "tcp:host:port", "host:port", "[::1]:3310".
struct ClamdEndpoint {
    enum class Kind { unix_socket, tcp };
    Kind kind = Kind::unix_socket;
    std::string path;  // unix
    std::string host;  // tcp
    std::uint16_t port = 0;
    // Throws ParseError naming what is wrong.
    static ClamdEndpoint parse(std::string_view text);
    std::string to_string() const;
};

struct ClamdOptions {
    ClamdEndpoint endpoint;
    std::chrono::milliseconds connect_timeout{5000};
    std::chrono::milliseconds scan_timeout{60000};  // from connected to the full reply
    std::size_t chunk_size = 64 * 1024;             // bytes per INSTREAM chunk
    std::chrono::milliseconds session_idle{5000};   // keep a session this long between scans; 0: none
};

enum class Verdict { clean, infected, size_limit_exceeded };

struct ScanResult {
    Verdict verdict = Verdict::clean;
    std::string virus;  // infected: the signature name as clamd reports it
    std::string reply;  // clamd's reply line, for logs
};

// Parses one reply (without the terminating NUL) to INSTREAM; throws TemporaryError for
// "... ERROR" replies other than the size limit and for anything that is not a reply.
ScanResult parse_reply(std::string_view reply);

// The whole request for `data`: "zINSTREAM\0", chunks, zero-length terminator.
std::string instream_frame(std::string_view data, std::size_t chunk_size);

class ClamdClient {
public:
    explicit ClamdClient(ClamdOptions options);
    ~ClamdClient();
    ClamdClient(const ClamdClient&) = delete;
    ClamdClient& operator=(const ClamdClient&) = delete;
    ScanResult scan(std::string_view data) const;
    // "zPING" -> true when clamd answers PONG; throws TemporaryError like scan().
    bool ping() const;
    // "zVERSION" -> e.g. "ClamAV 1.4.6/..."; throws TemporaryError like scan().
    std::string version() const;
    const ClamdOptions& options() const { return options_; }

    struct Connection;  // a socket and its io_context (clamd.cpp)

private:
    static constexpr std::size_t kMaxIdleSessions = 32;
    std::string exchange(std::string_view request, std::string_view data) const;
    std::unique_ptr<Connection> take_session() const;
    ScanResult scan_in_session(std::unique_ptr<Connection> c, std::string_view data) const;
    void keep_session(std::unique_ptr<Connection> c) const;
    ClamdOptions options_;
    mutable std::mutex mutex_;
    mutable std::vector<std::unique_ptr<Connection>> idle_;  // most recently used last
};

}  // namespace pecd::av
