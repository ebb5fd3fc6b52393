// formal_checks.cpp - access-point formal checks (see formal_checks.hpp for the contract)
#include "pec/formal_checks.hpp"

#include <gmime/gmime.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <optional>
#include <set>

#include "core/error.hpp"
#include "core/strings.hpp"

namespace pecd::pec {
namespace {

void gmime_init_once() {
    static std::once_flag once;
    std::call_once(once, [] { g_mime_init(); });
}

std::string take_gchar(char* s) {
    if (!s) return {};
    std::string out(s);
    g_free(s);
    return out;
}

// ---------- strict RFC 5322 address lists ----------

enum class Tok { atom, dot, qstring, dliteral, special, end };

struct Token {
    Tok kind = Tok::end;
    std::string text;  // atom / qstring (with quotes) / dliteral (with brackets) / special char
};

bool is_atext(unsigned char c) {
    if (c >= 0x80) return true;  // UTF-8 (RFC 6532); validity is checked on the whole header
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return std::string_view("!#$%&'*+-/=?^_`{|}~").find(static_cast<char>(c)) != std::string_view::npos;
}

class Lexer {
public:
    explicit Lexer(std::string_view s) : s_(s) {}

    bool next(Token& t, std::string* error) {
        if (!skip_cfws(error)) return false;
        t = Token{};
        if (i_ >= s_.size()) return true;
        unsigned char c = static_cast<unsigned char>(s_[i_]);
        if (is_atext(c)) {
            std::size_t b = i_;
            while (i_ < s_.size() && is_atext(static_cast<unsigned char>(s_[i_]))) ++i_;
            t.kind = Tok::atom;
            t.text = std::string(s_.substr(b, i_ - b));
            return true;
        }
        if (c == '.') {
            ++i_;
            t.kind = Tok::dot;
            t.text = ".";
            return true;
        }
        if (c == '"') return quoted(t, error);
        if (c == '[') return literal(t, error);
        if (std::string_view("<>@,:;").find(static_cast<char>(c)) != std::string_view::npos) {
            ++i_;
            t.kind = Tok::special;
            t.text = std::string(1, static_cast<char>(c));
            return true;
        }
        *error = "unexpected character '" + printable(c) + "' at position " + std::to_string(i_ + 1);
        return false;
    }

private:
    static std::string printable(unsigned char c) {
        if (c < 0x20 || c == 0x7f) return "\\x" + to_hex(std::string(1, static_cast<char>(c)));
        return std::string(1, static_cast<char>(c));
    }
    bool skip_cfws(std::string* error) {
        while (i_ < s_.size()) {
            char c = s_[i_];
            if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
                ++i_;
            } else if (c == '(') {
                if (!comment(error)) return false;
            } else {
                break;
            }
        }
        return true;
    }
    bool comment(std::string* error) {
        std::size_t start = i_;
        int depth = 0;
        while (i_ < s_.size()) {
            char c = s_[i_++];
            if (c == '\\') {
                if (i_ >= s_.size()) break;
                ++i_;
            } else if (c == '(') {
                ++depth;
            } else if (c == ')') {
                if (--depth == 0) return true;
            }
        }
        *error = "unterminated comment starting at position " + std::to_string(start + 1);
        return false;
    }
    bool quoted(Token& t, std::string* error) {
        std::size_t start = i_++;
        while (i_ < s_.size()) {
            char c = s_[i_++];
            if (c == '\\') {
                if (i_ >= s_.size()) break;
                ++i_;
            } else if (c == '"') {
                t.kind = Tok::qstring;
                t.text = std::string(s_.substr(start, i_ - start));
                return true;
            }
        }
        *error = "unterminated quoted string starting at position " + std::to_string(start + 1);
        return false;
    }
    bool literal(Token& t, std::string* error) {
        std::size_t start = i_++;
        while (i_ < s_.size()) {
            char c = s_[i_++];
            if (c == '[' || c == '\\') break;
            if (c == ']') {
                t.kind = Tok::dliteral;
                t.text = std::string(s_.substr(start, i_ - start));
                return true;
            }
        }
        *error = "malformed domain literal at position " + std::to_string(start + 1);
        return false;
    }

