#include "smtp/server_session.hpp"

#include <sodium.h>

#include <cstring>
#include <ctime>
#include <random>

#include "core/error.hpp"
#include "core/strings.hpp"
#include "smtp/address.hpp"

namespace pecd::smtp {
namespace {

constexpr std::size_t kAuthLineLimit = 12288;  // RFC 4954 section 4
constexpr std::size_t kWriteBatch = 64 * 1024;
constexpr std::size_t kReplyLine = 512;  // RFC 5321 4.5.3.1.5, CRLF included

// Client bytes the session repeats (a parameter name, an address, the HELO name in the
// Received: header) as printable ASCII: a NUL, a control character or an 8-bit byte
// becomes '?', so neither a reply nor a stored header carries them.
void append_printable(std::string& out, std::string_view text) {
    for (unsigned char c : text) out += c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?';
}

std::string random_id() {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    static constexpr char digits[] = "0123456789ABCDEF";
    std::string s(12, '0');
    auto v = rng();
    for (auto& c : s) {
        c = digits[v & 15];
        v >>= 4;
    }
    return s;
}

std::string rfc5322_date(TimePoint t) {
    std::time_t tt = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    static const char* days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
                  months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return buf;
}

// Strict base64 (libsodium rejects stray characters and bad padding).
bool decode_base64(std::string_view in, std::string& out) {
    out.assign(in.size() / 4 * 3 + 3, '\0');
    std::size_t len = 0;
    const char* end = nullptr;
    if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), in.data(), in.size(),
                          nullptr, &len, &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
        end != in.data() + in.size())
        return false;
    out.resize(len);
    return true;
}

std::string encode_base64(std::string_view in) {
    std::string out(sodium_base64_encoded_len(in.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
    sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(in.data()), in.size(),
                      sodium_base64_VARIANT_ORIGINAL);
    out.resize(std::strlen(out.c_str()));
    return out;
}

bool valid_xtext(std::string_view v) {
    for (char c : v)
        if (static_cast<unsigned char>(c) < 33 || static_cast<unsigned char>(c) > 126 || c == '=') return false;
    return true;
}

}  // namespace

ServerSession::ServerSession(ListenerPolicy policy, SessionHandler& handler, const Clock& clock,
                             std::string client_ip, std::uint16_t client_port, bool tls_active)
    : policy_(std::move(policy)), handler_(handler), clock_(clock) {
    info_.listener = policy_.name;
    info_.client_ip = std::move(client_ip);
    info_.client_port = client_port;
    info_.lmtp = policy_.lmtp;
    tls_ = tls_active;
}

ServerSession::~ServerSession() {
    if (message_) message_->abort();
}

void ServerSession::start() {
    reply(220, "", policy_.hostname + (policy_.lmtp ? " LMTP pecd" : " ESMTP pecd"));
}

void ServerSession::reply(int code, std::string_view enhanced, std::string_view text) {
    const std::size_t start = out_.size();
    out_ += std::to_string(code);
    out_ += ' ';
    if (!enhanced.empty()) {
        out_ += enhanced;
        out_ += ' ';
    }
    append_printable(out_, text);
    if (out_.size() - start > kReplyLine - 2) out_.resize(start + kReplyLine - 2);
    out_ += "\r\n";
}

void ServerSession::error_reply(int code, std::string_view enhanced, std::string_view text) {
    reply(code, enhanced, text);
    if (++errors_ >= policy_.limits.errors) {
        reply(421, "4.7.0", policy_.hostname + " Error: too many errors");
        wait_ = Wait::close;
    }
}

void ServerSession::feed(std::string_view bytes) {
    if (wait_ == Wait::close) return;
    if (in_pos_ > 0 && in_pos_ == in_.size()) {
        in_.clear();
        in_pos_ = 0;
    }
    in_.append(bytes);
    if (wait_ == Wait::none) process();
}

void ServerSession::resume() {
    if (wait_ == Wait::close) return;
    wait_ = Wait::none;
    process();
}

void ServerSession::timeout() {
    reply(421, "4.4.2", policy_.hostname + " Error: timeout exceeded");
    wait_ = Wait::close;
}

void ServerSession::shutdown() {
    reply(421, "4.3.2", policy_.hostname + " Service shutting down");
    wait_ = Wait::close;
}

