// engine.cpp - the PEC provider flow on the durable queue (see engine.hpp)
#include "provider/engine.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/strings.hpp"
#include "log/event.hpp"
#include "pec/points/access_point.hpp"
#include "pec/points/delivery_point.hpp"
#include "pec/points/reception_point.hpp"
#include "pec/verify.hpp"

namespace pecd::provider {
namespace {

using queue::Outcome;
using queue::QueuedMessage;
using queue::QueuedRecipient;
using queue::RecipientResult;

std::vector<std::string> addresses(const std::vector<QueuedRecipient>& rs) {
    std::vector<std::string> out;
    for (const auto& r : rs) out.push_back(r.address);
    return out;
}

Envelope with_recipients(const Envelope& base, const std::vector<std::string>& rcpts) {
    Envelope e = base;
    e.recipients.clear();
    for (const auto& r : rcpts) e.recipients.push_back({r, {}, {}});
    return e;
}

std::vector<log::LoggedRecipient> logged(const std::vector<pec::DaticertRecipient>& rs) {
    std::vector<log::LoggedRecipient> out;
    for (const auto& r : rs) out.push_back({r.address, r.type == pec::RecipientType::certificato});
    return out;
}

log::TlsDetails tls_of(const Envelope& e) {
    return {e.session.tls_protocol, e.session.tls_cipher, {}};
}

// Ids and subjects go into a synthetic original for notices built from stored facts
// (timeouts, virus): the builders read Subject and Message-ID from it. Header-unsafe
// bytes are dropped so a hostile stored subject cannot add header fields.
std::string synthetic_original(const std::string& sender, const std::string& subject,
                               const std::string& client_msgid) {
    auto clean = [](std::string s) {
        for (auto& c : s)
            if (c == '\r' || c == '\n' || c == '\0') c = ' ';
        return s;
    };
    std::string o = "From: <" + clean(sender) + ">\r\n";
    if (!subject.empty()) o += "Subject: " + clean(subject) + "\r\n";
    if (!client_msgid.empty()) o += "Message-ID: " + clean(client_msgid) + "\r\n";
    o += "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n\r\n";
    return o;
}

RecipientResult done(const QueuedRecipient& r, std::string diagnostic) {
    return {r.id, Outcome::delivered, "2.0.0", std::move(diagnostic), {}, true};
}

RecipientResult mailbox_full(const QueuedRecipient& r) {
    return {r.id, Outcome::deferred, "4.2.2", "452 4.2.2 <" + r.address + ">: mailbox full", {}, false};
}

// A stored message's key in its mailbox: one per queued recipient, the same when a stage
// runs again after a crash.
std::string delivery_key(const QueuedMessage& m, const QueuedRecipient& r) {
    return m.id + "." + std::to_string(r.id);
}

}  // namespace

// The messages one stage generated, each already written to the spool, with the queue
// rows still to insert.
struct Engine::Output {
    struct Item {
        std::string id;
        Envelope envelope;
        std::uint64_t size = 0;
        bool is_dsn = true;
    };
    explicit Output(queue::Spool* s) : spool(s) {}
    std::vector<Item> items;
    queue::Spool* spool;
    bool committed = false;
    ~Output() {
        if (committed || !spool) return;
        for (const auto& i : items) spool->discard(i.id);
    }
    std::vector<std::string> ids() const {
        std::vector<std::string> out;
        for (const auto& i : items) out.push_back(i.id);
        return out;
    }
    // The queue rows, inside the transaction that records the step.
    void insert(store::Tx& tx) const {
        for (const auto& i : items)
            spool->insert_generated(tx, i.id, i.envelope, i.size, i.is_dsn, queue::MessageClass::pec);
    }
    // After that transaction committed: the files are kept and the runner is told.
    void settle() {
        committed = true;
        spool->notify(ids());
    }
};

Engine::Engine(EngineSettings settings, EngineParts parts)
    : settings_(std::move(settings)),
      parts_(parts),
      ids_(settings_.provider_domain, settings_.node_id.empty() ? settings_.hostname : settings_.node_id) {
    if (!parts_.spool || !parts_.mail || !parts_.signer || !parts_.quarantine)
        throw Error("PEC engine: spool, mailbox store, signing identity and quarantine are required");
    tracker_ = std::make_unique<pec::tracking::Tracker>(parts_.spool->database(), settings_.tracking);
    // The delivery stage queues its receipt inside MailStore::deliver's transaction; the
    // receipt file's directory entry is made durable by the committer round that commits it.
    parts_.mail->set_writer([spool = parts_.spool](const std::function<void(store::Tx&)>& work) {
        spool->committer().run(work);
    });
    // PEC messages already taken in, per recipient: SMTP delivers at least once (a peer
    // killed between our 250 and its own commit sends again), PEC wants each envelope and
    // receipt once, and a PEC message's Message-ID is unique (pec.md 2.5).
    // Kept kReceivedMemory, then purged by the timers (purge_received).
    parts_.spool->database().migrate(
        "pec_reception", {{1,
                           "CREATE TABLE pec_received (message_id TEXT NOT NULL, recipient TEXT NOT NULL,"
                           " received_us BIGINT NOT NULL, PRIMARY KEY (message_id, recipient))"},
                          {2, "CREATE INDEX pec_received_by_age ON pec_received (received_us)"}});
}

Engine::~Engine() {
    stop();
}

bool Engine::is_pec_domain(std::string_view domain) const {
    return settings_.pec_domains.count(to_lower(domain)) > 0;
}

Stage Engine::stage_of(const QueuedMessage& m) const {
    const auto& listener = m.envelope.session.listener;
    if (listener == kReceptionStage) return Stage::reception;
    if (listener == kDeliveryStage) return Stage::delivery;
    if (listener == kStoreStage || listener == kOutbound || listener == "dsn") return Stage::none;
    if (settings_.access_listeners.count(listener)) {
        // A user of a PEC domain submitting: the access point. Others relay as ordinary mail.
        const auto& user = m.envelope.session.auth_user;
        return !user.empty() && is_pec_domain(domain_of(user)) ? Stage::access : Stage::none;
    }
    for (const auto& r : m.recipients)
        if (is_pec_domain(domain_of(r.address))) return Stage::reception;
    return Stage::none;
}

std::vector<RecipientResult> Engine::process(const QueuedMessage& m, const std::vector<QueuedRecipient>& due,
                                             const std::filesystem::path& data) {
    // Before the first index is loaded every signer and domain would look unknown: valid
    // envelopes would turn into anomalies and certified recipients into external ones.
    if (parts_.index && !parts_.index->ready()) throw TemporaryError("provider index not loaded yet");
    auto raw = fs::read_file(data);
    switch (stage_of(m)) {
        case Stage::access:
            return access(m, due, raw);
        case Stage::reception:
            return reception(m, due, data, raw);
        case Stage::delivery:
            return delivery(m, due, data, raw);
        case Stage::none:
            break;
    }
    return {};
}

pec::ScanVerdict Engine::scan(std::string_view content, const char* point) const {
    if (!parts_.scanner) return pec::ScanVerdict::clean();
    // TemporaryError (scanner unreachable, timed out) propagates: the runner defers.
    auto r = parts_.scanner->scan(content);
    switch (r.verdict) {
        case av::Verdict::clean:
            return pec::ScanVerdict::clean();
        case av::Verdict::infected:
            spdlog::warn("pec: {}: virus {} found", point, r.virus);
            return pec::ScanVerdict::found(r.virus);
        case av::Verdict::size_limit_exceeded:
            break;
    }
    // clamd stopped reading at its StreamMaxLength: the message was not scanned whole,
    // so it waits (the operator raises StreamMaxLength to at least the message size).
    throw TemporaryError("antivirus: message larger than clamd's StreamMaxLength, not scanned");
}

void Engine::add_generated(Output& out, const pec::BuiltMessage& built, bool for_store) const {
    std::vector<std::string> local, remote;
    for (const auto& r : built.rcpt_to) (is_pec_domain(domain_of(r)) ? local : remote).push_back(r);
    Envelope base;
    base.mail_from = built.mail_from;
    base.received_at = parts_.clock->now();
    base.session.helo = settings_.hostname;
    auto add = [&](const std::vector<std::string>& rcpts, const char* stage, bool is_dsn) {
        if (rcpts.empty()) return;
        Output::Item item;
        item.envelope = with_recipients(base, rcpts);
        item.envelope.session.listener = stage;
        item.size = built.data.size();
        item.is_dsn = is_dsn;
        item.id = parts_.spool->write_generated(built.data);
        out.items.push_back(std::move(item));
    };
    add(local, for_store ? kStoreStage : kReceptionStage, true);
    // Mail leaving this provider may bounce to its reverse path like any mail.
    add(remote, kOutbound, false);
}

void Engine::commit(Output& out, const std::function<void(store::Tx&)>& also) {
    parts_.spool->committer().run([&](store::Tx& tx) {
        out.insert(tx);
        if (also) also(tx);
    });
    out.settle();
}

// A receipt for one of this provider's own mailboxes goes into it from the stage that
// made or received it, in that stage's transaction: queued, it would take two more
// passes (our own reception point, then the store stage) and reach the user later.
struct Engine::LocalCopy {
    std::string address;
    std::string delivery_key;  // unique per mailbox; a retried stage reuses it
    std::string mail_from;
    std::string_view bytes;                   // built now, or
    const std::filesystem::path* file = nullptr;  // already durable in the spool
    std::uint64_t size = 0;
};

std::optional<Engine::LocalCopy> Engine::local_copy(const std::string& address, std::uint64_t size) const {
    // No look-up of the mailbox first: the store answers when the copy is tried, in one
    // snapshot, and commit_with() queues the receipt when it is not stored.
    if (!is_pec_domain(domain_of(address))) return std::nullopt;
    LocalCopy c;
    c.address = address;
    c.size = size;
    return c;
}

void Engine::commit_with(Output& out, const std::optional<LocalCopy>& copy, const std::function<void()>& queue_it,
                         const std::function<void(store::Tx&)>& also) {
    if (copy) {
        auto step = [&](store::Tx& tx) {
            out.insert(tx);
            if (also) also(tx);
        };
        auto outcome = copy->file ? parts_.mail->deliver(copy->address, copy->delivery_key, *copy->file, copy->size,
                                                         copy->mail_from, step)
                                  : parts_.mail->deliver_bytes(copy->address, copy->delivery_key, copy->bytes,
                                                               copy->mail_from, step);
        if (outcome == store::DeliveryOutcome::stored) {
            out.settle();
            return;
        }
        // No such mailbox here, full or disabled: queued, the store stage retries it or
        // answers for it as for any other message.
        queue_it();
    }
    commit(out, also);
}

void Engine::log(store::Tx& tx, log::Event e) const {
    if (!parts_.legal_log) return;
    e.utc_offset_minutes = log::italy_utc_offset_minutes(e.time);
    parts_.legal_log->append(tx, e);
}

std::string Engine::quarantine(const std::string& raw, const Envelope& env, const char* point,
                               const std::string& virus, const std::string& pec_msgid,
                               const std::string& client_msgid) const {
    av::QuarantineEntry meta;
    meta.point = point;
    meta.host = settings_.hostname;
    meta.scanner = parts_.scanner ? "clamd " + parts_.scanner->options().endpoint.to_string() : "";
    meta.virus = virus;
    meta.pec_msgid = pec_msgid;
    meta.client_msgid = client_msgid;
    return parts_.quarantine->store(raw, env, meta).id;
}

// ---- access point (pec.md 5.1) ----

std::vector<RecipientResult> Engine::access(const QueuedMessage& m, const std::vector<QueuedRecipient>& due,
                                            const std::string& raw) {
    auto env = with_recipients(m.envelope, addresses(m.recipients));
    pec::AccessPointContext ctx;
    ctx.provider_domain = settings_.provider_domain;
    ctx.provider_name = settings_.provider_name;
    const auto signer = parts_.signer->current();  // one identity for everything this message makes
    ctx.signer = signer.get();
    ctx.time = parts_.clock->now();
    ctx.pec_msgid = ids_.next(ctx.time);
    ctx.limits = settings_.limits;
    ctx.index = parts_.index;
    ctx.scan = scan(raw, "access point");
    auto d = pec::accept_submission(env, env.session.auth_user, raw, ctx);

    Output out(parts_.spool);
    auto receipt_copy = d.receipt.rcpt_to.size() == 1 ? local_copy(d.receipt.rcpt_to[0], d.receipt.data.size())
                                                      : std::nullopt;
    if (receipt_copy) {
        receipt_copy->delivery_key = m.id + ".receipt";
        receipt_copy->mail_from = d.receipt.mail_from;
        receipt_copy->bytes = d.receipt.data;
    } else {
        add_generated(out, d.receipt, false);
    }
    if (d.transport) add_generated(out, *d.transport, false);
    std::string quarantined;
    if (d.quarantine)
        quarantined = quarantine(raw, env, "access-point", ctx.scan.virus, ctx.pec_msgid, d.log.client_msgid);

    log::Event e;
    e.kind = d.accepted ? log::EventKind::acceptance
                        : (d.quarantine ? log::EventKind::non_acceptance_virus : log::EventKind::non_acceptance);
    e.pec_msgid = ctx.pec_msgid;
    e.client_msgid = d.log.client_msgid;
    e.time = ctx.time;
    e.sender = d.log.sender;
    e.recipients = logged(d.log.recipients);
    e.subject = d.log.subject;
    e.generated_ids = d.log.generated_ids;
    e.peer_host = env.session.client_ip;
    e.tls = tls_of(env);
    e.outcome = d.accepted ? "ok" : d.log.reason;
    e.details["auth_user"] = env.session.auth_user;
    if (!quarantined.empty()) e.details["quarantine_id"] = quarantined;

    pec::tracking::TrackedMessage tracked{ctx.pec_msgid, env.mail_from, d.log.client_msgid, d.log.subject,
                                          ctx.time};
    std::vector<pec::tracking::ClassifiedRecipient> classified;
    for (const auto& r : d.log.recipients) classified.push_back({r.address, r.type});

    std::vector<queue::RecipientUpdate> updates;
    for (const auto& r : due)
        updates.push_back({r.id, queue::RecipientState::delivered, r.attempts + 1, ctx.time,
                           d.accepted ? "accepted " + ctx.pec_msgid : "not accepted: " + d.log.reason});
    commit_with(out, receipt_copy, [&] { add_generated(out, d.receipt, false); }, [&](store::Tx& tx) {
        log(tx, e);
        if (d.accepted) {
            log::Event t = e;
            t.kind = log::EventKind::transport_envelope;
            t.generated_ids = {d.transport->message_id};
            log(tx, t);
            tracker_->start(tx, tracked, classified);
        }
        queue::Spool::apply_updates(tx, m.id, updates);
    });
    spdlog::info("pec: access point: {} from <{}>: {}", ctx.pec_msgid, env.mail_from,
                 d.accepted ? "accepted" : "not accepted (" + d.log.reason + ")");
    std::vector<RecipientResult> results;
    for (const auto& r : due) results.push_back(done(r, d.accepted ? "accepted" : "not accepted"));
    return results;
}

// ---- reception point (pec.md 5.2) ----

std::vector<RecipientResult> Engine::reception(const QueuedMessage& m, const std::vector<QueuedRecipient>& due,
                                               const std::filesystem::path& data, const std::string& raw) {
    // Recipients outside the PEC domains (an ordinary local domain beside them) get the
    // message as it is, through ordinary routing.
    std::vector<QueuedRecipient> pec_rcpts, plain_rcpts;
    for (const auto& r : due) (is_pec_domain(domain_of(r.address)) ? pec_rcpts : plain_rcpts).push_back(r);
    const auto time = parts_.clock->now();

    pec::VerifyOptions vo;
    const auto trust = parts_.trust ? parts_.trust->current() : nullptr;  // one snapshot per message
    vo.trust = trust.get();
    vo.index = parts_.index;
    auto v = pec::verify_message(raw, vo);
    // A valid PEC message seen before for a recipient is a duplicate SMTP delivery.
    std::string seen_key;
    std::set<std::int64_t> duplicates;  // queue recipient ids already received
    if (v.valid() && v.classification.kind) {
        seen_key = pec::read_original(raw).message_id;
        if (!seen_key.empty()) {
            std::vector<QueuedRecipient> fresh;
            parts_.spool->database().read([&](store::Tx& tx) {
                for (const auto& r : pec_rcpts) {
                    if (tx.query_one("SELECT 1 FROM pec_received WHERE message_id = ? AND recipient = ?",
                                     {seen_key, to_lower(r.address)}))
                        duplicates.insert(r.id);
                    else
                        fresh.push_back(r);
                }
            });
            if (!duplicates.empty())
                spdlog::info("pec: reception point: {}: {} already received, duplicate ignored", m.id, seen_key);
            pec_rcpts = std::move(fresh);
        }
    }
    auto env = with_recipients(m.envelope, addresses(pec_rcpts));
    pec::ReceptionContext ctx;
    ctx.provider_domain = settings_.provider_domain;
    ctx.provider_name = settings_.provider_name;
    const auto signer = parts_.signer->current();
    ctx.signer = signer.get();
    ctx.time = time;
    if (v.valid() && v.classification.kind == pec::MessageKind::transport_envelope)
        ctx.scan = scan(pec::antivirus_content(v.facts, raw), "reception point");
    ctx.accepts_ordinary = [&](std::string_view rcpt) {
        auto box = parts_.mail->mailbox(rcpt);
        return !box || (box->accepts_ordinary_mail && box->kind != store::MailboxKind::receive_only);
    };

    Output out(parts_.spool);
    pec::ReceptionDecision d;
    if (!pec_rcpts.empty()) d = pec::receive_message(raw, env, v, ctx);
    for (const auto& n : d.notices) add_generated(out, n, false);
    auto queue_delivery = [&] {
        Output::Item item;
        item.envelope = with_recipients(m.envelope, d.delivery->recipients);
        item.envelope.session.listener = d.delivery->transport_envelope ? kDeliveryStage : kStoreStage;
        item.envelope.received_at = time;
        // A transport envelope that cannot be stored gets a PEC non-delivery notice, not a DSN.
        item.is_dsn = d.delivery->transport_envelope;
        item.size = d.delivery->data.size();
        // Envelopes and receipts are handed on as received: a second name for this file.
        item.id = d.delivery->data == raw ? parts_.spool->link_generated(m.id)
                                          : parts_.spool->write_generated(d.delivery->data);
        out.items.push_back(std::move(item));
    };
    // A receipt (one recipient: the sender or the service mailbox) goes straight into the
    // mailbox with this step.
    std::optional<LocalCopy> receipt_copy;
    if (d.action == pec::ReceptionAction::forward_receipt && d.delivery && d.delivery->recipients.size() == 1) {
        const auto& to = d.delivery->recipients[0];
        auto r = std::find_if(pec_rcpts.begin(), pec_rcpts.end(),
                              [&](const QueuedRecipient& q) { return iequals(q.address, to); });
        if (r != pec_rcpts.end()) receipt_copy = local_copy(to, raw.size());
        if (receipt_copy) {
            receipt_copy->delivery_key = delivery_key(m, *r);
            receipt_copy->mail_from = m.envelope.mail_from;
            receipt_copy->file = &data;
        }
    }
    // A correct transport envelope for one mailbox of ours goes on to the delivery point
    // in this same pass: stored, with its delivery receipt, in the transaction that takes
    // it in charge (store_certified). Queued for the delivery stage instead, it would be
    // read, parsed and verified again and cost a queue pass and a commit more. More
    // recipients, or a mailbox that cannot take it now, go through the delivery stage.
    std::optional<QueuedRecipient> deliver_now;
    if (d.action == pec::ReceptionAction::take_in_charge && d.delivery && d.delivery->transport_envelope &&
        d.delivery->recipients.size() == 1 && d.delivery->data == raw) {
        auto r = std::find_if(pec_rcpts.begin(), pec_rcpts.end(), [&](const QueuedRecipient& q) {
            return iequals(q.address, d.delivery->recipients[0]);
        });
        if (r != pec_rcpts.end()) deliver_now = *r;
    }
    if (d.delivery && !receipt_copy && !deliver_now) queue_delivery();
    if (!plain_rcpts.empty()) {
        Output::Item item;
        item.envelope = with_recipients(m.envelope, addresses(plain_rcpts));
        item.envelope.session.listener = kStoreStage;
        item.size = raw.size();
        item.is_dsn = m.is_dsn;
        item.id = parts_.spool->link_generated(m.id);
        out.items.push_back(std::move(item));
    }
    std::string quarantined;
    const auto& dc = v.daticert;
    const std::string pec_msgid = dc ? dc->identificativo : "";
    const std::string client_msgid = dc && dc->msgid ? *dc->msgid : "";
    if (d.quarantine) quarantined = quarantine(raw, env, "reception-point", ctx.scan.virus, pec_msgid, client_msgid);

    // Receipts for messages this provider sent: the sender side's tracking (pec.md 5.4),
    // and for a virus notice the avviso di mancata consegna per virus to our user (3.7).
    std::vector<pec::BuiltMessage> virus_notices;
    if (d.action == pec::ReceptionAction::forward_receipt && dc &&
        v.classification.kind == pec::MessageKind::rilevazione_virus) {
        pec::TransactionContext tx;
        tx.time = time;
        tx.provider_domain = settings_.provider_domain;
        tx.provider_name = settings_.provider_name;
        tx.pec_msgid = dc->identificativo;
        tx.client_msgid = client_msgid;
        tx.recipients = dc->destinatari;
        tx.recipient = dc->consegna.value_or("");
        tx.errore = pec::DaticertErrore::virus;
        tx.error_text = dc->errore_esteso.value_or("virus");
        Envelope orig;
        orig.mail_from = dc->mittente;
        for (const auto& r : dc->destinatari) orig.recipients.push_back({r.address, {}, {}});
        auto original = synthetic_original(dc->mittente, dc->oggetto.value_or(""), client_msgid);
        if (!tx.recipient.empty() && is_pec_domain(domain_of(dc->mittente)))
            virus_notices.push_back(
                pec::build_message(pec::MessageKind::mancata_consegna_virus, original, orig, tx, *signer));
    }
    for (const auto& n : virus_notices) add_generated(out, n, false);

    log::Event e;
    e.time = time;
    e.pec_msgid = pec_msgid;
    e.client_msgid = client_msgid;
    if (dc) {
        e.sender = dc->mittente;
        e.recipients = logged(dc->destinatari);
        e.subject = dc->oggetto.value_or("");
    } else {
        e.sender = m.envelope.mail_from;
        for (const auto& r : env.recipients) e.recipients.push_back({r.address, false});
    }
    e.peer_provider = v.provider ? v.provider->name : "";
    e.peer_host = m.envelope.session.client_ip;
    e.tls = tls_of(m.envelope);
    e.outcome = d.reason;
    for (const auto& n : d.notices) e.generated_ids.push_back(n.message_id);
    switch (d.action) {
        case pec::ReceptionAction::take_in_charge:
            e.kind = log::EventKind::take_in_charge;
            break;
        case pec::ReceptionAction::virus:
            e.kind = log::EventKind::virus_detected;
            e.details["virus"] = ctx.scan.virus;
            e.details["quarantine_id"] = quarantined;
            break;
        case pec::ReceptionAction::forward_receipt:
            e.kind = log::EventKind::receipt_received;
            if (v.classification.kind) e.details["receipt"] = std::string(pec::kind_name(*v.classification.kind));
            break;
        case pec::ReceptionAction::anomaly:
            e.kind = log::EventKind::anomaly;
            e.details["error"] = d.reason;
            break;
        case pec::ReceptionAction::reject:
            e.kind = log::EventKind::anomaly;
            e.outcome = "refused: " + d.reason;
            break;
    }

    std::vector<queue::RecipientUpdate> updates;
    std::vector<RecipientResult> results;
    for (const auto& r : due) {
        if (duplicates.count(r.id)) {
            updates.push_back({r.id, queue::RecipientState::delivered, r.attempts + 1, time, "duplicate"});
            results.push_back(done(r, "duplicate of " + seen_key));
            continue;
        }
        auto rej = std::find_if(d.rejected.begin(), d.rejected.end(),
                                [&](const pec::RejectedRecipient& x) { return iequals(x.address, r.address); });
        if (rej != d.rejected.end()) {
            results.push_back({r.id, Outcome::failed, rej->enhanced_status,
                               std::to_string(rej->smtp_code) + " " + rej->enhanced_status + " " + rej->text,
                               {}, false});
            continue;
        }
        updates.push_back({r.id, queue::RecipientState::delivered, r.attempts + 1, time,
                           std::string(pec::to_string(d.action))});
        results.push_back(done(r, std::string(pec::to_string(d.action))));
    }
    const bool log_it = !pec_rcpts.empty();
    auto step = [&](store::Tx& tx) {
        if (!seen_key.empty())
            for (const auto& r : pec_rcpts)
                tx.exec("INSERT INTO pec_received (message_id, recipient, received_us) VALUES (?, ?, ?)",
                        {seen_key, to_lower(r.address), log::to_micros(time)});
        if (log_it) log(tx, e);
        for (const auto& f : d.tracking) tracker_->record_event(tx, f.pec_msgid, f.recipient, f.event, time);
        for (const auto& n : virus_notices) {
            log::Event ve = e;
            ve.kind = log::EventKind::non_delivery_virus;
            ve.generated_ids = {n.message_id};
            ve.details["consegna"] = n.daticert && n.daticert->consegna ? *n.daticert->consegna : "";
            log(tx, ve);
        }
        queue::Spool::apply_updates(tx, m.id, updates);
    };
    if (deliver_now) {
        auto outcome = store_certified(m, data, raw, v, deliver_now->address, delivery_key(m, *deliver_now),
                                       [&](store::Tx& tx) {
                                           out.insert(tx);
                                           step(tx);
                                       });
        if (outcome == store::DeliveryOutcome::stored) {
            out.settle();
        } else {
            // already_stored: an earlier pass stored it with its receipt (only the queue
            // update is missing). Otherwise the delivery stage retries or answers for it.
            if (outcome != store::DeliveryOutcome::already_stored) queue_delivery();
            commit(out, step);
        }
    } else {
        commit_with(out, receipt_copy, queue_delivery, step);
    }
    spdlog::info("pec: reception point: {} {}: {}", m.id, pec_msgid.empty() ? "-" : pec_msgid, d.reason);
    return results;
}

// The delivery point for one recipient whose mailbox should take the message now: the
// ricevuta di avvenuta consegna is built and signed first, then one transaction stores
// the message and runs `also`, the receipt's queue row and the delivery record. Any
// outcome but `stored` leaves nothing behind (the receipt's file is discarded).
store::DeliveryOutcome Engine::store_certified(const QueuedMessage& m, const std::filesystem::path& data,
                                               const std::string& raw, const pec::PecVerification& v,
                                               const std::string& recipient, const std::string& key,
                                               const std::function<void(store::Tx&)>& also) {
    const auto signer = parts_.signer->current();
    pec::DeliveryPointContext ctx{settings_.provider_domain, settings_.provider_name, signer.get(),
                                  parts_.clock->now()};
    auto notice = pec::delivery_notice(raw, v, recipient, pec::StoreOutcome::ok(), ctx);
    Output out(parts_.spool);
    if (notice) add_generated(out, notice->message, false);
    auto e = delivery_event(v, recipient, ctx.time);
    e.kind = log::EventKind::delivery;
    e.outcome = "ok";
    if (notice) {
        e.generated_ids = {notice->message.message_id};
        e.details["receipt"] = std::string(pec::kind_name(notice->kind));
    }
    auto outcome =
        parts_.mail->deliver(recipient, key, data, m.size, m.envelope.mail_from, [&](store::Tx& tx) {
            if (also) also(tx);
            out.insert(tx);
            log(tx, e);
        });
    if (outcome == store::DeliveryOutcome::stored) out.settle();
    return outcome;
}

log::Event Engine::delivery_event(const pec::PecVerification& v, const std::string& recipient,
                                  TimePoint time) const {
    log::Event e;
    e.time = time;
    if (const auto& dc = v.daticert) {
        e.pec_msgid = dc->identificativo;
        e.client_msgid = dc->msgid.value_or("");
        e.sender = dc->mittente;
        e.recipients = logged(dc->destinatari);
        e.subject = dc->oggetto.value_or("");
    }
    e.details["consegna"] = recipient;
    return e;
}

// ---- delivery point (pec.md 5.3) ----

std::vector<RecipientResult> Engine::delivery(const QueuedMessage& m, const std::vector<QueuedRecipient>& due,
                                              const std::filesystem::path& data, const std::string& raw) {
    pec::VerifyOptions vo;
    const auto trust = parts_.trust ? parts_.trust->current() : nullptr;
    vo.trust = trust.get();
    vo.index = parts_.index;
    auto v = pec::verify_message(raw, vo);
    std::vector<RecipientResult> results;
    for (const auto& r : due) {
        auto acceptance = parts_.mail->may_receive(r.address, m.size);
        if (acceptance == store::Acceptance::over_quota) {
            results.push_back(mailbox_full(r));
            continue;
        }
        if (acceptance == store::Acceptance::accept) {
            auto outcome =
                store_certified(m, data, raw, v, r.address, delivery_key(m, r), [&](store::Tx& tx) {
                    queue::Spool::apply_updates(tx, m.id,
                                                {{r.id, queue::RecipientState::delivered, r.attempts + 1,
                                                  parts_.clock->now(), "stored"}});
                });
            if (outcome == store::DeliveryOutcome::stored) {
                results.push_back(done(r, "250 2.0.0 stored"));
                continue;
            }
            if (outcome == store::DeliveryOutcome::already_stored) {
                // Stored (with its receipt) by an earlier attempt that crashed before
                // the queue row was read back: nothing more to do.
                results.push_back({r.id, Outcome::delivered, "2.0.0", "already stored", {}, false});
                continue;
            }
            if (outcome == store::DeliveryOutcome::over_quota) {
                results.push_back(mailbox_full(r));
                continue;
            }
            acceptance = outcome == store::DeliveryOutcome::unknown_mailbox ? store::Acceptance::unknown_mailbox
                                                                              : store::Acceptance::not_active;
        }
        // Not deliverable: the avviso di mancata consegna (pec.md 3.9) instead of a DSN.
        pec::StoreOutcome so;
        so.stored = false;
        so.unknown_mailbox = acceptance == store::Acceptance::unknown_mailbox;
        so.enhanced_status = so.unknown_mailbox ? "5.1.1" : "5.2.1";
        so.text = so.unknown_mailbox ? "casella inesistente (no such mailbox)"
                                     : "casella non attiva (mailbox not active)";
        const auto signer = parts_.signer->current();
        pec::DeliveryPointContext ctx{settings_.provider_domain, settings_.provider_name, signer.get(),
                                      parts_.clock->now()};
        auto notice = pec::delivery_notice(raw, v, r.address, so, ctx);
        Output out(parts_.spool);
        if (notice) add_generated(out, notice->message, false);
        auto e = delivery_event(v, r.address, ctx.time);
        e.kind = log::EventKind::non_delivery;
        e.outcome = so.enhanced_status + " " + so.text;
        if (notice) e.generated_ids = {notice->message.message_id};
        queue::RecipientUpdate upd{r.id, queue::RecipientState::failed, r.attempts + 1, ctx.time, e.outcome};
        commit(out, [&](store::Tx& tx) {
            log(tx, e);
            queue::Spool::apply_updates(tx, m.id, {upd});
        });
        results.push_back({r.id, Outcome::failed, so.enhanced_status, e.outcome, {}, true});
    }
    return results;
}

// ---- sender-side timers (pec.md 5.4) ----

std::size_t Engine::purge_received(TimePoint now) {
    const auto before = log::to_micros(now - kReceivedMemory);
    std::size_t purged = 0;
    // In batches, each its own short transaction: a purge after a long pause must not
    // hold the writers of the queue for long.
    for (;;) {
        std::size_t n = 0;
        parts_.spool->database().transact([&](store::Tx& tx) {
            n = static_cast<std::size_t>(tx.exec(
                "DELETE FROM pec_received WHERE (message_id, recipient) IN (SELECT message_id, recipient"
                " FROM pec_received WHERE received_us < ? LIMIT 1000)",
                {before}));
        });
        purged += n;
        if (n < 1000) return purged;
    }
}

std::size_t Engine::run_timers_once() {
    auto now = parts_.clock->now();
    if (auto n = purge_received(now))
        spdlog::info("pec: {} reception record(s) older than {} days purged", n,
                     kReceivedMemory.count() / 24);
    tracker_->due(now);
    std::vector<std::string> queued;
    std::size_t n = tracker_->drain(now, [&](store::Tx& tx, const pec::tracking::Notice& notice) {
        auto kind = notice.kind == pec::tracking::NoticeKind::timeout_12h ? pec::MessageKind::mancata_consegna_timeout_12h
                                                                          : pec::MessageKind::mancata_consegna_timeout_24h;
        pec::TransactionContext ctx;
        ctx.time = now;
        ctx.provider_domain = settings_.provider_domain;
        ctx.provider_name = settings_.provider_name;
        ctx.pec_msgid = notice.pec_msgid;
        ctx.client_msgid = notice.client_msgid;
        ctx.recipients = {{notice.recipient, pec::RecipientType::certificato}};
        ctx.recipient = notice.recipient;
        Envelope orig;
        orig.mail_from = notice.sender;
        orig.recipients.push_back({notice.recipient, {}, {}});
        auto built =
            pec::build_message(kind, synthetic_original(notice.sender, notice.subject, notice.client_msgid),
                               orig, ctx, *parts_.signer->current());
        Output out(parts_.spool);
        add_generated(out, built, false);
        // This transaction is the tracker's, not a group-commit round: it syncs msg/ itself.
        parts_.spool->sync_generated();
        out.insert(tx);
        log::Event e;
        e.kind = notice.kind == pec::tracking::NoticeKind::timeout_12h ? log::EventKind::timeout_12h
                                                                       : log::EventKind::timeout_24h;
        e.time = now;
        e.pec_msgid = notice.pec_msgid;
        e.client_msgid = notice.client_msgid;
        e.sender = notice.sender;
        e.recipients = {{notice.recipient, true}};
        e.subject = notice.subject;
        e.generated_ids = {built.message_id};
        e.outcome = "ok";
        e.details["consegna"] = notice.recipient;
        log(tx, e);
        // The files are referenced once this transaction commits; if it rolls back the
        // next open removes them.
        out.committed = true;
        for (auto& id : out.ids()) queued.push_back(id);
    });
    parts_.spool->notify(queued);
    if (n) spdlog::info("pec: {} timeout notice(s) queued", n);
    return n;
}

void Engine::start() {
    std::lock_guard lock(timer_mutex_);
    if (timer_thread_.joinable()) return;
    stopping_ = false;
    timer_thread_ = std::thread([this] { timer_loop(); });
}

void Engine::stop() {
    {
        std::lock_guard lock(timer_mutex_);
        stopping_ = true;
    }
    timer_cv_.notify_all();
    if (timer_thread_.joinable()) timer_thread_.join();
}

void Engine::timer_loop() {
    for (;;) {
        try {
            run_timers_once();
        } catch (const std::exception& e) {
            spdlog::warn("pec: timers: {}", e.what());
        }
        std::unique_lock lock(timer_mutex_);
        timer_cv_.wait_for(lock, settings_.timer_interval, [&] { return stopping_; });
        if (stopping_) return;
    }
}

}  // namespace pecd::provider
