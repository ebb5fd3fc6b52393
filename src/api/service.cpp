// service.cpp - routing, authentication, authorisation and the JSON of the mailbox API (see service.hpp)
#include "api/service.hpp"

#include <charconv>
#include <nlohmann/json.hpp>
#include <set>

#include "api/openapi_doc.hpp"
#include "core/calendar.hpp"
#include "core/strings.hpp"

namespace pecd::api {
namespace {

using json = nlohmann::json;
using store::MailboxInfo;
using store::MailboxState;

constexpr const char* kScopeRead = "mailbox:read";
constexpr const char* kScopeProvision = "mailbox:provision";

// Thrown inside handle() to answer at once; `outcome` goes into the audit record.
struct Reply {
    ApiResponse response;
    std::string outcome;
};

[[noreturn]] void refuse(int status, const std::string& title, const std::string& detail) {
    throw Reply{problem(status, title, detail), "refused: " + detail};
}

// RFC 3339: YYYY-MM-DDThh:mm:ss[.frac](Z|+hh:mm|-hh:mm). ParseError naming `field`.
// Read by position, digits only: sscanf's %d would also take a sign or a blank.
TimePoint parse_time(const std::string& s, const std::string& field) {
    const auto number = [&](std::size_t pos, std::size_t len) {
        int v = 0;
        for (std::size_t k = pos; k < pos + len; ++k) {
            if (k >= s.size() || !std::isdigit(static_cast<unsigned char>(s[k])))
                throw ParseError("expected an RFC 3339 time such as 2026-01-31T09:30:00Z", 0, field);
            v = v * 10 + (s[k] - '0');
        }
        return v;
    };
    if (s.size() < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' ||
        s[16] != ':')
        throw ParseError("expected an RFC 3339 time such as 2026-01-31T09:30:00Z", 0, field);
    const int Y = number(0, 4), M = number(5, 2), D = number(8, 2), h = number(11, 2), m = number(14, 2),
              sec = number(17, 2);
    std::size_t i = 19;
    if (s[i] == '.') {
        ++i;
        const auto digits = i;
        while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
        if (i == digits) throw ParseError("expected digits after the decimal point", 0, field);
    }
    int offset = 0;
    const std::string zone = s.substr(i);
    if (zone == "Z" || zone == "z") {
    } else if (zone.size() == 6 && (zone[0] == '+' || zone[0] == '-') && zone[3] == ':') {
        const int oh = number(i + 1, 2), om = number(i + 4, 2);
        if (oh > 23 || om > 59) throw ParseError("time zone offset out of range", 0, field);
        offset = (zone[0] == '-' ? -1 : 1) * (oh * 60 + om);
    } else {
        throw ParseError("expected a time zone (Z or +hh:mm)", 0, field);
    }
    std::chrono::year_month_day ymd{std::chrono::year(Y), std::chrono::month(static_cast<unsigned>(M)),
                                    std::chrono::day(static_cast<unsigned>(D))};
    if (!ymd.ok() || h > 23 || m > 59 || sec > 60) throw ParseError("not a valid date and time", 0, field);
    // A search bound: 9999-12-31 means "no bound", not a wrapped-around day in 1816.
    return clamp_to_time_point(std::chrono::sys_days(ymd) + std::chrono::hours(h) + std::chrono::minutes(m) +
                               std::chrono::seconds(sec) - std::chrono::minutes(offset));
}

std::string percent_decode(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out.push_back(s[i]);
            continue;
        }
        int v = 0;
        auto r = i + 2 < s.size() ? std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16)
                                  : std::from_chars_result{s.data(), std::errc::invalid_argument};
        if (r.ec != std::errc() || r.ptr != s.data() + i + 3)
            throw ParseError("bad percent-encoding", 0, "target");
        out.push_back(static_cast<char>(v));
        i += 2;
    }
    return out;
}

std::int64_t parse_id(const std::string& s, const char* what) {
    std::int64_t v = 0;
    auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || r.ec != std::errc() || r.ptr != s.data() + s.size() || v < 0)
        refuse(404, "Not Found", std::string("no ") + what + " \"" + s.substr(0, 64) + "\"");
    return v;
}

