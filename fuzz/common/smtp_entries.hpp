// smtp_entries.hpp - the SMTP server session driven by arbitrary bytes, for the
// smtp_session fuzz target and its smoke test
//
// smtp_session_entry() plays a whole connection against a ServerSession the way the
// daemon's I/O layer does (STARTTLS completes, AUTH is checked, commits succeed or fail),
// with a listener policy and a feed chunking chosen by the input's first two bytes. It
// returns, never crashes or hangs, and checks what port 25 promises whatever the client
// sends:
//   - every reply line is a 2xx-5xx code, a space or '-', text, CRLF, at most 512 octets,
//     and a multi-line reply ends on a line with the same code and a space;
//   - AUTH is only ever checked on a TLS session;
//   - a stored message has only CRLF line ends and stays within the size and recipient
//     limits; on a listener requiring TLS or AUTH it came over TLS, authenticated, and
//     with a sender that must match, from the authenticated account;
//   - after a close, the session writes nothing more.
// A broken promise is reported in `violation` (empty when all held).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace pecd::fuzz {

struct SessionOutcome {
    std::string violation;      // empty: every promise above held
    std::size_t replies = 0;    // reply lines written
    std::size_t committed = 0;  // messages handed to the queue
    bool closed = false;        // the session closed the connection
    std::string transcript;     // every reply the session wrote, in order
};

// data[0]: listener policy bits (0-1 TLS mode none/starttls/required/implicit, 2 AUTH
// offered, 3 AUTH required, 4 sender must match, 5 LMTP, 6 small limits, 7 commits fail);
// data[1]: feed chunk sizes; the rest: what the client sends.
SessionOutcome smtp_session_entry(std::string_view data);

// The other direction: pecd delivering one message to a hostile server. The input's
// bytes after the first two are everything the server says; the client session answers
// each reply as RemoteTransport does (STARTTLS completes, the body goes when asked, a
// malformed reply or the end of the input breaks the connection). What it checks:
//   - every command is CRLF-terminated text without NUL, bare CR or bare LF;
//   - with TLS required, neither MAIL nor the body goes out before TLS is up;
//   - the body goes out only in answer to a 354;
//   - in the end every recipient has a verdict (2xx, 4xx or 5xx, never a 3xx), and none
//     is delivered (2xx) unless the body went out;
//   - nothing but the protocol's own TemporaryError escapes the session.
struct ClientOutcome {
    std::string violation;      // empty: every promise above held
    std::size_t delivered = 0;  // recipients with a 2xx verdict
    bool body_sent = false;
    bool tls = false;        // TLS was started
    std::string transcript;  // what the client sent, in order ("<body>" for the body)
};

// data[0]: bits 0-1 recipients - 1, 2-3 TLS never/if offered/required/required (implicit),
// 4 LMTP, 5 keep the session open, 6 8-bit body; data[1]: feed chunk sizes.
ClientOutcome smtp_client_entry(std::string_view data);

}  // namespace pecd::fuzz