void ServerSession::process() {
    while (wait_ == Wait::none && in_pos_ < in_.size()) {
        if (state_ == State::data) {
            if (!data_input()) break;  // an incomplete line: wait for more bytes
            continue;
        }
        std::string line;
        std::size_t limit = state_ == State::command ? policy_.limits.command_line : kAuthLineLimit;
        auto got = take_line(line, limit);
        if (got == LineResult::need_more) break;
        if (wait_ == Wait::close) break;
        if (got == LineResult::skipped) {
            state_ = State::command;  // a refused line also ends an AUTH exchange
            continue;
        }
        if (state_ == State::command)
            command(line);
        else
            auth_response(line);
    }
    if (in_pos_ == in_.size()) {
        in_.clear();
        in_pos_ = 0;
    } else if (in_pos_ > (1u << 16)) {
        in_.erase(0, in_pos_);
        in_pos_ = 0;
    }
}

// Extracts one CRLF-terminated command line. A line that is too long, or that holds a
// bare CR or LF, is answered here and reported as skipped.
ServerSession::LineResult ServerSession::take_line(std::string& line, std::size_t limit) {
    auto lf = in_.find('\n', in_pos_);
    if (lf == std::string::npos) {
        if (in_.size() - in_pos_ > limit) {
            if (!discarding_) error_reply(500, "5.5.2", "Error: line too long");
            discarding_ = true;  // drop the rest of this line when it comes
            in_.clear();
            in_pos_ = 0;
        }
        return LineResult::need_more;
    }
    std::string_view raw(in_.data() + in_pos_, lf - in_pos_);
    in_pos_ = lf + 1;
    if (discarding_) {
        discarding_ = false;
        return LineResult::skipped;
    }
    if (raw.empty() || raw.back() != '\r') {
        error_reply(500, "5.5.2", "Error: bare <LF> received");
        return LineResult::skipped;
    }
    raw.remove_suffix(1);
    if (raw.find('\r') != std::string_view::npos) {
        error_reply(500, "5.5.2", "Error: bare <CR> received");
        return LineResult::skipped;
    }
    if (raw.size() + 2 > limit) {
        error_reply(500, "5.5.2", "Error: line too long");
        return LineResult::skipped;
    }
    line.assign(raw);
    return LineResult::line;
}

void ServerSession::command(std::string_view line) {
    if (line.empty()) return error_reply(500, "5.5.2", "Error: empty command");
    auto sp = line.find(' ');
    std::string verb = to_upper(line.substr(0, sp));
    std::string_view arg = sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);

    if (verb == "EHLO" || verb == "HELO" || verb == "LHLO") {
        bool lhlo = verb == "LHLO";
        if (lhlo != policy_.lmtp) return error_reply(500, "5.5.1", "Error: command not recognized");
        return cmd_ehlo(arg, verb != "HELO", lhlo);
    }
    if (verb == "MAIL") return cmd_mail(arg);
    if (verb == "RCPT") return cmd_rcpt(arg);
    if (verb == "DATA") {
        if (!arg.empty()) return error_reply(501, "5.5.4", "Syntax: DATA");
        return cmd_data();
    }
    if (verb == "RSET") {
        reset_transaction();
        return reply(250, "2.0.0", "Ok");
    }
    if (verb == "NOOP") return reply(250, "2.0.0", "Ok");
    if (verb == "QUIT") {
        reply(221, "2.0.0", "Bye");
        wait_ = Wait::close;
        return;
    }
    if (verb == "STARTTLS") {
        if (!arg.empty()) return error_reply(501, "5.5.4", "Syntax: STARTTLS");
        return cmd_starttls();
    }
    if (verb == "AUTH") return cmd_auth(arg);
    if (verb == "VRFY") return reply(252, "2.5.0", "Cannot VRFY user; try RCPT to attempt delivery");
    if (verb == "EXPN") return error_reply(502, "5.5.1", "Error: EXPN not supported");
    if (verb == "HELP") return reply(214, "2.0.0", "See RFC 5321");
    error_reply(500, "5.5.2", "Error: command not recognized");
}

