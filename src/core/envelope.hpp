// envelope.hpp - the SMTP envelope of one message, as it travels through pecd
//
// The envelope (MAIL FROM, RCPT TO and their parameters) is what PEC certifies: the
// reverse path is the certified sender and the forward paths are the certified
// recipients (pec.md 2.2). It is created by the SMTP server, stored durably with the
// message by the queue, and read by the PEC engine and the delivery agents.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/clock.hpp"

namespace pecd {

struct Recipient {
    std::string address;  // forward path without angle brackets
    std::string notify;   // DSN NOTIFY= value as given (RFC 3461), empty if absent
    std::string orcpt;    // DSN ORCPT= value as given, empty if absent
};

// Facts about the connection a message arrived on, kept for Received:, the legal log
// and policy decisions.
struct SessionInfo {
    std::string listener;      // name of the listener (config), e.g. "mx", "submission"
    std::string client_ip;     // textual address of the peer
    std::uint16_t client_port = 0;
    std::string helo;          // argument of the last EHLO/HELO
    std::string auth_user;     // authenticated identity, empty if none
    std::string tls_protocol;  // e.g. "TLSv1.3", empty without TLS
    std::string tls_cipher;    // e.g. "TLS_AES_256_GCM_SHA384"
    bool lmtp = false;
};

struct Envelope {
    std::string mail_from;  // reverse path without brackets; empty for the null sender <>
    std::vector<Recipient> recipients;
    std::string dsn_ret;    // RET= (FULL/HDRS), empty if absent
    std::string dsn_envid;  // ENVID=, empty if absent
    std::string body_type;  // BODY= (7BIT/8BITMIME), empty if absent
    bool smtputf8 = false;
    std::uint64_t declared_size = 0;  // SIZE= value, 0 if absent
    SessionInfo session;
    TimePoint received_at{};
};

}  // namespace pecd