std::size_t parse_count(const std::string& s, const std::string& name, std::size_t max) {
    std::size_t v = 0;
    auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || r.ec != std::errc() || r.ptr != s.data() + s.size() || v > max)
        throw ParseError("expected an integer from 0 to " + std::to_string(max), 0, name);
    return v;
}

json mailbox_json(const MailboxInfo& m, const store::MailboxLifecycle& lc) {
    json j = {{"address", m.address},
              {"kind", std::string(store::to_string(m.kind))},
              {"state", std::string(store::to_string(lc.effective_state(m)))},
              {"quota_bytes", m.quota_bytes},
              {"used_bytes", m.used_bytes},
              {"message_count", m.message_count},
              {"accepts_ordinary_mail", m.accepts_ordinary_mail},
              {"created_at", rfc3339_utc(m.created_at)},
              {"deactivated_at", nullptr},
              {"readable_until", nullptr}};
    if (m.deactivated_at) j["deactivated_at"] = rfc3339_utc(*m.deactivated_at);
    if (auto end = lc.closes_at(m)) j["readable_until"] = rfc3339_utc(*end);
    return j;
}

json message_json(const std::string& mailbox, const CatalogEntry& e, const std::string& source) {
    std::string base = "/v1/mailboxes/" + mailbox + "/messages/" + std::to_string(e.id);
    return {{"id", e.id},
            {"mailbox", mailbox},
            {"received_at", rfc3339_utc(e.received_at)},
            {"size", e.size},
            {"envelope_from", e.envelope_from},
            {"message_id", e.headers.message_id},
            {"subject", e.headers.subject},
            {"from", e.headers.from},
            {"date", e.headers.date},
            {"pec", {{"type", e.headers.pec_type}, {"status", e.status}, {"source", source}}},
            {"links",
             {{"self", base},
              {"raw", base + "/raw"},
              {"attachments", base + "/attachments"},
              {"verification", base + "/verification"}}}};
}

ApiResponse json_response(int status, const json& j) {
    ApiResponse r;
    r.status = status;
    // Strings come from stored mail; mime_view makes them UTF-8, and should one slip
    // through, it is replaced rather than failing the whole response.
    r.body = j.dump(-1, ' ', false, json::error_handler_t::replace);
    return r;
}

// A file name safe inside a quoted Content-Disposition parameter.
std::string safe_filename(const std::string& name, const std::string& fallback) {
    std::string out;
    for (char c : name)
        if (c > 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '/' && c != ';') out.push_back(c);
    return out.empty() ? fallback : out.substr(0, 200);
}

std::string safe_content_type(const std::string& t) {
    if (t.empty() || t.size() > 100 || t.find('/') == std::string::npos) return "application/octet-stream";
    for (char c : t)
        if (!(std::isalnum(static_cast<unsigned char>(c)) ||
              std::string_view("/.+-_").find(c) != std::string_view::npos))
            return "application/octet-stream";
    // Never let a browser render what a stranger sent.
    if (t.rfind("text/html", 0) == 0 || t.find("xml") != std::string::npos ||
        t.find("script") != std::string::npos)
        return "application/octet-stream";
    return t;
}

json parse_body(const ApiRequest& req, std::initializer_list<const char*> allowed, bool required) {
    if (req.body.empty()) {
        if (required) throw ParseError("a JSON object is required", 0, "body");
        return json::object();
    }
    auto ct = to_lower(req.content_type);
    if (ct.rfind("application/json", 0) != 0)
        throw Reply{problem(415, "Unsupported Media Type", "the request body must be application/json"),
                    "refused: body is not application/json"};
    json j;
    try {
        j = json::parse(req.body);
    } catch (const json::parse_error& e) {
        throw ParseError(std::string("malformed JSON (byte ") + std::to_string(e.byte) + ")", 0, "body");
    } catch (const json::exception&) {
        // A number beyond a double (1e999) is well-formed JSON that nlohmann refuses with
        // out_of_range, not parse_error: still the client's mistake, not a server error.
        throw ParseError("a number in the JSON body is out of range", 0, "body");
    }
    if (!j.is_object()) throw ParseError("expected a JSON object", 0, "body");
    std::set<std::string> ok(allowed.begin(), allowed.end());
    for (auto& [k, v] : j.items())
        if (!ok.count(k)) throw ParseError("unknown field", 0, k.substr(0, 64));
    return j;
}

}  // namespace

