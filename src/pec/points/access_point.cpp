// access_point.cpp - the access point's decision on one submitted message (pec.md 5.1)
//
// See access_point.hpp for the contract. Every built message takes the same
// TransactionContext time, so the receipt, the envelope and the log agree (pec.md 2.6).
#include "pec/points/access_point.hpp"

#include "core/error.hpp"
#include "core/strings.hpp"

namespace pecd::pec {
namespace {

TransactionContext base_context(const AccessPointContext& ctx) {
    TransactionContext tx;
    tx.time = ctx.time;
    tx.provider_domain = ctx.provider_domain;
    tx.provider_name = ctx.provider_name;
    tx.pec_msgid = ctx.pec_msgid;
    return tx;
}

// To + Cc, first spelling kept, duplicates (case-insensitive) collapsed.
std::vector<DaticertRecipient> classified_recipients(const SubmissionInfo& info,
                                                     const index::ProviderLookup* index) {
    std::vector<DaticertRecipient> out;
    auto add = [&](const std::vector<MailboxAddress>& list) {
        for (const auto& m : list) {
            bool seen = false;
            for (const auto& r : out) seen = seen || iequals(r.address, m.address);
            if (!seen) out.push_back({m.address, classify_recipient(m.address, index)});
        }
    };
    add(info.to);
    add(info.cc);
    return out;
}

AccessLogFacts log_facts(std::string event, const AccessPointContext& ctx, const SubmissionInfo& info,
                         const Envelope& envelope) {
    AccessLogFacts log;
    log.event = std::move(event);
    log.pec_msgid = ctx.pec_msgid;
    log.client_msgid = info.client_msgid;
    log.sender = info.from.address.empty() ? envelope.mail_from : info.from.address;
    log.subject = info.subject;
    return log;
}

AccessDecision refuse(const Envelope& envelope, std::string_view auth_user, std::string_view message,
                      const AccessPointContext& ctx, const FormalResult& formal) {
    AccessDecision d;
    d.formal = formal.code;
    bool virus = formal.ok();
    d.quarantine = virus;
    MessageKind kind = virus ? MessageKind::non_accettazione_virus : MessageKind::non_accettazione;
    auto tx = base_context(ctx);
    tx.error_text = virus ? "Virus rilevato (virus found): " + ctx.scan.virus : formal.reason;
    tx.recipients = classified_recipients(formal.info, ctx.index);
    // The notice goes to whoever submitted: the authenticated identity when there is one
    // (a forged MAIL FROM must not receive it), otherwise the reverse path.
    Envelope notice_env = envelope;
    if (!auth_user.empty()) notice_env.mail_from = std::string(auth_user);
    if (notice_env.mail_from.empty()) throw Error("access point: no sender to notify of the non-acceptance");
    d.receipt = build_message(kind, message, notice_env, tx, *ctx.signer);
    d.log = log_facts(std::string(kind_name(kind)), ctx, formal.info, envelope);
    d.log.recipients = tx.recipients;
    d.log.reason = virus ? ctx.scan.virus : std::string(to_string(formal.code)) + ": " + formal.reason;
    d.log.generated_ids = {d.receipt.message_id};
    return d;
}

}  // namespace

RecipientType classify_recipient(std::string_view address, const index::ProviderLookup* index) {
    auto at = address.rfind('@');
    if (!index || at == std::string_view::npos) return RecipientType::esterno;
    return index->by_domain(to_lower(address.substr(at + 1))) ? RecipientType::certificato
                                                              : RecipientType::esterno;
}

AccessDecision accept_submission(const Envelope& envelope, std::string_view auth_user,
                                 std::string_view message, const AccessPointContext& ctx) {
    if (!ctx.signer) throw Error("access point: no signing identity configured");
    auto formal = check_submission(envelope, auth_user, message, ctx.limits);
    if (!formal.ok() || ctx.scan.infected) return refuse(envelope, auth_user, message, ctx, formal);

    AccessDecision d;
    d.accepted = true;
    auto tx = base_context(ctx);
    tx.client_msgid = formal.info.client_msgid;
    tx.recipients = classified_recipients(formal.info, ctx.index);
    if (formal.info.receipt_type_given) tx.requested_receipt = formal.info.receipt_type;
    d.transport = build_message(MessageKind::transport_envelope, message, envelope, tx, *ctx.signer);
    d.receipt = build_message(MessageKind::accettazione, message, envelope, tx, *ctx.signer);
    for (const auto& r : tx.recipients)
        if (r.type == RecipientType::certificato) d.tracked_recipients.push_back(r.address);
    d.log = log_facts("accettazione", ctx, formal.info, envelope);
    d.log.recipients = tx.recipients;
    d.log.generated_ids = {d.receipt.message_id, d.transport->message_id};
    return d;
}

}  // namespace pecd::pec