void ServerSession::cmd_ehlo(std::string_view arg, bool extended, bool lhlo) {
    arg = trim(arg);
    if (arg.empty()) return error_reply(501, "5.5.4", "Syntax: EHLO hostname");
    reset_transaction();
    info_.helo.clear();
    append_printable(info_.helo, arg.substr(0, 255));
    greeted_ = true;
    if (!extended) return reply(250, "", policy_.hostname);
    std::vector<std::string> lines{policy_.hostname};
    lines.push_back("PIPELINING");
    lines.push_back("SIZE " + std::to_string(policy_.limits.message_size));
    lines.push_back("8BITMIME");
    lines.push_back("ENHANCEDSTATUSCODES");
    if (!tls_ && (policy_.tls == TlsMode::starttls || policy_.tls == TlsMode::starttls_required))
        lines.push_back("STARTTLS");
    if (tls_ && policy_.auth && info_.auth_user.empty()) lines.push_back("AUTH PLAIN LOGIN");
    lines.push_back("DSN");
    (void)lhlo;
    for (std::size_t i = 0; i < lines.size(); ++i) {
        out_ += "250";
        out_ += i + 1 == lines.size() ? ' ' : '-';
        out_ += lines[i];
        out_ += "\r\n";
    }
}

void ServerSession::cmd_starttls() {
    if (tls_) return error_reply(554, "5.5.1", "Error: TLS already active");
    if (policy_.tls != TlsMode::starttls && policy_.tls != TlsMode::starttls_required)
        return error_reply(502, "5.5.1", "Error: STARTTLS not available");
    reply(220, "2.0.0", "Ready to start TLS");
    wait_ = Wait::start_tls;
}

void ServerSession::tls_started(std::string protocol, std::string cipher) {
    // RFC 3207 4.2: forget everything learned before TLS, and discard anything the
    // client pipelined behind STARTTLS (it was not protected).
    in_.clear();
    in_pos_ = 0;
    tls_ = true;
    info_.tls_protocol = std::move(protocol);
    info_.tls_cipher = std::move(cipher);
    info_.helo.clear();
    info_.auth_user.clear();
    greeted_ = false;
    reset_transaction();
    wait_ = Wait::none;
}

void ServerSession::cmd_auth(std::string_view arg) {
    if (!policy_.auth) return error_reply(503, "5.5.1", "Error: authentication not enabled");
    if (!tls_) return error_reply(530, "5.7.0", "Must issue a STARTTLS command first");
    if (!greeted_) return error_reply(503, "5.5.1", "Error: send EHLO first");
    if (!info_.auth_user.empty()) return error_reply(503, "5.5.1", "Error: already authenticated");
    if (has_mail_) return error_reply(503, "5.5.1", "Error: MAIL transaction in progress");
    auto sp = arg.find(' ');
    std::string mech = to_upper(arg.substr(0, sp));
    std::string_view initial = sp == std::string_view::npos ? std::string_view() : arg.substr(sp + 1);
    bool has_initial = sp != std::string_view::npos;
    auth_ = AuthRequest{};
    auth_.mechanism = mech;
    if (mech == "PLAIN") {
        if (!has_initial) {
            state_ = State::auth_plain;
            return reply(334, "", "");
        }
        state_ = State::auth_plain;
        return auth_response(initial == "=" ? std::string_view() : initial);
    }
    if (mech == "LOGIN") {
        if (has_initial) {
            std::string user;
            if (!decode_base64(initial, user))
                return error_reply(501, "5.5.2", "Error: cannot decode response");
            auth_.user = user;
            state_ = State::auth_login_pass;
            return reply(334, "", encode_base64("Password:"));
        }
        state_ = State::auth_login_user;
        return reply(334, "", encode_base64("Username:"));
    }
    error_reply(504, "5.5.4", "Error: unsupported authentication mechanism");
}

void ServerSession::auth_response(std::string_view line) {
    State was = state_;
    state_ = State::command;
    if (line == "*") return error_reply(501, "5.0.0", "Authentication aborted");
    std::string decoded;
    if (!decode_base64(line, decoded)) return error_reply(501, "5.5.2", "Error: cannot decode response");
    if (was == State::auth_login_user) {
        auth_.user = decoded;
        state_ = State::auth_login_pass;
        return reply(334, "", encode_base64("Password:"));
    }
    if (was == State::auth_login_pass) {
        auth_.password = decoded;
    } else {
        // PLAIN: authzid NUL authcid NUL passwd (RFC 4616).
        auto p1 = decoded.find('\0');
        auto p2 = p1 == std::string::npos ? std::string::npos : decoded.find('\0', p1 + 1);
        if (p2 == std::string::npos) return error_reply(501, "5.5.2", "Error: malformed PLAIN response");
        std::string authz = decoded.substr(0, p1);
        auth_.user = decoded.substr(p1 + 1, p2 - p1 - 1);
        auth_.password = decoded.substr(p2 + 1);
        if (!authz.empty() && authz != auth_.user)
            return error_reply(535, "5.7.8", "Error: authorization identity not allowed");
    }
    if (auth_.user.empty()) return error_reply(535, "5.7.8", "Error: authentication failed");
    wait_ = Wait::authenticate;
}