ApiResponse problem(int status, const std::string& title, const std::string& detail) {
    ApiResponse r;
    r.status = status;
    r.content_type = "application/problem+json";
    std::string slug = to_lower(title);
    for (auto& c : slug)
        if (c == ' ') c = '-';
    r.body =
        json{{"type", "urn:pecd:problem:" + slug}, {"title", title}, {"status", status}, {"detail", detail}}
            .dump(-1, ' ', true, json::error_handler_t::replace);
    return r;
}

struct MailboxApi::Context {
    const ApiRequest& req;
    Plan plan;
    std::vector<std::string> path;
    std::vector<std::pair<std::string, std::string>> query;
    Claims claims;
};

MailboxApi::MailboxApi(store::MailboxLifecycle& lifecycle, MessageCatalog& catalog, const PecView& pec,
                       TokenVerifier& tokens)
    : lifecycle_(lifecycle), catalog_(catalog), pec_(pec), tokens_(tokens) {}

Plan MailboxApi::handle(const ApiRequest& req) {
    Context c{req, {}, {}, {}, {}};
    auto& a = c.plan.audit;
    a.client_ip = req.client_ip;
    a.client_cert = req.client_cert;
    a.method = req.method;
    a.target = req.target;
    a.action = "request";
    try {
        auto q = req.target.find('?');
        std::string_view path(req.target.data(), q == std::string::npos ? req.target.size() : q);
        if (path == "/openapi.yaml" || path == "/v1/openapi.yaml") {
            if (req.method != "GET") refuse(405, "Method Not Allowed", "use GET");
            c.plan.audited = false;
            c.plan.response.content_type = "application/yaml";
            c.plan.response.body = kOpenApiYaml;
            return std::move(c.plan);
        }
        for (auto seg : split(path, '/'))
            if (!seg.empty()) c.path.push_back(percent_decode(seg));
        if (q != std::string::npos)
            for (auto kv : split(std::string_view(req.target).substr(q + 1), '&')) {
                if (kv.empty()) continue;
                auto eq = kv.find('=');
                c.query.emplace_back(percent_decode(kv.substr(0, eq)),
                                     eq == std::string_view::npos ? "" : percent_decode(kv.substr(eq + 1)));
            }
        route(c);
    } catch (const Reply& r) {
        c.plan.response = r.response;
        a.outcome = r.outcome;
        c.plan.change = nullptr;
    } catch (const TokenError& e) {
        c.plan.response = problem(401, "Unauthorized", e.what());
        c.plan.response.headers.emplace_back("WWW-Authenticate",
                                             "Bearer realm=\"pecd\", error=\"invalid_token\"");
        a.outcome = std::string("refused: ") + e.what();
        c.plan.change = nullptr;
    } catch (const ParseError& e) {
        c.plan.response = problem(400, "Bad Request", e.what());
        a.outcome = std::string("refused: ") + e.what();
        c.plan.change = nullptr;
    } catch (const TemporaryError& e) {
        c.plan.response = problem(503, "Service Unavailable", "temporary failure; retry later");
        a.outcome = std::string("failed: ") + e.what();
        c.plan.change = nullptr;
    } catch (const std::exception& e) {
        c.plan.response = problem(500, "Internal Server Error", "the request could not be completed");
        a.outcome = std::string("failed: ") + e.what();
        c.plan.change = nullptr;
    }
    a.status = c.plan.change ? 200 : c.plan.response.status;
    if (a.outcome.empty()) a.outcome = "ok";
    return std::move(c.plan);
}

