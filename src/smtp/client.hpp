// client.hpp - the SMTP and LMTP client protocol, as a pure state machine (no sockets)
//
// ClientSession drives one transaction for one message to one peer: greeting, EHLO (LHLO
// for LMTP; HELO when an old SMTP server refuses EHLO), STARTTLS when asked, MAIL with
// SIZE/BODY/SMTPUTF8/RET/ENVID as the peer supports them, RCPT with NOTIFY/ORCPT, DATA,
// and QUIT. With PIPELINING, MAIL, every RCPT and DATA go out in one write (RFC 2920).
// The caller moves bytes: it feeds every Reply (ReplyParser turns bytes into replies) to
// on_reply() and performs the returned Action: send bytes, start TLS then call
// tls_started(), or send the message body (dot-stuffed with DotStuffer) then keep
// feeding replies. LMTP returns one reply per accepted recipient after the data (RFC
// 2033); SMTP one for all.
//
// The result is one Reply per recipient: 2xx delivered, 4xx try later, 5xx failed. When
// the connection breaks, fail_unresolved() gives every recipient without a final reply a
// temporary one. Malformed replies raise ProtocolError.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace pecd::smtp {

class ProtocolError : public TemporaryError {
public:
    using TemporaryError::TemporaryError;
};

struct Reply {
    int code = 0;
    std::vector<std::string> lines;  // text after "NNN-"/"NNN ", one per line

    bool positive() const { return code >= 200 && code < 300; }
    bool transient() const { return code >= 400 && code < 500; }
    bool permanent() const { return code >= 500; }
    // "550 5.1.1 no such user" (first line, with the code); multi-line texts joined by ' '.
    std::string summary() const;
    // The enhanced status code of the reply ("5.1.1"), or one made from the code.
    std::string status() const;
};

// Turns the bytes of a server into replies; tolerant of line splits across reads.
class ReplyParser {
public:
    void feed(std::string_view bytes);
    // The next complete reply, if any; throws ProtocolError on a malformed line.
    std::optional<Reply> next();
    bool has_partial() const { return !buffer_.empty() || !current_.lines.empty(); }

private:
    std::string buffer_;
    Reply current_;
};

// Dot-stuffs a CRLF message body (RFC 5321 4.5.2) and terminates it with CRLF.CRLF.
class DotStuffer {
public:
    std::string encode(std::string_view chunk);
    std::string finish();  // the final "\r\n.\r\n" (or ".\r\n" when the body ended in CRLF)

private:
    bool line_start_ = true;
    char prev_ = 0;
    char last_ = 0;
};

enum class TlsWanted { never, if_offered, required };

struct ClientRecipient {
    std::string address;
    std::string notify;  // NOTIFY= value, empty if none
    std::string orcpt;   // ORCPT= value, empty if none
};

struct ClientParams {
    bool lmtp = false;
    std::string helo_name = "localhost";
    TlsWanted tls = TlsWanted::if_offered;
    bool tls_active = false;  // implicit TLS: already encrypted
    std::string mail_from;    // without brackets, empty for <>
    std::vector<ClientRecipient> recipients;
    std::uint64_t size = 0;
    bool eight_bit = false;
    bool smtputf8 = false;
    std::string dsn_ret;
    std::string dsn_envid;
    // SMTP only: end a completed transaction without QUIT, so that the caller can keep
    // the session for the next message (resume()); reusable() says whether it may.
    bool keep_open = false;
};

struct Extensions {
    bool pipelining = false;
    bool starttls = false;
    bool eight_bit_mime = false;
    bool smtputf8 = false;
    bool dsn = false;
    bool has_size = false;
    std::uint64_t max_size = 0;  // 0 = no limit announced
};
// The extensions an EHLO reply lists (one keyword per line after the first).
Extensions parse_extensions(const Reply& ehlo);

class ClientSession {
public:
    enum class Step { send, start_tls, send_body, done };
    struct Action {
        Step step = Step::send;
        std::string bytes;  // for Step::send (and a last QUIT with Step::done)
    };

    explicit ClientSession(ClientParams params);

    // Feed each reply in order, starting with the greeting.
    Action on_reply(const Reply& reply);
    // After a successful TLS handshake (Step::start_tls): sends EHLO again.
    Action tls_started();
    // After the body and its terminator were written: wait for the final reply(ies).
    void body_sent() {}
    // Instead of the greeting: a new transaction on a session that a previous
    // ClientSession left open (keep_open) with these extensions and TLS state. The first
    // action is MAIL (with PIPELINING, MAIL, RCPT and DATA) - no RSET is needed after a
    // completed transaction (RFC 5321 4.1.4).
    Action resume(const Extensions& ext, bool tls_active);
    // The connection broke or timed out: every recipient still open gets a 4xx.
    void fail_unresolved(const std::string& reason);

    bool finished() const { return state_ == State::done; }
    const std::vector<std::optional<Reply>>& results() const { return results_; }
    const Extensions& extensions() const { return ext_; }
    bool tls_active() const { return params_.tls_active; }
    // Set when the session gave up because TLS was required but not offered/accepted.
    bool tls_refused() const { return tls_refused_; }
    // Done without QUIT (keep_open) and the server's last reply ended the transaction
    // without closing the connection: the session can carry another message.
    bool reusable() const { return reusable_; }
    const std::string& greeting_host() const { return greeting_host_; }

private:
    enum class State { greeting, ehlo, helo, starttls, mail, rcpt, data, data_end, done };
    Action hello();
    Action after_hello();
    Action start_transaction();
    Action send_next_rcpt_or_data();
    Action quit();
    Action end_transaction(const Reply& last);
    Action give_up(const Reply& reply);
    std::string mail_command() const;
    std::string rcpt_command(const ClientRecipient& r) const;
    void set_all_open(const Reply& reply);

    ClientParams params_;
    Extensions ext_;
    State state_ = State::greeting;
    std::vector<std::optional<Reply>> results_;
    std::vector<std::size_t> accepted_;  // indices of recipients whose RCPT got 2xx
    std::size_t rcpt_index_ = 0;         // next RCPT reply expected (or to send)
    std::size_t lmtp_index_ = 0;         // next LMTP final reply: index into accepted_
    bool mail_ok_ = false;
    bool pipelined_ = false;
    bool tls_refused_ = false;
    bool reusable_ = false;
    std::string greeting_host_;
};

// Builds a Reply from one line of text ("451 4.3.0 local error"), for results made up
// by the caller (timeouts, refused connections).
Reply make_reply(int code, std::string text);

}  // namespace pecd::smtp