void ServerSession::auth_finished(bool ok, bool rate_limited) {
    std::string user = std::move(auth_.user);
    sodium_memzero(auth_.password.data(), auth_.password.size());
    auth_ = AuthRequest{};
    wait_ = Wait::none;
    if (rate_limited) {
        reply(454, "4.7.0", "Error: too many failed authentications, try again later");
    } else if (ok) {
        info_.auth_user = std::move(user);
        reply(235, "2.7.0", "Authentication successful");
    } else {
        error_reply(535, "5.7.8", "Error: authentication failed");
    }
    if (wait_ != Wait::close) process();
}

void ServerSession::cmd_mail(std::string_view arg) {
    if (!greeted_) return error_reply(503, "5.5.1", "Error: send HELO/EHLO first");
    if (policy_.tls == TlsMode::starttls_required && !tls_)
        return error_reply(530, "5.7.0", "Must issue a STARTTLS command first");
    if (policy_.require_auth && info_.auth_user.empty())
        return error_reply(530, "5.7.0", "Authentication required");
    if (has_mail_) return error_reply(503, "5.5.1", "Error: nested MAIL command");
    if (!istarts_with(arg, "FROM:")) return error_reply(501, "5.5.4", "Syntax: MAIL FROM:<address>");
    std::string why;
    auto path = parse_path(arg.substr(5), true, &why);
    if (!path) return error_reply(501, "5.1.7", "Bad sender address syntax: " + why);
    Envelope env;
    for (auto& [key, value] : path->params) {
        if (key == "SIZE") {
            // RFC 1870: size-value = 1*20DIGIT. strtoull() alone would also take "+5" and
            // "-1" (the latter as 2^64 - 1); errno is left for 20 digits beyond 2^64 - 1.
            if (value.empty() || value.size() > 20 ||
                value.find_first_not_of("0123456789") != std::string::npos)
                return error_reply(501, "5.5.4", "Bad SIZE parameter");
            errno = 0;
            auto n = std::strtoull(value.c_str(), nullptr, 10);
            if (errno) return error_reply(501, "5.5.4", "Bad SIZE parameter");
            if (n > policy_.limits.message_size)
                return error_reply(552, "5.3.4", "Message size exceeds fixed limit");
            env.declared_size = n;
        } else if (key == "BODY") {
            auto v = to_upper(value);
            if (v != "7BIT" && v != "8BITMIME") return error_reply(501, "5.5.4", "Bad BODY parameter");
            env.body_type = v;
        } else if (key == "RET") {
            auto v = to_upper(value);
            if (v != "FULL" && v != "HDRS") return error_reply(501, "5.5.4", "Bad RET parameter");
            env.dsn_ret = v;
        } else if (key == "ENVID") {
            if (value.empty() || value.size() > 100 || !valid_xtext(value))
                return error_reply(501, "5.5.4", "Bad ENVID parameter");
            env.dsn_envid = value;
        } else if (key == "AUTH") {
            // RFC 4954 5: accepted and not trusted.
        } else {
            return error_reply(555, "5.5.4", "Unsupported parameter " + key);
        }
    }
    if (policy_.sender_must_match_auth && !info_.auth_user.empty() && !iequals(path->address, info_.auth_user))
        return error_reply(553, "5.7.1", "Sender address rejected: not owned by the authenticated user");
    env.mail_from = path->address;
    envelope_ = std::move(env);
    has_mail_ = true;
    transaction_id_ = random_id();
    reply(250, "2.1.0", "Ok");
}