void MailboxApi::route(Context& c) {
    auto& p = c.path;
    if (p.size() < 2 || p[0] != "v1" || p[1] != "mailboxes") refuse(404, "Not Found", "no such resource");
    // Authenticate first: nothing about mailboxes is revealed to a caller without a token.
    const std::string& auth = c.req.authorization;
    if (auth.size() < 8 || to_lower(auth.substr(0, 7)) != "bearer ") {
        c.plan.audit.outcome = "refused: no bearer token";
        ApiResponse r =
            problem(401, "Unauthorized", "a bearer token is required (Authorization: Bearer <JWT>)");
        r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"pecd\"");
        throw Reply{r, "refused: no bearer token"};
    }
    c.claims = tokens_.verify(std::string(trim(std::string_view(auth).substr(7))));
    c.plan.audit.token_subject = c.claims.subject;
    c.plan.audit.token_id = c.claims.token_id;
    if (p.size() == 2) {
        c.plan.audit.action = "mailbox.create";
        if (c.req.method != "POST") refuse(405, "Method Not Allowed", "use POST to create a mailbox");
        create_mailbox(c);
        return;
    }
    std::string address = to_lower(p[2]);
    c.plan.audit.mailbox = address;
    mailbox_routes(c, address, std::vector<std::string>(p.begin() + 3, p.end()));
}

void MailboxApi::mailbox_routes(Context& c, const std::string& address,
                                const std::vector<std::string>& rest) {
    auto& a = c.plan.audit;
    const auto& method = c.req.method;
    bool lifecycle = (rest.size() == 1 && (rest[0] == "activate" || rest[0] == "deactivate")) ||
                     (rest.empty() && method == "PATCH");
    if (lifecycle) {
        a.action = rest.empty() ? "mailbox.modify" : "mailbox." + rest[0];
        if (!rest.empty() && method != "POST") refuse(405, "Method Not Allowed", "use POST");
        lifecycle_change(c, address, rest.empty() ? "modify" : rest[0]);
        return;
    }
    a.action = rest.empty() ? "mailbox.read" : rest[0] == "messages" ? "message.search" : "request";
    if (!c.claims.has_scope(kScopeRead) && !(rest.empty() && c.claims.has_scope(kScopeProvision)))
        refuse(403, "Forbidden", std::string("the token lacks the scope ") + kScopeRead);
    auto m = c.claims.may_reach(address) ? lifecycle_.store().mailbox(address) : std::nullopt;
    if (!m) refuse(404, "Not Found", "no mailbox " + address + " that this token may read");
    if (rest.empty()) {
        if (method != "GET") refuse(405, "Method Not Allowed", "use GET or PATCH");
        read_mailbox(c, *m);
        return;
    }
    if (rest[0] != "messages") refuse(404, "Not Found", "no such resource");
    if (!lifecycle_.readable(*m)) {
        auto end = lifecycle_.closes_at(*m);
        refuse(410, "Gone",
               "mailbox " + m->address + " is closed for good" +
                   (end ? " (its read-only period ended at " + rfc3339_utc(*end) + ")" : std::string()));
    }
    if (method != "GET") refuse(405, "Method Not Allowed", "use GET");
    if (rest.size() == 1) {
        search(c, *m);
        return;
    }
    message_routes(c, *m, std::vector<std::string>(rest.begin() + 1, rest.end()));
}

void MailboxApi::read_mailbox(Context& c, const MailboxInfo& m) {
    c.plan.response = json_response(200, mailbox_json(m, lifecycle_));
}

void MailboxApi::create_mailbox(Context& c) {
    if (!c.claims.has_scope(kScopeProvision))
        refuse(403, "Forbidden", std::string("the token lacks the scope ") + kScopeProvision);
    auto body = parse_body(c.req, {"address", "kind", "quota_bytes", "accepts_ordinary_mail"}, true);
    store::NewMailbox m;
    if (!body.contains("address") || !body["address"].is_string())
        throw ParseError("required, a string", 0, "address");
    m.address = store::normalize_address(body["address"].get<std::string>());
    c.plan.audit.mailbox = m.address;
    if (body.contains("kind")) {
        if (!body["kind"].is_string())
            throw ParseError("expected \"standard\" or \"receive-only\"", 0, "kind");
        m.kind = store::parse_mailbox_kind(body["kind"].get<std::string>());
    }
    if (body.contains("quota_bytes")) {
        if (!body["quota_bytes"].is_number_unsigned() || body["quota_bytes"].get<std::uint64_t>() == 0)
            throw ParseError("expected a positive integer", 0, "quota_bytes");
        m.quota_bytes = body["quota_bytes"].get<std::uint64_t>();
    }
    if (body.contains("accepts_ordinary_mail")) {
        if (!body["accepts_ordinary_mail"].is_boolean())
            throw ParseError("expected true or false", 0, "accepts_ordinary_mail");
        m.accepts_ordinary_mail = body["accepts_ordinary_mail"].get<bool>();
    }
    if (!c.claims.may_reach(m.address))
        refuse(403, "Forbidden", "the token may not provision mailboxes for " + m.address);
    auto* lc = &lifecycle_;
    c.plan.change = [lc, m](store::Tx&) { lc->create(m); };
    std::string address = m.address;
    c.plan.after_change = [lc, address] {
        auto info = lc->store().mailbox(address);
        auto r = json_response(201, info ? mailbox_json(*info, *lc) : json::object());
        r.headers.emplace_back("Location", "/v1/mailboxes/" + address);
        return r;
    };
}