    std::string_view s_;
    std::size_t i_ = 0;
};

bool valid_domain_label(std::string_view l) {
    if (l.empty() || l.size() > 63 || l.front() == '-' || l.back() == '-') return false;
    for (unsigned char c : l)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
              c >= 0x80))
            return false;
    return true;
}

class AddressParser {
public:
    AddressParser(std::string_view value, std::string* error) : lex_(value), error_(error) {}

    bool parse(std::vector<MailboxAddress>& out, bool allow_groups, int* groups) {
        if (!advance()) return false;
        for (int guard = 0; guard < 100000; ++guard) {
            if (cur_.kind == Tok::end) return true;
            if (is(",")) {  // obs-addr-list: empty elements are allowed
                if (!advance()) return false;
                continue;
            }
            if (!address(out, allow_groups, groups)) return false;
            if (cur_.kind == Tok::end) return true;
            if (!is(",")) return fail("expected ',' between addresses, found '" + cur_.text + "'");
            if (!advance()) return false;
        }
        return fail("too many addresses");
    }

private:
    bool advance() { return lex_.next(cur_, error_); }
    bool is(const char* special) const { return cur_.kind == Tok::special && cur_.text == special; }
    bool fail(std::string why) {
        *error_ = std::move(why);
        return false;
    }

    // Collects words and dots up to a special; the raw text keeps single spaces.
    bool words(std::vector<Token>& out) {
        while (cur_.kind == Tok::atom || cur_.kind == Tok::qstring || cur_.kind == Tok::dot) {
            out.push_back(cur_);
            if (!advance()) return false;
        }
        return true;
    }

    bool local_part(const std::vector<Token>& w, std::string& local) {
        if (w.empty()) return fail("missing local part before '@'");
        if (w.size() == 1 && w[0].kind == Tok::qstring) {
            local = w[0].text;
        } else {
            bool expect_word = true;
            for (const auto& t : w) {
                if (expect_word && t.kind != Tok::atom) return fail("malformed local part");
                if (!expect_word && t.kind != Tok::dot) return fail("malformed local part (missing '.')");
                local += t.text;
                expect_word = !expect_word;
            }
            if (expect_word) return fail("local part ends with '.'");
        }
        if (local.size() > 64) return fail("local part longer than 64 octets");
        return true;
    }

    bool domain(std::string& dom) {
        if (cur_.kind == Tok::dliteral) {
            dom = cur_.text;
            return advance();
        }
        bool expect_label = true;
        while (cur_.kind == Tok::atom || cur_.kind == Tok::dot) {
            if (expect_label != (cur_.kind == Tok::atom)) return fail("malformed domain");
            if (cur_.kind == Tok::atom && !valid_domain_label(cur_.text))
                return fail("invalid domain label '" + cur_.text + "'");
            dom += cur_.text;
            expect_label = !expect_label;
            if (!advance()) return false;
        }
        if (dom.empty()) return fail("missing domain after '@'");
        if (expect_label) return fail("domain ends with '.'");
        if (dom.size() > 255) return fail("domain longer than 255 octets");
        return true;
    }

    // A quoted string's content without the quotes and quoted-pair backslashes.
    static std::string unquote(std::string_view q) {
        std::string out;
        for (std::size_t i = 1; i + 1 < q.size(); ++i) {
            if (q[i] == '\\' && i + 2 < q.size()) ++i;
            out += q[i];
        }
        return out;
    }

    std::string phrase_text(const std::vector<Token>& w) {
        std::string s;
        for (const auto& t : w) {
            if (!s.empty() && t.kind != Tok::dot && s.back() != '.') s += ' ';
            s += t.kind == Tok::qstring ? unquote(t.text) : t.text;
        }
        return s;
    }

    bool addr_spec_after(std::vector<Token>& w, MailboxAddress& m) {
        std::string local, dom;
        if (!local_part(w, local)) return false;
        if (!is("@")) return fail("expected '@' in address");
        if (!advance() || !domain(dom)) return false;
        m.address = local + "@" + dom;
        return true;
    }

