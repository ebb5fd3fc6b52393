// client.cpp - the SMTP and LMTP client state machine (see client.hpp for the contract)
#include "smtp/client.hpp"

#include <charconv>

#include "core/strings.hpp"

namespace pecd::smtp {
namespace {

constexpr std::size_t max_line = 4096;  // RFC 5321 4.5.3.1.5 says 512; be lenient
constexpr std::size_t max_reply_lines = 500;

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

void reject_line_breaks(std::string_view what, std::string_view v) {
    for (char c : v)
        if (c == '\r' || c == '\n' || c == '\0') throw Error(std::string(what) + " contains a line break");
}

}  // namespace

Extensions parse_extensions(const Reply& r) {
    Extensions e;
    for (std::size_t i = 1; i < r.lines.size(); ++i) {
        auto words = split(trim(r.lines[i]), ' ');
        if (words.empty()) continue;
        auto kw = to_upper(words[0]);
        if (kw == "PIPELINING")
            e.pipelining = true;
        else if (kw == "STARTTLS")
            e.starttls = true;
        else if (kw == "8BITMIME")
            e.eight_bit_mime = true;
        else if (kw == "SMTPUTF8")
            e.smtputf8 = true;
        else if (kw == "DSN")
            e.dsn = true;
        else if (kw == "SIZE") {
            e.has_size = true;
            if (words.size() > 1) {
                std::uint64_t v = 0;
                auto w = words[1];
                auto [p, ec] = std::from_chars(w.data(), w.data() + w.size(), v);
                if (ec == std::errc() && p == w.data() + w.size()) e.max_size = v;
            }
        }
    }
    return e;
}

// --- Reply ---

std::string Reply::summary() const {
    std::string s = std::to_string(code);
    for (const auto& l : lines) {
        s += ' ';
        s += l;
    }
    return s;
}

std::string Reply::status() const {
    if (!lines.empty()) {
        auto first = std::string_view(lines.front());
        auto word = first.substr(0, first.find(' '));
        // class.subject.detail, class matching the reply's first digit (RFC 3463)
        auto parts = split(word, '.');
        bool ok = parts.size() == 3 && !word.empty() && word[0] == char('0' + code / 100);
        for (auto p : parts) {
            ok = ok && !p.empty() && p.size() <= 3;
            for (char c : p) ok = ok && is_digit(c);
        }
        if (ok) return std::string(word);
    }
    return std::to_string(code / 100) + ".0.0";
}

Reply make_reply(int code, std::string text) {
    return Reply{code, {std::move(text)}};
}

// --- ReplyParser ---

void ReplyParser::feed(std::string_view bytes) {
    buffer_.append(bytes);
    if (buffer_.find('\n') == std::string::npos && buffer_.size() > max_line)
        throw ProtocolError("reply line longer than " + std::to_string(max_line) + " bytes");
}

std::optional<Reply> ReplyParser::next() {
    for (;;) {
        auto nl = buffer_.find('\n');
        if (nl == std::string::npos) return std::nullopt;
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.size() > max_line) throw ProtocolError("reply line too long");
        if (line.size() < 3 || !is_digit(line[0]) || !is_digit(line[1]) || !is_digit(line[2]) ||
            (line.size() > 3 && line[3] != ' ' && line[3] != '-'))
            throw ProtocolError("malformed reply line \"" + line.substr(0, 80) + "\"");
        int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
        if (code < 200 || code > 599)
            throw ProtocolError("reply code out of range in \"" + line.substr(0, 80) + "\"");
        if (!current_.lines.empty() && code != current_.code)
            throw ProtocolError("reply code changes inside a multi-line reply");
        current_.code = code;
        current_.lines.push_back(line.size() > 4 ? line.substr(4) : std::string());
        if (current_.lines.size() > max_reply_lines) throw ProtocolError("reply has too many lines");
        bool last = line.size() == 3 || line[3] == ' ';
        if (last) {
            Reply r = std::move(current_);
            current_ = Reply{};
            return r;
        }
    }
}

// --- DotStuffer ---

std::string DotStuffer::encode(std::string_view chunk) {
    std::string out;
    if (chunk.empty()) return out;
    out.reserve(chunk.size() + chunk.size() / 64 + 2);
    // Line by line (memchr for the line ends) rather than byte by byte: every message
    // leaving the server passes through here.
    std::size_t pos = 0;
    while (pos < chunk.size()) {
        if (line_start_ && chunk[pos] == '.') out += '.';
        const auto nl = chunk.find('\n', pos);
        const auto end = nl == std::string_view::npos ? chunk.size() : nl + 1;
        out.append(chunk.substr(pos, end - pos));
        line_start_ = nl != std::string_view::npos;
        pos = end;
    }
    prev_ = chunk.size() >= 2 ? chunk[chunk.size() - 2] : last_;
    last_ = chunk.back();
    return out;
}