void MailboxApi::lifecycle_change(Context& c, const std::string& address, const std::string& action) {
    if (!c.claims.has_scope(kScopeProvision))
        refuse(403, "Forbidden", std::string("the token lacks the scope ") + kScopeProvision);
    if (!c.claims.may_reach(address) || !lifecycle_.store().mailbox(address))
        refuse(404, "Not Found", "no mailbox " + address + " that this token may change");
    auto* lc = &lifecycle_;
    if (action == "modify") {
        auto body = parse_body(c.req, {"quota_bytes"}, true);
        store::MailboxChanges changes;
        if (body.contains("quota_bytes")) {
            if (!body["quota_bytes"].is_number_unsigned() || body["quota_bytes"].get<std::uint64_t>() == 0)
                throw ParseError("expected a positive integer", 0, "quota_bytes");
            changes.quota_bytes = body["quota_bytes"].get<std::uint64_t>();
        }
        c.plan.change = [lc, address, changes](store::Tx&) { lc->modify(address, changes); };
    } else {
        parse_body(c.req, {}, false);
        if (action == "activate")
            c.plan.change = [lc, address](store::Tx&) { lc->activate(address); };
        else
            c.plan.change = [lc, address](store::Tx&) { lc->deactivate(address); };
    }
    c.plan.after_change = [lc, address] {
        auto info = lc->store().mailbox(address);
        return json_response(200, info ? mailbox_json(*info, *lc) : json::object());
    };
}

void MailboxApi::search(Context& c, const MailboxInfo& m) {
    CatalogQuery q;
    for (auto& [k, v] : c.query) {
        if (k == "from")
            q.from = parse_time(v, "from");
        else if (k == "to")
            q.to = parse_time(v, "to");
        else if (k == "sender")
            q.sender = v;
        else if (k == "subject")
            q.subject = v;
        else if (k == "type")
            q.type = to_lower(v);
        else if (k == "status")
            q.status = to_lower(v);
        else if (k == "limit")
            q.limit = parse_count(v, "limit", 500);
        else if (k == "offset")
            q.offset = parse_count(v, "offset", 100000000);
        else
            throw ParseError("unknown query parameter", 0, k.substr(0, 64));
    }
    if (q.limit == 0) throw ParseError("must be at least 1", 0, "limit");
    auto page = catalog_.search(m.id, q);
    json items = json::array();
    for (auto& e : page.items) items.push_back(message_json(m.address, e, pec_.source()));
    json j = {{"items", items}, {"total", page.total}, {"limit", q.limit}, {"offset", q.offset}};
    if (q.offset + page.items.size() < static_cast<std::size_t>(page.total))
        j["next_offset"] = q.offset + page.items.size();
    c.plan.response = json_response(200, j);
}