void ServerSession::cmd_rcpt(std::string_view arg) {
    if (!has_mail_) return error_reply(503, "5.5.1", "Error: need MAIL command");
    if (!istarts_with(arg, "TO:")) return error_reply(501, "5.5.4", "Syntax: RCPT TO:<address>");
    std::string why;
    auto path = parse_path(arg.substr(3), false, &why);
    if (!path) return error_reply(501, "5.1.3", "Bad recipient address syntax: " + why);
    Recipient r;
    r.address = path->address;
    for (auto& [key, value] : path->params) {
        if (key == "NOTIFY") {
            auto v = to_upper(value);
            bool ok = !v.empty();
            for (auto item : split(v, ','))
                ok = ok && (item == "NEVER" || item == "SUCCESS" || item == "FAILURE" || item == "DELAY");
            if (!ok || (v.find("NEVER") != std::string::npos && v != "NEVER"))
                return error_reply(501, "5.5.4", "Bad NOTIFY parameter");
            r.notify = v;
        } else if (key == "ORCPT") {
            if (value.find(';') == std::string::npos || value.size() > 500)
                return error_reply(501, "5.5.4", "Bad ORCPT parameter");
            r.orcpt = value;
        } else {
            return error_reply(555, "5.5.4", "Unsupported parameter " + key);
        }
    }
    if (envelope_.recipients.size() >= policy_.limits.recipients)
        return reply(452, "4.5.3", "Error: too many recipients");
    switch (handler_.check_recipient(info_, r.address)) {
        case RecipientVerdict::accept:
            envelope_.recipients.push_back(std::move(r));
            return reply(250, "2.1.5", "Ok");
        case RecipientVerdict::unknown_user:
            return error_reply(550, "5.1.1", "Recipient address rejected: user unknown");
        case RecipientVerdict::relay_denied:
            return error_reply(554, "5.7.1", "Recipient address rejected: relay access denied");
        case RecipientVerdict::mailbox_full:
            return reply(452, "4.2.2", "Recipient address rejected: mailbox full");
        case RecipientVerdict::disabled:
            return error_reply(550, "5.2.1", "Recipient address rejected: mailbox disabled");
        case RecipientVerdict::temp_failure:
            return reply(451, "4.3.0", "Recipient address rejected: temporary failure, try later");
    }
}

void ServerSession::cmd_data() {
    if (!has_mail_) return error_reply(503, "5.5.1", "Error: need MAIL command");
    if (envelope_.recipients.empty()) return error_reply(554, "5.5.1", "Error: no valid recipients");
    envelope_.session = info_;
    envelope_.received_at = clock_.now();
    try {
        message_ = handler_.begin_message(envelope_);
    } catch (const TemporaryError& e) {
        return reply(451, "4.3.0", "Error: queue file write error, try again later");
    }
    if (!message_) return reply(451, "4.3.0", "Error: queue not available, try again later");
    data_bytes_ = 0;
    header_bytes_ = 0;
    in_headers_ = true;
    data_problem_.clear();
    data_problem_code_.clear();
    data_midline_ = false;
    pending_line_ = received_header();
    state_ = State::data;
    reply(354, "", "End data with <CR><LF>.<CR><LF>");
}

std::string ServerSession::received_header() const {
    std::string proto = policy_.lmtp ? "LMTP" : (info_.helo.empty() ? "SMTP" : "ESMTP");
    if (!policy_.lmtp) {
        if (tls_) proto += "S";
        if (!info_.auth_user.empty()) proto += "A";
    }
    // Each continuation line starts with a tab; the date ends the last one (with several
    // recipients there is no "for" line, and a line starting with ";" would end the header).
    std::string h = "Received: from " + info_.helo + " ([" + info_.client_ip + "])\r\n\tby " +
                    policy_.hostname + " (pecd) with " + proto + " id " + transaction_id_;
    if (tls_) h += "\r\n\t(using " + info_.tls_protocol + " with cipher " + info_.tls_cipher + ")";
    if (envelope_.recipients.size() == 1) h += "\r\n\tfor <" + envelope_.recipients.front().address + ">";
    h += "; " + rfc5322_date(envelope_.received_at) + "\r\n";
    return h;
}

// Consumes DATA input line by line. pending_line_ collects the bytes to write; it is
// handed to the message in batches. Returns false when only an incomplete line is left.
bool ServerSession::data_input() {
    const auto& lim = policy_.limits;
    while (in_pos_ < in_.size()) {
        auto lf = in_.find('\n', in_pos_);
        if (lf == std::string::npos) {
            // Incomplete line: a CR may still be followed by LF in the next read.
            std::string_view part(in_.data() + in_pos_, in_.size() - in_pos_);
            auto cr = part.find('\r');
            if (cr != std::string_view::npos && cr + 1 < part.size()) {
                return refuse_connection("bare <CR> received");
            }
            if (part.size() > lim.data_line) {
                if (data_problem_.empty()) {
                    data_problem_code_ = "552 5.3.4";
                    data_problem_ = "Error: message line too long";
                }
                // Drop the bytes, keeping a trailing CR that the next read may complete.
                bool trailing_cr = part.back() == '\r';
                in_.assign(trailing_cr ? "\r" : "");
                in_pos_ = 0;
                data_midline_ = true;
            }
            return false;
        }
        std::string_view line(in_.data() + in_pos_, lf - in_pos_);
        in_pos_ = lf + 1;
        if (line.empty() || line.back() != '\r') {
            return refuse_connection("bare <LF> received");
        }
        line.remove_suffix(1);
        if (line.find('\r') != std::string_view::npos) {
            return refuse_connection("bare <CR> received");
        }
        if (data_midline_) {  // tail of an over-long line: never the end marker
            data_midline_ = false;
            data_line(line);
            continue;
        }
        if (line == ".") {
            end_of_data();
            return true;
        }
        if (!line.empty() && line.front() == '.') line.remove_prefix(1);
        data_line(line);
    }
    return true;
}

