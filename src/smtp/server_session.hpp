// server_session.hpp - the SMTP/LMTP server protocol, as a pure state machine
//
// A ServerSession reads bytes (feed()) and writes replies into output(); it never
// touches a socket, so every protocol rule is tested without the network. When it needs
// something only the I/O layer can do it stops and reports what through wait():
//   Wait::start_tls     flush output, run the TLS handshake, then tls_started();
//   Wait::authenticate  check auth_request() off the event loop, then auth_finished();
//   Wait::commit        commit the open message (pending_message()), then commit_finished();
//   Wait::close         flush output and close the connection.
// After the I/O layer answers, resume() processes input that was already buffered.
//
// Rules enforced here (RFC 5321, 3207, 4954, 2920, 1870, 3461, 2034):
//   - every line ends in CRLF; a bare LF or CR in a command is refused (500), in DATA
//     it ends the connection (521), so SMTP smuggling can never split one message in two;
//   - end of data is exactly CRLF "." CRLF; dot-stuffing is undone;
//   - bytes pipelined behind STARTTLS are discarded and the session restarts;
//   - AUTH is neither offered nor accepted before TLS;
//   - on a listener requiring TLS, MAIL before STARTTLS is refused (530);
//   - limits: command line, data line, header block, message size, recipients, errors.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"
#include "core/envelope.hpp"
#include "queue/sink.hpp"

namespace pecd::smtp {

struct Limits {
    std::size_t command_line = 2048;            // octets incl. CRLF (AUTH lines: 12288, RFC 4954)
    std::size_t data_line = 10000;              // RFC 5322 says 998; longer lines exist in real mail
    std::size_t header_block = 256 * 1024;      // all header lines together
    std::uint64_t message_size = 100ull << 20;  // 100 MB, advertised in SIZE
    std::size_t recipients = 1000;              // PEC requires at least 50
    unsigned errors = 20;                       // protocol errors before 421 and close
};

enum class TlsMode { none, starttls, starttls_required, implicit };

struct ListenerPolicy {
    std::string name = "mx";
    std::string hostname = "localhost";  // in the banner and Received:
    TlsMode tls = TlsMode::starttls;
    bool auth = false;                   // offer AUTH (always only after TLS)
    bool require_auth = false;           // MAIL needs AUTH first (submission)
    bool sender_must_match_auth = false; // MAIL FROM must be the authenticated account
    bool lmtp = false;
    Limits limits;
};

enum class RecipientVerdict { accept, unknown_user, relay_denied, mailbox_full, disabled, temp_failure };

// What the session asks of the rest of pecd (synchronous, cheap calls).
class SessionHandler {
public:
    virtual ~SessionHandler() = default;
    virtual RecipientVerdict check_recipient(const SessionInfo& session, const std::string& address) = 0;
    // Opens a message for the envelope; throws TemporaryError for a 4xx.
    virtual std::unique_ptr<queue::IncomingMessage> begin_message(const Envelope& envelope) = 0;
};

enum class Wait { none, start_tls, authenticate, commit, close };

struct AuthRequest {
    std::string mechanism;  // PLAIN or LOGIN
    std::string user;
    std::string password;   // never logged
};

class ServerSession {
public:
    ServerSession(ListenerPolicy policy, SessionHandler& handler, const Clock& clock,
                  std::string client_ip, std::uint16_t client_port, bool tls_active = false);
    ~ServerSession();

    // The greeting; called once when the connection is set up.
    void start();
    // Adds received bytes and processes as much as possible.
    void feed(std::string_view bytes);
    // Continues with buffered input after the I/O layer handled wait().
    void resume();

    Wait wait() const { return wait_; }
    std::string& output() { return out_; }
    bool closed() const { return wait_ == Wait::close; }

    // STARTTLS completed: buffered input is dropped, the session restarts (RFC 3207 4.2).
    void tls_started(std::string protocol, std::string cipher);
    const AuthRequest& auth_request() const { return auth_; }
    void auth_finished(bool ok, bool rate_limited = false);
    queue::IncomingMessage* pending_message() { return message_.get(); }
    void commit_finished(const queue::CommitResult& result);
    // Idle timeout or shutdown: say goodbye (421) and close.
    void timeout();
    void shutdown();

    const SessionInfo& info() const { return info_; }
    std::uint64_t messages_accepted() const { return accepted_; }

private:
    enum class State { command, data, auth_plain, auth_login_user, auth_login_pass };

    enum class LineResult { need_more, skipped, line };
    void process();
    LineResult take_line(std::string& line, std::size_t limit);
    void command(std::string_view line);
    bool data_input();
    bool refuse_connection(std::string_view why);
    void data_line(std::string_view line);
    void end_of_data();

    void cmd_ehlo(std::string_view arg, bool extended, bool lhlo);
    void cmd_mail(std::string_view arg);
    void cmd_rcpt(std::string_view arg);
    void cmd_data();
    void cmd_auth(std::string_view arg);
    void cmd_starttls();
    void auth_response(std::string_view line);
    void reset_transaction();
    void reply(int code, std::string_view enhanced, std::string_view text);
    void error_reply(int code, std::string_view enhanced, std::string_view text);
    std::string received_header() const;
    bool tls_active() const { return !info_.tls_protocol.empty(); }

    ListenerPolicy policy_;
    SessionHandler& handler_;
    const Clock& clock_;
    SessionInfo info_;
    State state_ = State::command;
    Wait wait_ = Wait::none;
    std::string in_;
    std::size_t in_pos_ = 0;
    std::string out_;
    bool discarding_ = false;  // inside an over-long command line already refused
    bool data_midline_ = false;  // inside an over-long data line already refused
    bool greeted_ = false;  // EHLO/HELO seen since start or STARTTLS
    bool tls_ = false;      // TLS is in effect (implicit or after STARTTLS)
    unsigned errors_ = 0;
    std::uint64_t accepted_ = 0;
    std::string transaction_id_;

    // Mail transaction.
    bool has_mail_ = false;
    Envelope envelope_;
    std::unique_ptr<queue::IncomingMessage> message_;
    std::uint64_t data_bytes_ = 0;
    std::size_t header_bytes_ = 0;
    bool in_headers_ = true;
    std::string data_problem_;  // set when the message will be refused at end of data
    std::string data_problem_code_;
    std::string pending_line_;  // a data line split across feed() calls

    AuthRequest auth_;
    std::string auth_mechanism_;
};

}  // namespace pecd::smtp
