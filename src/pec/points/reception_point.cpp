// reception_point.cpp - the reception point's decision on one incoming message (pec.md 5.2)
//
// See reception_point.hpp for the contract. Decisions rest on the verification verdicts
// and the signed daticert.xml, never on unsigned headers alone.
#include "pec/points/reception_point.hpp"

#include "core/error.hpp"
#include "core/strings.hpp"
#include "crypto/smime.hpp"
#include "mime/mime.hpp"

namespace pecd::pec {
namespace {

std::vector<std::string> rcpt_addresses(const Envelope& env) {
    std::vector<std::string> out;
    for (const auto& r : env.recipients) out.push_back(r.address);
    return out;
}

TransactionContext base_context(const ReceptionContext& ctx) {
    TransactionContext tx;
    tx.time = ctx.time;
    tx.provider_domain = ctx.provider_domain;
    tx.provider_name = ctx.provider_name;
    return tx;
}

// The certified envelope and transaction of a received transport envelope, as its
// signed daticert.xml states them (the SMTP envelope of the hop is not the certified one).
struct CertifiedOriginal {
    Envelope envelope;
    TransactionContext tx;
    std::string original;  // postacert.eml (Subject, Reply-To for the notices)
};

CertifiedOriginal certified_original(std::string_view raw, const Daticert& d, const ReceptionContext& ctx) {
    CertifiedOriginal c;
    c.envelope.mail_from = d.mittente;
    for (const auto& r : d.destinatari) c.envelope.recipients.push_back({r.address, {}, {}});
    c.tx = base_context(ctx);
    c.tx.pec_msgid = d.identificativo;
    c.tx.client_msgid = d.msgid.value_or("");
    c.tx.recipients = d.destinatari;
    c.tx.requested_receipt = d.ricevuta;
    c.original = extract_postacert(raw).value_or(std::string(raw));
    return c;
}

std::optional<tracking::EventType> tracking_event(MessageKind k) {
    switch (k) {
        case MessageKind::presa_in_carico:
            return tracking::EventType::presa_in_carico;
        case MessageKind::consegna_completa:
        case MessageKind::consegna_breve:
        case MessageKind::consegna_sintetica:
            return tracking::EventType::delivered;
        case MessageKind::mancata_consegna:
            return tracking::EventType::non_delivery;
        case MessageKind::mancata_consegna_virus:
        case MessageKind::rilevazione_virus:
            return tracking::EventType::virus;
        default:
            return std::nullopt;
    }
}

std::string notify_address(const PecVerification& v) {
    if (!v.provider || v.provider->mail_receipt.empty())
        throw Error("reception point: the sender provider has no mailReceipt in the index");
    return v.provider->mail_receipt;
}

void on_transport_envelope(std::string_view raw, const Envelope& env, const PecVerification& v,
                           const ReceptionContext& ctx, ReceptionDecision& d) {
    auto c = certified_original(raw, *v.daticert, ctx);
    c.tx.notify_address = notify_address(v);
    if (ctx.scan.infected) {
        d.action = ReceptionAction::virus;
        d.quarantine = true;
        d.reason = "virus: " + ctx.scan.virus;
        for (const auto& r : env.recipients) {
            auto tx = c.tx;
            tx.recipient = r.address;
            tx.error_text = "Virus rilevato (virus found): " + ctx.scan.virus;
            d.notices.push_back(
                build_message(MessageKind::rilevazione_virus, c.original, c.envelope, tx, *ctx.signer));
        }
        return;
    }
    d.action = ReceptionAction::take_in_charge;
    d.reason = "busta-trasporto";
    c.tx.covered = rcpt_addresses(env);
    d.notices.push_back(
        build_message(MessageKind::presa_in_carico, c.original, c.envelope, c.tx, *ctx.signer));
    d.delivery = LocalDelivery{std::string(raw), rcpt_addresses(env), false, true};
}

void on_receipt(std::string_view raw, const Envelope& env, const PecVerification& v, ReceptionDecision& d) {
    auto kind = *v.classification.kind;
    d.action = ReceptionAction::forward_receipt;
    d.reason = std::string(kind_name(kind));
    d.delivery = LocalDelivery{std::string(raw), rcpt_addresses(env), addressed_to_provider(kind), false};
    auto event = tracking_event(kind);
    if (!event) return;
    const auto& dc = *v.daticert;
    if (dc.consegna) d.tracking.push_back({*event, dc.identificativo, *dc.consegna});
    if (kind == MessageKind::presa_in_carico)
        for (const auto& r : dc.ricezione) d.tracking.push_back({*event, dc.identificativo, r});
}

std::string problems_text(const PecVerification& v) {
    std::string out;
    auto add = [&](std::string_view s) {
        if (s.empty()) return;
        if (!out.empty()) out += "; ";
        out += s;
    };
    for (const auto& p : v.classification.problems) add(p);
    for (const auto& i : v.inconsistencies) add(i);
    for (const Check* c : {&v.signature, &v.chain, &v.provider_check, &v.from_domain})
        if (c->verdict == Verdict::fail) add(c->detail);
    if (out.empty()) add(v.classification.kind ? "messaggio PEC inatteso (unexpected PEC message)" : "");
    return out;
}

void on_anomaly(std::string_view raw, const Envelope& env, const ReceptionContext& ctx, std::string error,
                std::vector<std::string> recipients, ReceptionDecision& d) {
    d.action = ReceptionAction::anomaly;
    auto tx = base_context(ctx);
    tx.error_text = std::move(error);
    Envelope anomaly_env = env;
    anomaly_env.recipients.clear();
    for (auto& r : recipients) anomaly_env.recipients.push_back({r, {}, {}});
    auto built = build_message(MessageKind::anomaly_envelope, raw, anomaly_env, tx, *ctx.signer);
    d.delivery = LocalDelivery{std::move(built.data), std::move(recipients), false, false};
}

}  // namespace

std::string_view to_string(ReceptionAction a) noexcept {
    switch (a) {
        case ReceptionAction::take_in_charge:
            return "presa-in-carico";
        case ReceptionAction::virus:
            return "rilevazione-virus";
        case ReceptionAction::forward_receipt:
            return "inoltro-ricevuta";
        case ReceptionAction::anomaly:
            return "busta-anomalia";
        default:
            return "rifiuto";
    }
}

ReceptionDecision receive_message(std::string_view raw, const Envelope& envelope, const PecVerification& v,
                                  const ReceptionContext& ctx) {
    if (!ctx.signer) throw Error("reception point: no signing identity configured");
    ReceptionDecision d;
    if (v.valid() && v.daticert && v.classification.kind) {
        if (*v.classification.kind == MessageKind::transport_envelope)
            on_transport_envelope(raw, envelope, v, ctx, d);
        else if (*v.classification.kind != MessageKind::anomaly_envelope)
            on_receipt(raw, envelope, v, d);
        else
            on_anomaly(raw, envelope, ctx, "busta di anomalia ricevuta (anomaly envelope received)",
                       rcpt_addresses(envelope), d);
        return d;
    }
    if (v.provider_check.verdict == Verdict::pass) {
        // A provider signed it, so it is PEC traffic gone wrong: always delivered as an
        // anomaly, whatever the ordinary-mail policy.
        d.reason = "malformed: " + problems_text(v);
        on_anomaly(raw, envelope, ctx, problems_text(v), rcpt_addresses(envelope), d);
        return d;
    }
    std::vector<std::string> accepting;
    for (const auto& r : envelope.recipients) {
        if (!ctx.accepts_ordinary || ctx.accepts_ordinary(r.address))
            accepting.push_back(r.address);
        else
            d.rejected.push_back(
                {r.address, 550, "5.7.1",
                 "casella PEC che non accetta posta ordinaria (PEC mailbox refuses ordinary mail)"});
    }
    d.reason = "posta-ordinaria";
    if (accepting.empty()) {
        d.action = ReceptionAction::reject;
        return d;
    }
    on_anomaly(raw, envelope, ctx, "messaggio di posta ordinaria (ordinary mail, not certified)",
               std::move(accepting), d);
    return d;
}

std::optional<std::string> extract_postacert(std::string_view raw) {
    auto smime = crypto::smime_locate(raw);
    std::string_view entity = smime.status == crypto::SmimeStatus::ok ? smime.signed_part : raw;
    auto split = mime::split_message(entity);
    auto ct_value = split.value("Content-Type");
    if (!ct_value) return std::nullopt;
    auto ct = mime::content_type(*ct_value);
    if (ct.type != "multipart" || ct.boundary.empty()) return std::nullopt;
    const std::string delim = "--" + ct.boundary;
    std::string_view body = split.body;
    // Direct children only: postacert.eml is a child of the content root (pec.md 2.1).
    std::size_t pos = 0;
    auto at_line_start = [&](std::size_t p) { return p == 0 || body[p - 1] == '\n'; };
    std::vector<std::size_t> starts;
    while ((pos = body.find(delim, pos)) != std::string_view::npos) {
        if (at_line_start(pos)) starts.push_back(pos);
        pos += delim.size();
    }
    for (std::size_t i = 0; i + 1 < starts.size(); ++i) {
        auto begin = body.find('\n', starts[i]);
        if (begin == std::string_view::npos || begin >= starts[i + 1]) continue;
        ++begin;
        auto end = starts[i + 1];
        // The line end before the next delimiter belongs to the delimiter (RFC 2046 5.1.1).
        if (end > begin && body[end - 1] == '\n') --end;
        if (end > begin && body[end - 1] == '\r') --end;
        auto part = mime::split_message(body.substr(begin, end - begin));
        auto pct = part.value("Content-Type");
        if (!pct || !mime::content_type(*pct).is("message", "rfc822")) continue;
        // message/rfc822 may only be 7bit/8bit/binary (RFC 2046 5.2.1): no decoding needed.
        return std::string(part.body);
    }
    return std::nullopt;
}

}  // namespace pecd::pec