// A bare CR or LF inside DATA: the client's idea of where the message ends differs from
// ours, which is exactly what SMTP smuggling exploits. Nothing of this message is kept
// and nothing after it is read (as Postfix's smtpd_forbid_bare_newline does).
bool ServerSession::refuse_connection(std::string_view why) {
    reset_transaction();
    state_ = State::command;
    reply(521, "5.5.2", policy_.hostname + " Error: " + std::string(why));
    wait_ = Wait::close;
    return true;
}

void ServerSession::data_line(std::string_view line) {
    const auto& lim = policy_.limits;
    data_bytes_ += line.size() + 2;
    if (line.size() > lim.data_line && data_problem_.empty()) {
        data_problem_code_ = "552 5.3.4";
        data_problem_ = "Error: message line too long";
    }
    if (in_headers_) {
        if (line.empty()) {
            in_headers_ = false;
        } else {
            header_bytes_ += line.size() + 2;
            if (header_bytes_ > lim.header_block && data_problem_.empty()) {
                data_problem_code_ = "552 5.3.4";
                data_problem_ = "Error: message header too large";
            }
        }
    }
    if (data_bytes_ > lim.message_size && data_problem_.empty()) {
        data_problem_code_ = "552 5.3.4";
        data_problem_ = "Error: message size exceeds fixed limit";
    }
    if (!data_problem_.empty()) {
        // The message will be refused: stop storing, keep reading to the end of data.
        if (message_) {
            message_->abort();
            message_.reset();
        }
        pending_line_.clear();
        return;
    }
    pending_line_.append(line);
    pending_line_.append("\r\n");
    if (pending_line_.size() >= kWriteBatch) {
        try {
            message_->write(pending_line_);
        } catch (const Error&) {
            message_->abort();
            message_.reset();
            data_problem_code_ = "451 4.3.0";
            data_problem_ = "Error: queue file write error, try again later";
        }
        pending_line_.clear();
    }
}

void ServerSession::end_of_data() {
    state_ = State::command;
    auto refuse = [&](const std::string& code_and_enhanced, const std::string& text) {
        if (message_) {
            message_->abort();
            message_.reset();
        }
        pending_line_.clear();
        std::size_t n = policy_.lmtp ? envelope_.recipients.size() : 1;
        int code = std::stoi(code_and_enhanced.substr(0, 3));
        for (std::size_t i = 0; i < n; ++i) reply(code, code_and_enhanced.substr(4), text);
        reset_transaction();
    };
    if (!data_problem_.empty()) return refuse(data_problem_code_, data_problem_);
    try {
        if (!pending_line_.empty()) message_->write(pending_line_);
    } catch (const Error&) {
        return refuse("451 4.3.0", "Error: queue file write error, try again later");
    }
    pending_line_.clear();
    wait_ = Wait::commit;
}

void ServerSession::commit_finished(const queue::CommitResult& result) {
    wait_ = Wait::none;
    message_.reset();
    std::size_t n = policy_.lmtp ? envelope_.recipients.size() : 1;
    for (std::size_t i = 0; i < n; ++i) {
        if (result.ok)
            reply(250, "2.0.0", "Ok: queued as " + result.queue_id);
        else
            reply(451, "4.3.0", "Error: message not stored, try again later");
    }
    if (result.ok) ++accepted_;
    reset_transaction();
}

void ServerSession::reset_transaction() {
    if (message_) {
        message_->abort();
        message_.reset();
    }
    has_mail_ = false;
    envelope_ = Envelope{};
    pending_line_.clear();
    data_problem_.clear();
}

}  // namespace pecd::smtp