    bool mailbox_or_group(std::vector<MailboxAddress>& out, bool allow_groups, int* groups, bool in_group) {
        std::vector<Token> w;
        if (!words(w)) return false;
        MailboxAddress m;
        if (is("@")) {
            if (!addr_spec_after(w, m)) return false;
            out.push_back(std::move(m));
            return true;
        }
        if (is("<")) {
            if (!w.empty() && w.front().kind == Tok::dot) return fail("display name starts with '.'");
            m.name = phrase_text(w);
            if (!advance()) return false;
            std::vector<Token> lw;
            if (!words(lw)) return false;
            if (!addr_spec_after(lw, m)) return false;
            if (!is(">")) return fail("expected '>' after address <" + m.address);
            if (!advance()) return false;
            out.push_back(std::move(m));
            return true;
        }
        if (is(":")) {
            if (in_group) return fail("nested group");
            if (!allow_groups) return fail("a group is not allowed here");
            if (w.empty()) return fail("group without a name");
            if (groups) ++*groups;
            if (!advance()) return false;
            for (int guard = 0; guard < 100000; ++guard) {
                if (is(";")) return advance();
                if (cur_.kind == Tok::end) return fail("group not terminated by ';'");
                if (is(",")) {
                    if (!advance()) return false;
                    continue;
                }
                if (!mailbox_or_group(out, allow_groups, groups, true)) return false;
                if (!is(",") && !is(";"))
                    return fail("expected ',' or ';' in group, found '" + cur_.text + "'");
            }
            return fail("group too long");
        }
        if (w.empty())
            return fail(cur_.kind == Tok::end ? "missing address" : "unexpected '" + cur_.text + "'");
        return fail("'" + phrase_text(w) + "' is not an address (missing '@')");
    }

    bool address(std::vector<MailboxAddress>& out, bool allow_groups, int* groups) {
        return mailbox_or_group(out, allow_groups, groups, false);
    }

    Lexer lex_;
    std::string* error_;
    Token cur_;
};

// ---------- header section ----------

struct Header {
    std::string name;
    std::string value;  // unfolded (line breaks removed), not trimmed
    std::size_t line = 0;
};

bool valid_utf8(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        std::size_t n;
        if (c < 0x80)
            n = 0;
        else if (c >= 0xc2 && c <= 0xdf)
            n = 1;
        else if (c >= 0xe0 && c <= 0xef)
            n = 2;
        else if (c >= 0xf0 && c <= 0xf4)
            n = 3;
        else
            return false;
        if (i + n >= s.size() && n > 0) return false;
        for (std::size_t k = 1; k <= n; ++k)
            if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
        i += n + 1;
    }
    return true;
}

// Body lines: at most 998 octets and no NUL (RFC 5322 2.1.1, 2.3). `first_line` is the
// number of the blank line that ends the header section.
std::string check_body(std::string_view msg, std::size_t pos, std::size_t first_line) {
    std::size_t line_no = first_line;
    while (pos < msg.size()) {
        ++line_no;
        std::size_t eol = msg.find('\n', pos);
        std::size_t end = eol == std::string_view::npos ? msg.size() : eol;
        std::size_t len = end - pos;
        if (len > 0 && msg[end - 1] == '\r') --len;
        if (len > 998) return "line " + std::to_string(line_no) + ": body line longer than 998 octets";
        if (msg.substr(pos, len).find('\0') != std::string_view::npos)
            return "line " + std::to_string(line_no) + ": NUL in the body";
        pos = end == msg.size() ? end : end + 1;
    }
    return "";
}

// Splits the header section into fields and checks the body's lines; returns an error
// text or "".
std::string read_headers(std::string_view msg, std::vector<Header>& out) {
    if (msg.empty()) return "empty message";
    std::size_t pos = 0, line_no = 0;
    while (pos < msg.size()) {
        std::size_t eol = msg.find('\n', pos);
        std::size_t next = eol == std::string_view::npos ? msg.size() : eol + 1;
        std::string_view line = msg.substr(pos, (eol == std::string_view::npos ? msg.size() : eol) - pos);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        ++line_no;
        std::string at = "line " + std::to_string(line_no) + ": ";
        if (line.empty())
            return out.empty() ? "no header fields before the body" : check_body(msg, next, line_no);
        if (line.size() > 998) return at + "header line longer than 998 octets (RFC 5322 2.1.1)";
        for (char c : line)
            if (c == '\0' || c == '\r') return at + "NUL or bare CR in the header";
        if (line.front() == ' ' || line.front() == '\t') {
            if (out.empty()) return at + "continuation line before the first header field";
            out.back().value += line;
        } else {
            auto colon = line.find(':');
            if (colon == std::string_view::npos || colon == 0)
                return at + "not a header field (\"name: value\")";
            for (std::size_t k = 0; k < colon; ++k) {
                unsigned char c = static_cast<unsigned char>(line[k]);
                if (c < 33 || c > 126) return at + "invalid character in the header field name";
            }
            out.push_back({std::string(line.substr(0, colon)), std::string(line.substr(colon + 1)), line_no});
        }
        pos = next;
    }
    return "";
}

