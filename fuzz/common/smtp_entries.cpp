// smtp_entries.cpp - a whole SMTP connection from arbitrary bytes (see smtp_entries.hpp)
#include "smtp_entries.hpp"

#include <memory>
#include <vector>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/strings.hpp"
#include "smtp/client.hpp"
#include "smtp/server_session.hpp"

namespace pecd::fuzz {
namespace {

constexpr std::string_view kUser = "user@local.test";
constexpr std::string_view kPassword = "secret";
constexpr std::size_t kMaxReplyLine = 512;  // RFC 5321 4.5.3.1.5, CRLF included

// Both entries read their input the same way: a byte of settings, a byte of chunking,
// then the peer's bytes.
struct Input {
    unsigned char bits = 0;
    unsigned char chunking = 0;
    std::string_view peer;
};

Input split_input(std::string_view data) {
    Input in;
    if (!data.empty()) in.bits = static_cast<unsigned char>(data[0]);
    if (data.size() >= 2) {
        in.chunking = static_cast<unsigned char>(data[1]);
        in.peer = data.substr(2);
    }
    return in;
}

// "bare LF", "bare CR" or "NUL" (when nul_counts) for the first byte that is not part of
// CRLF-terminated text; empty when there is none.
std::string line_end_problem(std::string_view bytes, bool nul_counts) {
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        char c = bytes[i];
        if (c == '\0' && nul_counts) return "NUL";
        if (c == '\n' && (i == 0 || bytes[i - 1] != '\r')) return "bare LF";
        if (c == '\r' && (i + 1 == bytes.size() || bytes[i + 1] != '\n')) return "bare CR";
    }
    return {};
}

struct Stored {
    SessionInfo session;
    Envelope envelope;
    std::string data;
    bool committed = false;  // stored: the session was told so and replied 250
};

class Message final : public queue::IncomingMessage {
public:
    Message(Stored& s, bool fail) : s_(s), fail_(fail) {}
    void write(std::string_view chunk) override { s_.data.append(chunk); }
    void commit(std::function<void(queue::CommitResult)> done) override {
        s_.committed = !fail_;
        done(fail_ ? queue::CommitResult{false, {}, "disk full"} : queue::CommitResult{true, "Q1", {}});
    }
    void abort() noexcept override {}

private:
    Stored& s_;
    bool fail_;
};

class Handler final : public smtp::SessionHandler {
public:
    explicit Handler(bool fail_commits) : fail_commits_(fail_commits) {}
    smtp::RecipientVerdict check_recipient(const SessionInfo& s, const std::string& a) override {
        if (a.starts_with("full")) return smtp::RecipientVerdict::mailbox_full;
        if (a.starts_with("temp")) return smtp::RecipientVerdict::temp_failure;
        if (a.ends_with("@local.test")) return smtp::RecipientVerdict::accept;
        return s.auth_user.empty() ? smtp::RecipientVerdict::relay_denied : smtp::RecipientVerdict::accept;
    }
    std::unique_ptr<queue::IncomingMessage> begin_message(const Envelope& e) override {
        if (e.mail_from.starts_with("busy")) throw TemporaryError("queue busy");
        stored.push_back(std::make_unique<Stored>());
        stored.back()->envelope = e;
        stored.back()->session = e.session;
        return std::make_unique<Message>(*stored.back(), fail_commits_);
    }
    std::vector<std::unique_ptr<Stored>> stored;

private:
    bool fail_commits_;
};

smtp::ListenerPolicy policy_of(unsigned char bits) {
    smtp::ListenerPolicy p;
    p.hostname = "mx.local.test";
    static constexpr smtp::TlsMode kModes[] = {smtp::TlsMode::none, smtp::TlsMode::starttls,
                                               smtp::TlsMode::starttls_required, smtp::TlsMode::implicit};
    p.tls = kModes[bits & 3];
    p.auth = (bits & 4) != 0;
    p.require_auth = (bits & 8) != 0;
    p.sender_must_match_auth = (bits & 16) != 0;
    p.lmtp = (bits & 32) != 0;
    if (bits & 64) {
        // Small limits, so short inputs reach every limit's refusal.
        p.limits.command_line = 64;
        p.limits.data_line = 80;
        p.limits.header_block = 200;
        p.limits.message_size = 400;
        p.limits.recipients = 3;
        p.limits.errors = 4;
    }
    return p;
}

// Checks the reply lines in `out` (complete replies only: the session writes whole ones).
void check_replies(std::string_view out, SessionOutcome& o) {
    std::size_t pos = 0;
    std::string open_code;  // the code of a multi-line reply not yet finished
    while (pos < out.size() && o.violation.empty()) {
        auto end = out.find("\r\n", pos);
        if (end == std::string_view::npos) {
            o.violation = "reply without CRLF: " + std::string(out.substr(pos, 80));
            return;
        }
        auto line = out.substr(pos, end - pos);
        pos = end + 2;
        ++o.replies;
        if (line.size() + 2 > kMaxReplyLine)
            o.violation = "reply line over 512 octets";
        else if (line.size() < 4 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' ||
                 line[2] < '0' || line[2] > '9' || (line[3] != ' ' && line[3] != '-'))
            o.violation = "malformed reply line: " + std::string(line.substr(0, 80));
        else if (line.find('\r') != std::string_view::npos || line.find('\n') != std::string_view::npos ||
                 line.find('\0') != std::string_view::npos)
            o.violation = "control character in a reply line: " + std::string(line.substr(0, 80));
        else if (!open_code.empty() && line.substr(0, 3) != open_code)
            o.violation = "multi-line reply changes its code: " + std::string(line.substr(0, 80));
        else
            open_code = line[3] == '-' ? std::string(line.substr(0, 3)) : std::string();
    }
    if (o.violation.empty() && !open_code.empty()) o.violation = "multi-line reply left unfinished";
}

void check_stored(const Stored& s, const smtp::ListenerPolicy& p, SessionOutcome& o) {
    const auto& d = s.data;
    if (auto problem = line_end_problem(d, false); !problem.empty()) {
        o.violation = problem + " stored in a message";
        return;
    }
    // The session puts its Received: header (folded with tabs) in front of what the client
    // sent; the size limit counts the client's bytes.
    if (!d.starts_with("Received: from ")) {
        o.violation = "message stored without the session's Received: header first";
        return;
    }
    std::size_t header_end = 0;
    for (auto at = d.find("\r\n"); at != std::string::npos; at = d.find("\r\n", at + 2))
        if (at + 2 == d.size() || d[at + 2] != '\t') {
            header_end = at + 2;
            break;
        }
    const std::size_t client_bytes = d.size() - header_end;
    if (s.envelope.recipients.empty())
        o.violation = "message stored without recipients";
    else if (s.envelope.recipients.size() > p.limits.recipients)
        o.violation = "more recipients than the limit";
    else if (client_bytes > p.limits.message_size)
        o.violation = "message stored over the size limit";
    else if ((p.tls == smtp::TlsMode::starttls_required || p.tls == smtp::TlsMode::implicit) &&
             s.session.tls_protocol.empty())
        o.violation = "message stored without TLS on a listener requiring it";
    else if (p.require_auth && s.session.auth_user.empty())
        o.violation = "message stored without AUTH on a listener requiring it";
    else if (p.require_auth && p.sender_must_match_auth && !s.envelope.mail_from.empty() &&
             to_lower(s.envelope.mail_from) != to_lower(s.session.auth_user))
        o.violation = "sender differs from the authenticated account";
}

}  // namespace