std::string DotStuffer::finish() {
    // An empty body, or one ending in CRLF, needs only the terminating dot line.
    bool ends_line = last_ == 0 || (prev_ == '\r' && last_ == '\n');
    return ends_line ? ".\r\n" : "\r\n.\r\n";
}

// --- ClientSession ---

ClientSession::ClientSession(ClientParams params) : params_(std::move(params)) {
    reject_line_breaks("sender", params_.mail_from);
    reject_line_breaks("HELO name", params_.helo_name);
    reject_line_breaks("ENVID", params_.dsn_envid);
    reject_line_breaks("RET", params_.dsn_ret);
    for (const auto& r : params_.recipients) {
        reject_line_breaks("recipient", r.address);
        reject_line_breaks("NOTIFY", r.notify);
        reject_line_breaks("ORCPT", r.orcpt);
    }
    results_.resize(params_.recipients.size());
}

// A recipient's verdict is 2xx, 4xx or 5xx. Any other reply where a verdict is due (a 1xx
// or 3xx from a confused or hostile server) defers the recipient, never settles it.
namespace {
Reply verdict_of(const Reply& reply) {
    if (reply.positive() || reply.transient() || reply.permanent()) return reply;
    return make_reply(451, "4.5.0 unexpected reply " + reply.summary());
}
}  // namespace

void ClientSession::set_all_open(const Reply& reply) {
    for (auto& r : results_)
        if (!r) r = verdict_of(reply);
}

void ClientSession::fail_unresolved(const std::string& reason) {
    set_all_open(make_reply(451, "4.4.2 " + reason));
    state_ = State::done;
}

ClientSession::Action ClientSession::quit() {
    state_ = State::done;
    return {Step::done, "QUIT\r\n"};
}

ClientSession::Action ClientSession::end_transaction(const Reply& last) {
    // 421 announces the server closing the channel (RFC 5321 3.8): nothing to keep.
    if (!params_.keep_open || params_.lmtp || last.code == 421) return quit();
    reusable_ = true;
    state_ = State::done;
    return {Step::done, {}};
}

ClientSession::Action ClientSession::resume(const Extensions& ext, bool tls_active) {
    ext_ = ext;
    params_.tls_active = tls_active;
    return start_transaction();
}

ClientSession::Action ClientSession::give_up(const Reply& reply) {
    set_all_open(reply);
    return quit();
}

ClientSession::Action ClientSession::hello() {
    state_ = State::ehlo;
    return {Step::send, std::string(params_.lmtp ? "LHLO " : "EHLO ") + params_.helo_name + "\r\n"};
}

ClientSession::Action ClientSession::after_hello() {
    if (!params_.tls_active) {
        if (params_.tls == TlsWanted::required && !ext_.starttls) {
            tls_refused_ = true;
            return give_up(make_reply(454, "4.7.0 TLS required but the peer does not offer STARTTLS"));
        }
        if (params_.tls != TlsWanted::never && ext_.starttls) {
            state_ = State::starttls;
            return {Step::send, "STARTTLS\r\n"};
        }
    }
    return start_transaction();
}

ClientSession::Action ClientSession::tls_started() {
    params_.tls_active = true;
    ext_ = {};
    return hello();
}

std::string ClientSession::mail_command() const {
    std::string c = "MAIL FROM:<" + params_.mail_from + ">";
    if (ext_.has_size) c += " SIZE=" + std::to_string(params_.size);
    if (params_.eight_bit && ext_.eight_bit_mime) c += " BODY=8BITMIME";
    if (params_.smtputf8 && ext_.smtputf8) c += " SMTPUTF8";
    if (ext_.dsn && !params_.dsn_ret.empty()) c += " RET=" + params_.dsn_ret;
    if (ext_.dsn && !params_.dsn_envid.empty()) c += " ENVID=" + params_.dsn_envid;
    return c + "\r\n";
}

