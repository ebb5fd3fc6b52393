// audit_trail.hpp - every API read and lifecycle change, durably, in the legal log
//
// Audit records are legal-log events of kind api_audit (log/event.hpp), so they share
// the log's hash chain, segments, seals and RFC 3161 time stamps, and its export and
// verification tools; the legal-log API is used as it is.
//
// Contract:
// - record(entry, done) queues the event; done(nullptr) runs once the record is durable
//   (committed with fsync), done(error) when it could not be written. Records are group
//   committed: every record queued while the previous round was being committed goes
//   into one transaction (one fsync), which is what lets thousands of audited reads per
//   second through one disk. A response must not be sent before its done(nullptr).
// - change(work, entry, done) runs a state change and its audit record in one
//   transaction: both commit or neither (a refused change is then recorded on its own by
//   the caller, with the refusal as outcome).
// - done runs on the committer thread and must be short (post to an executor).
// - The entry never holds a secret: the token itself is never recorded, only its subject
//   and id (jti).
#pragma once

#include <exception>
#include <functional>
#include <memory>
#include <string>

#include "core/clock.hpp"
#include "log/legal_log.hpp"
#include "queue/group_commit.hpp"
#include "store/database.hpp"

namespace pecd::api {

struct AuditEntry {
    std::string token_subject;  // "sub" of the bearer token; empty when none was accepted
    std::string token_id;       // "jti", when the token had one
    std::string client_cert;    // subject of the verified client certificate
    std::string client_ip;
    std::string action;   // e.g. "message.read", "mailbox.deactivate", "auth"
    std::string mailbox;  // the mailbox concerned, when one is
    std::string message;  // message id within the mailbox, when one is
    std::string method;   // HTTP method and target, for the record
    std::string target;
    int status = 0;       // the HTTP status answered
    std::string outcome;  // "ok" or the reason for the refusal / failure
};

class AuditTrail {
public:
    using Done = std::function<void(std::exception_ptr)>;

    AuditTrail(store::Database& db, log::LegalLog& log, const Clock& clock, std::size_t max_batch = 2048);
    ~AuditTrail();

    void record(const AuditEntry& entry, Done done);
    void change(std::function<void(store::Tx&)> work, const AuditEntry& entry, Done done);
    // Blocking forms (tools and tests): rethrow the error.
    void record_sync(const AuditEntry& entry);
    // Commit rounds so far (diagnostics; tests check that batching happens).
    std::size_t rounds() const { return committer_.rounds(); }
    void stop() { committer_.stop(); }

    log::Event to_event(const AuditEntry& entry) const;

private:
    log::LegalLog& log_;
    const Clock& clock_;
    queue::GroupCommitter committer_;
};

}  // namespace pecd::api