SessionOutcome smtp_session_entry(std::string_view data) {
    SessionOutcome o;
    const Input in = split_input(data);
    const unsigned char bits = in.bits, chunking = in.chunking;
    const std::string_view input = in.peer;

    auto policy = policy_of(bits);
    ManualClock clock{TimePoint(std::chrono::seconds(1'700'000'000))};
    Handler handler((bits & 128) != 0);
    const bool implicit = policy.tls == smtp::TlsMode::implicit;
    smtp::ServerSession s(policy, handler, clock, "192.0.2.1", 40000, implicit);
    if (implicit) s.tls_started("TLSv1.3", "TLS_AES_128_GCM_SHA256");
    s.start();

    std::string out;
    // What the I/O layer does for each wait; bounded, as a session can wait once per
    // line of input at most.
    auto drive = [&] {
        for (std::size_t steps = 0; steps < input.size() + 8; ++steps) {
            switch (s.wait()) {
                case smtp::Wait::none:
                case smtp::Wait::close:
                    return;
                case smtp::Wait::start_tls:
                    s.tls_started("TLSv1.3", "TLS_AES_128_GCM_SHA256");
                    break;
                case smtp::Wait::authenticate: {
                    if (s.info().tls_protocol.empty() && o.violation.empty())
                        o.violation = "AUTH checked on a session without TLS";
                    const auto& r = s.auth_request();
                    s.auth_finished(to_lower(r.user) == kUser && r.password == kPassword);
                    s.resume();
                    break;
                }
                case smtp::Wait::commit:
                    s.pending_message()->commit([&](queue::CommitResult r) { s.commit_finished(r); });
                    s.resume();
                    break;
            }
        }
    };

    // Chunk sizes cycle through 1..16 x (1 + chunking's high bits): pipelining, split
    // lines and split CRLFs all happen.
    std::size_t pos = 0, turn = 0;
    while (pos < input.size() && !s.closed()) {
        std::size_t n = 1 + ((chunking + turn * 7) & 15) * (1 + (chunking >> 4));
        ++turn;
        if (!(chunking & 1)) {
            // A client that waits for STARTTLS's answer before it goes on (an odd chunking
            // byte pipelines behind it instead, which the session must discard).
            // The command may have begun in the chunk before.
            const std::size_t from = pos >= 9 ? pos - 9 : 0;
            auto seen = to_lower(input.substr(from, pos + n - from));
            for (auto at = seen.find("starttls\r\n"); at != std::string::npos;
                 at = seen.find("starttls\r\n", at + 1))
                if (from + at + 10 > pos) {
                    n = from + at + 10 - pos;
                    break;
                }
        }
        s.feed(input.substr(pos, n));
        pos += n;
        drive();
        out += s.output();
        s.output().clear();
    }
    o.closed = s.closed();
    if (!o.closed) {
        s.timeout();
        out += s.output();
        s.output().clear();
        s.feed("QUIT\r\n");  // after a close nothing more is answered
        if (!s.output().empty() && o.violation.empty()) o.violation = "reply after the session closed";
    }
    if (o.violation.empty()) check_replies(out, o);
    o.transcript = std::move(out);
    for (const auto& m : handler.stored) {
        if (!m->committed) continue;  // aborted or refused: nothing was promised
        ++o.committed;
        if (o.violation.empty()) check_stored(*m, policy, o);
    }
    return o;
}

ClientOutcome smtp_client_entry(std::string_view data) {
    ClientOutcome o;
    const Input in = split_input(data);
    const unsigned char bits = in.bits, chunking = in.chunking;
    const std::string_view server = in.peer;

    smtp::ClientParams p;
    p.helo_name = "pecd.local.test";
    static constexpr smtp::TlsWanted kTls[] = {smtp::TlsWanted::never, smtp::TlsWanted::if_offered,
                                               smtp::TlsWanted::required, smtp::TlsWanted::required};
    p.tls = kTls[(bits >> 2) & 3];
    p.tls_active = ((bits >> 2) & 3) == 3;
    p.lmtp = (bits & 16) != 0;
    p.keep_open = (bits & 32) != 0;
    p.eight_bit = (bits & 64) != 0;
    p.mail_from = "sender@local.test";
    p.size = 1234;
    for (unsigned i = 0; i <= (bits & 3u); ++i)
        p.recipients.push_back({"r" + std::to_string(i) + "@remote.test", i == 1 ? "SUCCESS,FAILURE" : "",
                                i == 2 ? "rfc822;r2@remote.test" : ""});
    const std::size_t rcpts = p.recipients.size();
    const bool tls_required = p.tls == smtp::TlsWanted::required;
    o.tls = p.tls_active;

    smtp::ClientSession session(std::move(p));
    auto check_commands = [&](std::string_view bytes) {
        if (auto problem = line_end_problem(bytes, true); !problem.empty() && o.violation.empty())
            o.violation = problem + " in a command";
    };
    smtp::ReplyParser parser;
    std::size_t pos = 0, turn = 0;
    // The next reply, feeding the parser the server's bytes chunk by chunk; nullopt once
    // they run out (the server closed the connection).
    auto next_reply = [&]() -> std::optional<smtp::Reply> {
        for (;;) {
            if (auto r = parser.next()) return r;
            if (pos >= server.size()) return std::nullopt;
            std::size_t n = 1 + ((chunking + turn * 5) & 31) * (1 + (chunking >> 5));
            ++turn;
            parser.feed(server.substr(pos, n));
            pos += n;
        }
    };

    try {
        auto r = next_reply();
        if (!r) {
            session.fail_unresolved("connection closed");
        } else {
            int last_code = r->code;
            auto action = session.on_reply(*r);
            // Bounded: each turn takes one reply from a finite input.
            for (std::size_t turns = 0; turns <= server.size() + 4 && o.violation.empty(); ++turns) {
                using Step = smtp::ClientSession::Step;
                if (action.step == Step::done) {
                    check_commands(action.bytes);
                    o.transcript += action.bytes;
                    break;
                }
                if (action.step == Step::start_tls) {
                    o.tls = true;
                    action = session.tls_started();
                    continue;
                }
                if (action.step == Step::send_body) {
                    if (last_code != 354) o.violation = "body sent in answer to " + std::to_string(last_code);
                    if (tls_required && !o.tls) o.violation = "body sent without TLS, which is required";
                    o.body_sent = true;
                    o.transcript += "<body>\r\n";
                    session.body_sent();
                } else {
                    check_commands(action.bytes);
                    if (tls_required && !o.tls &&
                        to_lower(action.bytes).find("mail from:") != std::string::npos)
                        o.violation = "MAIL sent without TLS, which is required";
                    o.transcript += action.bytes;
                }
                r = next_reply();
                if (!r) {
                    session.fail_unresolved("connection closed");
                    break;
                }
                last_code = r->code;
                action = session.on_reply(*r);
            }
        }
    } catch (const TemporaryError& e) {
        // A malformed reply (ProtocolError): RemoteTransport drops the connection.
        session.fail_unresolved(e.what());
    } catch (const std::exception& e) {
        o.violation = std::string("unexpected exception from the client session: ") + e.what();
        return o;
    }
    if (!o.violation.empty()) return o;
    if (!session.finished()) session.fail_unresolved("connection closed");
    const auto& results = session.results();
    if (results.size() != rcpts) {
        o.violation =
            "results for " + std::to_string(results.size()) + " of " + std::to_string(rcpts) + " recipients";
        return o;
    }
    for (const auto& res : results) {
        if (!res || !(res->positive() || res->transient() || res->permanent())) {
            o.violation = "a recipient left without a verdict";
            return o;
        }
        if (res->positive()) ++o.delivered;
    }
    if (o.delivered > 0 && !o.body_sent) o.violation = "a recipient delivered though the body never went out";
    return o;
}

}  // namespace pecd::fuzz
