// delivery_point.cpp - the delivery point's notice after storing one message (pec.md 5.3)
//
// See delivery_point.hpp for the contract.
#include "pec/points/delivery_point.hpp"

#include "core/error.hpp"
#include "core/strings.hpp"
#include "mime/mime.hpp"
#include "pec/points/reception_point.hpp"

namespace pecd::pec {
namespace {

bool listed_in(const mime::SplitMessage& m, std::string_view field, std::string_view address) {
    for (const auto& f : m.fields)
        if (iequals(f.name, field))
            for (const auto& a : mime::parse_addresses(f.value()))
                if (iequals(a.address, address)) return true;
    return false;
}

// Only Cc: when the original's Cc lists the recipient and its To does not; anything
// unclear counts as primary so the sender gets the fuller receipt (pec.md 3.8).
bool cc_only(std::string_view original, std::string_view recipient) {
    auto m = mime::split_message(original);
    return listed_in(m, "Cc", recipient) && !listed_in(m, "To", recipient);
}

std::string error_text(const StoreOutcome& o) {
    if (o.enhanced_status.empty()) return o.text;
    if (o.text.empty()) return o.enhanced_status;
    return o.enhanced_status + " - " + o.text;
}

}  // namespace

MessageKind receipt_kind_for(ReceiptType requested, bool only_cc) noexcept {
    return only_cc ? MessageKind::consegna_sintetica : consegna_kind(requested);
}

std::optional<DeliveryNotice> delivery_notice(std::string_view raw, const PecVerification& v,
                                              std::string_view recipient, const StoreOutcome& outcome,
                                              const DeliveryPointContext& ctx) {
    if (!v.valid() || !v.daticert || v.classification.kind != MessageKind::transport_envelope)
        return std::nullopt;
    if (!ctx.signer) throw Error("delivery point: no signing identity configured");
    const auto& d = *v.daticert;
    auto original = extract_postacert(raw).value_or(std::string(raw));
    Envelope env;
    env.mail_from = d.mittente;
    for (const auto& r : d.destinatari) env.recipients.push_back({r.address, {}, {}});
    TransactionContext tx;
    tx.time = ctx.time;
    tx.provider_domain = ctx.provider_domain;
    tx.provider_name = ctx.provider_name;
    tx.pec_msgid = d.identificativo;
    tx.client_msgid = d.msgid.value_or("");
    tx.recipients = d.destinatari;
    tx.recipient = std::string(recipient);
    MessageKind kind;
    if (outcome.stored) {
        kind = receipt_kind_for(d.ricevuta.value_or(ReceiptType::completa), cc_only(original, recipient));
    } else {
        kind = MessageKind::mancata_consegna;
        tx.errore = outcome.unknown_mailbox ? DaticertErrore::no_dest : DaticertErrore::altro;
        tx.error_text = error_text(outcome);
        if (tx.error_text.empty()) tx.error_text = "consegna non riuscita (delivery failed)";
    }
    return DeliveryNotice{kind, build_message(kind, original, env, tx, *ctx.signer)};
}

}  // namespace pecd::pec