struct Failure {
    FormalCode code;
    std::string reason;
    std::string field;
};

std::string it_en(std::string_view italian, std::string_view english) {
    return std::string(italian) + " (" + std::string(english) + ")";
}

std::string lower_addr(std::string_view a) {
    return to_lower(trim(a));
}

class Checker {
public:
    Checker(const Envelope& env, std::string_view auth_user, std::string_view msg, const FormalLimits& limits)
        : env_(env), auth_(auth_user), msg_(msg), limits_(limits) {}

    FormalResult run() {
        gmime_init_once();
        FormalResult r;
        r.info.size = msg_.size();
        if (auto f = check(r.info)) {
            r.code = f->code;
            r.reason = std::move(f->reason);
            r.field = std::move(f->field);
        }
        return r;
    }

private:
    std::optional<Failure> syntax(std::string detail, std::string field = {}) {
        return Failure{FormalCode::syntax,
                       it_en("Messaggio non conforme alla sintassi RFC 5322: " + detail,
                             "message is not valid RFC 5322: " + detail),
                       std::move(field)};
    }

    std::optional<Failure> check(SubmissionInfo& info) {
        std::vector<Header> headers;
        if (auto err = read_headers(msg_, headers); !err.empty()) return syntax(err);
        std::map<std::string, std::vector<const Header*>> by_name;
        for (const auto& h : headers) {
            if (!valid_utf8(h.value))
                return syntax("line " + std::to_string(h.line) + ": 8-bit header text that is not UTF-8",
                              h.name);
            by_name[to_lower(h.name)].push_back(&h);
        }
        auto all = [&](const char* n) -> const std::vector<const Header*>& {
            static const std::vector<const Header*> none;
            auto it = by_name.find(n);
            return it == by_name.end() ? none : it->second;
        };
        for (const char* once : {"date", "from", "sender", "reply-to", "to", "cc", "bcc", "message-id",
                                 "subject", "x-tiporicevuta"})
            if (all(once).size() > 1)
                return syntax("header field " + all(once)[1]->name + " appears more than once (line " +
                                  std::to_string(all(once)[1]->line) + ")",
                              all(once)[1]->name);
        // GMime must be able to build the message too (a second, independent reading).
        if (!gmime_parses()) return syntax("the MIME structure cannot be parsed");
        if (all("date").empty()) return syntax("the Date field is missing", "Date");
        if (GDateTime* d = g_mime_utils_header_decode_date(std::string(trim(all("date")[0]->value)).c_str()))
            g_date_time_unref(d);
        else
            return syntax("the Date field is not a valid date", "Date");

        if (!all("message-id").empty()) {
            auto id = std::string(trim(all("message-id")[0]->value));
            // RFC 5322 3.6.4: printable ASCII only. The id is repeated in our headers and in
            // daticert.xml, where a control or 8-bit byte could not be written alike.
            bool printable =
                std::all_of(id.begin(), id.end(), [](unsigned char c) { return c > 0x20 && c < 0x7f; });
            if (id.size() < 5 || id.front() != '<' || id.back() != '>' || id.find('@') == std::string::npos ||
                id.find_first_of("<>", 1) != id.size() - 1 || !printable)
                return syntax("the Message-ID field is not \"<id@domain>\"", "Message-ID");
            info.client_msgid = id;
        }
        if (!all("subject").empty()) info.subject = decode_text(all("subject")[0]->value);
        if (auto f = receipt_type(all("x-tiporicevuta"), info)) return f;
        for (const char* other : {"sender", "reply-to", "cc"}) {
            if (all(other).empty()) continue;
            std::vector<MailboxAddress> list;
            std::string err;
            if (!parse_address_list(all(other)[0]->value, list, &err, std::string(other) != "sender"))
                return syntax("field " + all(other)[0]->name + ": " + err, all(other)[0]->name);
            decode_names(list);
            if (std::string(other) == "cc") info.cc = std::move(list);
            if (std::string(other) == "reply-to") {
                info.reply_to = std::move(list);
                info.has_reply_to = true;
            }
        }

        // From
        if (all("from").empty())
            return Failure{FormalCode::from_missing,
                           it_en("Campo From assente", "the From header field is missing"), "From"};
        {
            std::vector<MailboxAddress> from;
            std::string err;
            int groups = 0;
            if (!parse_address_list(all("from")[0]->value, from, &err, true, &groups))
                return Failure{FormalCode::from_invalid,
                               it_en("Campo From non valido: " + err, "the From field is not valid: " + err),
                               "From"};
            if (from.size() != 1 || groups != 0)
                return Failure{
                    FormalCode::from_invalid,
                    it_en("Il campo From deve contenere un solo indirizzo (trovati " +
                              std::to_string(from.size()) + ")",
                          "From must hold exactly one address, found " + std::to_string(from.size())),
                    "From"};
            decode_names(from);
            info.from = from[0];
        }
        // To
        if (all("to").empty())
            return Failure{FormalCode::to_missing,
                           it_en("Campo To assente", "the To header field is missing"), "To"};
        {
            std::string err;
            if (!parse_address_list(all("to")[0]->value, info.to, &err))
                return Failure{FormalCode::to_invalid,
                               it_en("Campo To non valido: " + err, "the To field is not valid: " + err),
                               "To"};
            if (info.to.empty())
                return Failure{FormalCode::to_missing,
                               it_en("Il campo To non contiene alcun destinatario",
                                     "the To field holds no recipient address"),
                               "To"};
            decode_names(info.to);
        }
        // Bcc
        if (!all("bcc").empty()) {
            std::vector<MailboxAddress> bcc;
            std::string err;
            bool parsed = parse_address_list(all("bcc")[0]->value, bcc, &err);
            if (!parsed || !bcc.empty())
                return Failure{FormalCode::bcc_present,
                               it_en("Il campo Bcc deve essere assente o vuoto",
                                     "the Bcc field must be absent or empty"),
                               "Bcc"};
        }
        // Envelope against headers.
        if (trim(auth_).empty())
            return Failure{FormalCode::not_authenticated,
                           it_en("Utente non autenticato", "the sender did not authenticate"), "AUTH"};
        auto from_addr = lower_addr(info.from.address);
        if (lower_addr(env_.mail_from) != from_addr)
            return Failure{FormalCode::sender_mismatch,
                           it_en("Il mittente della busta SMTP (MAIL FROM " + env_.mail_from +
                                     ") non corrisponde al campo From (" + info.from.address + ")",
                                 "MAIL FROM differs from the From address"),
                           "MAIL FROM"};
        if (lower_addr(auth_) != from_addr)
            return Failure{
                FormalCode::auth_mismatch,
                it_en("L'utente autenticato non corrisponde al campo From (" + info.from.address + ")",
                      "the authenticated user differs from the From address"),
                "From"};
        std::set<std::string> rcpt, headers_set;
        for (const auto& r : env_.recipients) rcpt.insert(lower_addr(r.address));
        for (const auto& a : info.to) headers_set.insert(lower_addr(a.address));
        for (const auto& a : info.cc) headers_set.insert(lower_addr(a.address));
        for (const auto& r : rcpt)
            if (!headers_set.count(r))
                return Failure{
                    FormalCode::recipients_extra,
                    it_en("Il destinatario " + r + " della busta SMTP non compare nei campi To o Cc",
                          "RCPT TO " + r + " is not in To or Cc (hidden recipient)"),
                    "RCPT TO"};
        for (const auto& h : headers_set)
            if (!rcpt.count(h))
                return Failure{FormalCode::recipients_missing,
                               it_en("Il destinatario " + h + " dei campi To/Cc non compare nella busta SMTP",
                                     h + " is in To/Cc but not among the RCPT TO recipients"),
                               "RCPT TO"};
        if (rcpt.size() > limits_.max_recipients)
            return Failure{FormalCode::too_many_recipients,
                           it_en("Numero di destinatari (" + std::to_string(rcpt.size()) +
                                     ") superiore al limite di " + std::to_string(limits_.max_recipients),
                                 "too many recipients"),
                           "RCPT TO"};
        // Overflow-free and exact: size x n > max  <=>  size > floor(max / n).
        std::uint64_t n = rcpt.size();
        if (n > 0 && msg_.size() > limits_.max_volume / n)
            return Failure{
                FormalCode::too_large,
                it_en("Dimensione del messaggio per numero di destinatari (" + std::to_string(msg_.size()) +
                          " x " + std::to_string(n) + " byte) superiore al limite di " +
                          std::to_string(limits_.max_volume) + " byte",
                      "message size times recipients exceeds the provider limit"),
                "SIZE"};
        return std::nullopt;
    }