void MailboxApi::message_routes(Context& c, const MailboxInfo& m, const std::vector<std::string>& rest) {
    auto& a = c.plan.audit;
    a.message = rest[0].substr(0, 32);
    a.action = rest.size() == 1 ? "message.read" : "message." + rest[1].substr(0, 32);
    if (!c.query.empty()) throw ParseError("unknown query parameter", 0, c.query.front().first.substr(0, 64));
    auto id = parse_id(rest[0], "message");
    auto entry = catalog_.get(m.id, id);
    if (!entry) refuse(404, "Not Found", "no message " + rest[0] + " in " + m.address);
    if (rest.size() == 1) {
        auto j = message_json(m.address, *entry, pec_.source());
        json receipts = json::array();
        for (auto& r : catalog_.linked(m.id, *entry))
            receipts.push_back({{"id", r.id},
                                {"type", r.headers.pec_type},
                                {"message_id", r.headers.message_id},
                                {"received_at", rfc3339_utc(r.received_at)}});
        j["pec"]["linked_receipts"] = receipts;
        json events = json::array();
        for (auto& e : pec_.history(entry->headers))
            events.push_back({{"kind", e.kind},
                              {"time", e.time},
                              {"outcome", e.outcome},
                              {"recipients", e.recipients},
                              {"generated_ids", e.generated_ids}});
        j["pec"]["events"] = events;
        c.plan.response = json_response(200, j);
        return;
    }
    const std::string& sub = rest[1];
    if (sub == "raw" && rest.size() == 2) {
        auto raw = catalog_.raw(m.id, id);
        if (!raw) refuse(404, "Not Found", "no message " + rest[0] + " in " + m.address);
        c.plan.response.content_type = "message/rfc822";
        c.plan.response.body = std::move(*raw);
        c.plan.response.headers.emplace_back(
            "Content-Disposition", "attachment; filename=\"message-" + std::to_string(id) + ".eml\"");
        return;
    }
    if (sub == "verification" && rest.size() == 2) {
        auto raw = catalog_.raw(m.id, id);
        if (!raw) refuse(404, "Not Found", "no message " + rest[0] + " in " + m.address);
        auto v = pec_.verify(*raw, entry->headers);
        c.plan.response = json_response(200, {{"message", id},
                                              {"verdict", v.verdict},
                                              {"reason", v.reason},
                                              {"details", v.details},
                                              {"source", pec_.source()}});
        return;
    }
    if (sub == "attachments" && rest.size() <= 3) {
        auto raw = catalog_.raw(m.id, id);
        if (!raw) refuse(404, "Not Found", "no message " + rest[0] + " in " + m.address);
        if (rest.size() == 2) {
            json list = json::array();
            for (auto& info : attachments(*raw))
                list.push_back({{"index", info.index},
                                {"filename", info.filename},
                                {"content_type", info.content_type},
                                {"href", "/v1/mailboxes/" + m.address + "/messages/" + std::to_string(id) +
                                             "/attachments/" + std::to_string(info.index)}});
            c.plan.response = json_response(200, {{"message", id}, {"attachments", list}});
            return;
        }
        a.action = "message.attachment";
        auto index = parse_id(rest[2], "attachment");
        auto data = index > 10000 ? std::nullopt : attachment(*raw, static_cast<int>(index));
        if (!data) refuse(404, "Not Found", "message " + rest[0] + " has no attachment " + rest[2]);
        a.message += "#" + std::to_string(index);
        c.plan.response.content_type = safe_content_type(data->info.content_type);
        c.plan.response.body = std::move(data->bytes);
        c.plan.response.headers.emplace_back(
            "Content-Disposition",
            "attachment; filename=\"" +
                safe_filename(data->info.filename, "attachment-" + std::to_string(index)) + "\"");
        return;
    }
    refuse(404, "Not Found", "no such resource");
}

std::pair<ApiResponse, std::string> MailboxApi::failed_change(std::exception_ptr error) const {
    try {
        std::rethrow_exception(error);
    } catch (const store::LifecycleConflict& e) {
        return {problem(409, "Conflict", e.what()), std::string("refused: ") + e.what()};
    } catch (const store::NoSuchMailbox& e) {
        return {problem(404, "Not Found", e.what()), std::string("refused: ") + e.what()};
    } catch (const ParseError& e) {
        return {problem(400, "Bad Request", e.what()), std::string("refused: ") + e.what()};
    } catch (const TemporaryError& e) {
        return {problem(503, "Service Unavailable", "temporary failure; retry later"),
                std::string("failed: ") + e.what()};
    } catch (const std::exception& e) {
        return {problem(500, "Internal Server Error", "the change could not be made"),
                std::string("failed: ") + e.what()};
    }
}

}  // namespace pecd::api
