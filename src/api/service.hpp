// service.hpp - the mailbox API's requests and answers, without sockets
//
// MailboxApi::handle() turns one authenticated-or-not HTTP request (method, target,
// headers that matter, body, and who is connected: client address and certificate
// subject) into a Plan: the response, the audit entry that must be durable before the
// response is sent, and, for lifecycle requests, the state change to commit together
// with that audit entry. The server (server.hpp) does the I/O and the waiting.
//
// Contract:
// - Every request to /v1/ is audited, refused ones included (401, 403, 404, 4xx); only
//   the OpenAPI document is served without a token and without an audit record.
// - Authentication: "Authorization: Bearer <JWT>" (token_verifier.hpp); failures are
//   401 with WWW-Authenticate. Authorisation: scope "mailbox:read" for reads,
//   "mailbox:provision" for lifecycle requests, and the token's grants (pecd_mailboxes /
//   pecd_domains) must cover the mailbox; a mailbox outside them is answered 404 exactly
//   like a mailbox that does not exist (no probing of other companies' addresses).
// - Errors are application/problem+json (RFC 7807) with a precise detail; request
//   bodies must be JSON objects without unknown fields.
// - Reads never change a message or a mailbox.
#pragma once

#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "api/audit_trail.hpp"
#include "api/message_catalog.hpp"
#include "api/pec_view.hpp"
#include "api/token_verifier.hpp"
#include "store/mailbox_lifecycle.hpp"

namespace pecd::api {

struct ApiRequest {
    std::string method;
    std::string target;  // path and query, as sent
    std::string content_type;
    std::string authorization;
    std::string body;
    std::string client_ip;
    std::string client_cert;  // subject of the verified client certificate
};

struct ApiResponse {
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;
};

struct Plan {
    ApiResponse response;
    bool audited = true;
    AuditEntry audit;
    // Lifecycle requests: the change to commit with the audit record, then the response
    // to send once it is committed (response above is unused for them).
    std::function<void(store::Tx&)> change;
    std::function<ApiResponse()> after_change;
};

class MailboxApi {
public:
    MailboxApi(store::MailboxLifecycle& lifecycle, MessageCatalog& catalog, const PecView& pec,
               TokenVerifier& tokens);

    Plan handle(const ApiRequest& request);
    // The response for a change that failed (LifecycleConflict 409, NoSuchMailbox 404,
    // ParseError 400, anything else 500) and its outcome text for the audit record.
    std::pair<ApiResponse, std::string> failed_change(std::exception_ptr error) const;

private:
    struct Context;
    void route(Context& c);
    void mailbox_routes(Context& c, const std::string& address, const std::vector<std::string>& rest);
    void create_mailbox(Context& c);
    void lifecycle_change(Context& c, const std::string& address, const std::string& action);
    void read_mailbox(Context& c, const store::MailboxInfo& m);
    void search(Context& c, const store::MailboxInfo& m);
    void message_routes(Context& c, const store::MailboxInfo& m, const std::vector<std::string>& rest);

    store::MailboxLifecycle& lifecycle_;
    MessageCatalog& catalog_;
    const PecView& pec_;
    TokenVerifier& tokens_;
};

ApiResponse problem(int status, const std::string& title, const std::string& detail);

}  // namespace pecd::api