    std::optional<Failure> receipt_type(const std::vector<const Header*>& hs, SubmissionInfo& info) {
        if (hs.empty()) return std::nullopt;
        info.receipt_type_given = true;
        auto parsed = parse_receipt_type(to_lower(trim(hs[0]->value)));
        info.receipt_type_valid = parsed.has_value();
        info.receipt_type = parsed.value_or(ReceiptType::completa);
        return std::nullopt;
    }

    bool gmime_parses() const {
        GMimeStream* stream = g_mime_stream_mem_new_with_buffer(msg_.data(), msg_.size());
        GMimeParser* parser = g_mime_parser_new_with_stream(stream);
        g_object_unref(stream);
        GMimeMessage* m = g_mime_parser_construct_message(parser, nullptr);
        g_object_unref(parser);
        if (!m) return false;
        g_object_unref(m);
        return true;
    }

    static std::string decode_text(const std::string& raw) {
        auto s = std::string(trim(raw));
        return take_gchar(g_mime_utils_header_decode_text(nullptr, s.c_str()));
    }
    static void decode_names(std::vector<MailboxAddress>& list) {
        for (auto& m : list) {
            if (m.name.empty()) continue;
            auto decoded = take_gchar(g_mime_utils_header_decode_phrase(nullptr, m.name.c_str()));
            m.name = decoded;
        }
    }