std::string ClientSession::rcpt_command(const ClientRecipient& r) const {
    std::string c = "RCPT TO:<" + r.address + ">";
    if (ext_.dsn && !r.notify.empty()) c += " NOTIFY=" + r.notify;
    if (ext_.dsn && !r.orcpt.empty()) c += " ORCPT=" + r.orcpt;
    return c + "\r\n";
}

ClientSession::Action ClientSession::start_transaction() {
    if (params_.recipients.empty()) return quit();
    if (ext_.has_size && ext_.max_size && params_.size > ext_.max_size)
        return give_up(make_reply(552, "5.3.4 message size " + std::to_string(params_.size) +
                                           " exceeds the peer's limit of " + std::to_string(ext_.max_size)));
    if (params_.smtputf8 && !ext_.smtputf8)
        return give_up(make_reply(553, "5.6.7 the peer does not support SMTPUTF8"));
    state_ = State::mail;
    rcpt_index_ = 0;
    accepted_.clear();
    if (ext_.pipelining) {
        pipelined_ = true;
        std::string batch = mail_command();
        for (const auto& r : params_.recipients) batch += rcpt_command(r);
        batch += "DATA\r\n";
        return {Step::send, std::move(batch)};
    }
    return {Step::send, mail_command()};
}

ClientSession::Action ClientSession::send_next_rcpt_or_data() {
    if (rcpt_index_ < params_.recipients.size()) {
        if (pipelined_) return {Step::send, {}};
        return {Step::send, rcpt_command(params_.recipients[rcpt_index_])};
    }
    state_ = State::data;
    if (pipelined_) return {Step::send, {}};
    if (accepted_.empty()) return quit();
    return {Step::send, "DATA\r\n"};
}

ClientSession::Action ClientSession::on_reply(const Reply& reply) {
    switch (state_) {
        case State::greeting:
            if (!reply.lines.empty()) greeting_host_ = std::string(split(reply.lines.front(), ' ').front());
            if (!reply.positive()) return give_up(reply);
            return hello();
        case State::ehlo:
            if (reply.positive()) {
                ext_ = parse_extensions(reply);
                return after_hello();
            }
            if (!params_.lmtp && reply.permanent()) {
                state_ = State::helo;
                return {Step::send, "HELO " + params_.helo_name + "\r\n"};
            }
            return give_up(reply);
        case State::helo:
            if (!reply.positive()) return give_up(reply);
            ext_ = {};
            return after_hello();
        case State::starttls:
            if (reply.code == 220) return {Step::start_tls, {}};
            if (params_.tls == TlsWanted::required) {
                tls_refused_ = true;
                return give_up(
                    make_reply(454, "4.7.0 TLS required but STARTTLS was refused: " + reply.summary()));
            }
            return start_transaction();
        case State::mail:
            mail_ok_ = reply.positive();
            if (!mail_ok_) {
                set_all_open(reply);
                if (!pipelined_) return quit();
            }
            state_ = State::rcpt;
            if (pipelined_) return {Step::send, {}};
            return {Step::send, rcpt_command(params_.recipients[rcpt_index_])};
        case State::rcpt: {
            auto idx = rcpt_index_++;
            if (mail_ok_) {
                if (reply.positive())
                    accepted_.push_back(idx);
                else
                    results_[idx] = verdict_of(reply);
            }
            return send_next_rcpt_or_data();
        }
        case State::data:
            if (reply.code == 354) {
                state_ = State::data_end;
                if (accepted_.empty()) return {Step::send, ".\r\n"};  // a server that ignored RFC 2920 3.1
                return {Step::send_body, {}};
            }
            // DATA answered with a 2xx instead of 354: the body never went, so no recipient
            // can count as delivered.
            for (auto i : accepted_)
                if (!results_[i])
                    results_[i] = reply.positive() ? make_reply(451, "4.5.0 DATA answered with " +
                                                                         reply.summary() + " instead of 354")
                                                   : verdict_of(reply);
            // A refused DATA leaves the accepted MAIL in force (RFC 5321 3.3): a next MAIL
            // on this session would be nested.
            return mail_ok_ ? quit() : end_transaction(reply);
        case State::data_end:
            if (accepted_.empty()) return end_transaction(reply);
            if (params_.lmtp) {
                results_[accepted_[lmtp_index_++]] = verdict_of(reply);
                if (lmtp_index_ < accepted_.size()) return {Step::send, {}};
                return quit();
            }
            for (auto i : accepted_) results_[i] = verdict_of(reply);
            return end_transaction(reply);
        case State::done:
            return {Step::done, {}};
    }
    return quit();
}

}  // namespace pecd::smtp
