// audit_trail.cpp - API audit records as group-committed legal-log events (see audit_trail.hpp)
#include "api/audit_trail.hpp"

#include <future>

namespace pecd::api {

AuditTrail::AuditTrail(store::Database& db, log::LegalLog& log, const Clock& clock, std::size_t max_batch)
    : log_(log), clock_(clock), committer_(db, {}, max_batch) {}

AuditTrail::~AuditTrail() {
    committer_.stop();
}

log::Event AuditTrail::to_event(const AuditEntry& e) const {
    log::Event ev;
    ev.kind = log::EventKind::api_audit;
    ev.time = clock_.now();
    ev.utc_offset_minutes = log::italy_utc_offset_minutes(ev.time);
    // The mailbox read or changed is the record's address, so the log's search by
    // address finds every access to a mailbox.
    if (!e.mailbox.empty()) ev.recipients.push_back({e.mailbox, true});
    ev.peer_host = e.client_ip;
    ev.tls.peer = e.client_cert;
    ev.outcome = e.outcome.empty() ? "ok" : e.outcome;
    ev.actor = e.token_subject;
    ev.details["action"] = e.action;
    ev.details["status"] = std::to_string(e.status);
    if (!e.message.empty()) ev.details["message"] = e.message;
    if (!e.method.empty()) ev.details["request"] = e.method + " " + e.target.substr(0, 512);
    if (!e.token_id.empty()) ev.details["token_id"] = e.token_id;
    return ev;
}

void AuditTrail::record(const AuditEntry& entry, Done done) {
    auto ev = std::make_shared<log::Event>(to_event(entry));
    committer_.submit([this, ev](store::Tx& tx) { log_.append(tx, *ev); }, std::move(done));
}

void AuditTrail::change(std::function<void(store::Tx&)> work, const AuditEntry& entry, Done done) {
    auto ev = std::make_shared<log::Event>(to_event(entry));
    committer_.submit(
        [this, ev, work = std::move(work)](store::Tx& tx) {
            work(tx);
            log_.append(tx, *ev);
        },
        std::move(done));
}

void AuditTrail::record_sync(const AuditEntry& entry) {
    std::promise<void> p;
    auto f = p.get_future();
    record(entry, [&p](std::exception_ptr e) {
        if (e)
            p.set_exception(e);
        else
            p.set_value();
    });
    f.get();
}

}  // namespace pecd::api