    const Envelope& env_;
    std::string_view auth_;
    std::string_view msg_;
    const FormalLimits& limits_;
};

}  // namespace

std::string_view to_string(FormalCode c) noexcept {
    switch (c) {
        case FormalCode::ok:
            return "ok";
        case FormalCode::syntax:
            return "syntax";
        case FormalCode::from_missing:
            return "from-missing";
        case FormalCode::from_invalid:
            return "from-invalid";
        case FormalCode::to_missing:
            return "to-missing";
        case FormalCode::to_invalid:
            return "to-invalid";
        case FormalCode::bcc_present:
            return "bcc-present";
        case FormalCode::not_authenticated:
            return "not-authenticated";
        case FormalCode::sender_mismatch:
            return "sender-mismatch";
        case FormalCode::auth_mismatch:
            return "auth-mismatch";
        case FormalCode::recipients_extra:
            return "recipients-extra";
        case FormalCode::recipients_missing:
            return "recipients-missing";
        case FormalCode::too_many_recipients:
            return "too-many-recipients";
        default:
            return "too-large";
    }
}

void FormalLimits::validate() const {
    if (max_recipients < kMinRecipients)
        throw Error("pec limits: max_recipients must be at least 50 (DM 2 Nov 2005 art. 12), got " +
                    std::to_string(max_recipients));
    if (max_volume < kMinVolume)
        throw Error("pec limits: max_volume must be at least 30 MB (DM 2 Nov 2005 art. 12), got " +
                    std::to_string(max_volume));
}

bool parse_address_list(std::string_view value, std::vector<MailboxAddress>& out, std::string* error,
                        bool allow_groups, int* groups) {
    std::string ignored;
    if (!error) error = &ignored;
    std::vector<MailboxAddress> parsed;
    AddressParser p(value, error);
    if (!p.parse(parsed, allow_groups, groups)) return false;
    out.insert(out.end(), parsed.begin(), parsed.end());
    return true;
}

FormalResult check_submission(const Envelope& envelope, std::string_view auth_user, std::string_view message,
                              const FormalLimits& limits) {
    return Checker(envelope, auth_user, message, limits).run();
}

}  // namespace pecd::pec
