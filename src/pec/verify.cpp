// verify.cpp - signature, chain, index and header/daticert verdicts for one message
#include "pec/verify.hpp"

#include "core/error.hpp"
#include "core/strings.hpp"

namespace pecd::pec {
namespace {

std::string norm(std::string_view v) {
    return to_lower(trim(v));
}

// "<id@host>" and "id@host" compare equal; case is kept (Message-IDs are case-sensitive).
std::string bare_id(std::string_view v) {
    v = trim(v);
    if (v.size() >= 2 && v.front() == '<' && v.back() == '>') v = trim(v.substr(1, v.size() - 2));
    return std::string(v);
}

Check verdict(bool ok, std::string detail) {
    return {ok ? Verdict::pass : Verdict::fail, std::move(detail)};
}

void check_signature(PecVerification& r, const crypto::SmimeVerification& s) {
    if (s.parts.status != crypto::SmimeStatus::ok) {
        r.signature = {Verdict::fail, std::string(to_string(s.parts.status)) + ": " + s.parts.finding};
        return;
    }
    r.signature = s.cms.signature_ok
                      ? Check{Verdict::pass, "signature intact (" + s.cms.digest_name + ")"}
                      : Check{Verdict::fail, s.cms.error.empty() ? "signature does not match" : s.cms.error};
    if (s.cms.signer) {
        r.signer_subject = crypto::certificate_subject(s.cms.signer.get());
        r.signer_sha1 = crypto::certificate_sha1_hex(s.cms.signer.get());
    }
    if (!s.cms.chain_checked)
        r.chain = {Verdict::not_checked,
                   s.cms.signer ? "no trust store configured" : "no signer certificate"};
    else
        r.chain = verdict(s.cms.chain_ok, s.cms.chain_ok ? "signer chains to the trust store" : s.cms.error);
}

void check_index(PecVerification& r, const crypto::SmimeVerification& s, const VerifyOptions& o) {
    if (!o.index) {
        r.provider_check = {Verdict::not_checked, "no provider index configured"};
        r.from_domain = {Verdict::not_checked, "no provider index configured"};
        return;
    }
    if (!s.cms.signer) {
        r.provider_check = {Verdict::fail, "no signer certificate to look up in the index"};
        r.from_domain = {Verdict::not_checked, "no signer provider"};
        return;
    }
    r.provider = o.index->by_certificate(s.cms.signer.get());
    if (!r.provider) {
        r.provider_check = {Verdict::fail, "signer certificate (SHA-1 " + r.signer_sha1 +
                                               ") is not a provider certificate in the index"};
        r.from_domain = {Verdict::not_checked, "no signer provider"};
        return;
    }
    r.provider_check = {Verdict::pass, "signed by provider " + r.provider->name};
    if (!o.check_from_domain) {
        r.from_domain = {Verdict::not_checked, "From domain check switched off"};
        return;
    }
    auto domain = domain_of(r.facts.headers.from_address);
    if (domain.empty()) {
        r.from_domain = {Verdict::fail, "From: has no usable address (\"" + r.facts.headers.from + "\")"};
        return;
    }
    auto owner = o.index->by_domain(domain);
    if (!owner)
        r.from_domain = {Verdict::fail, "From: domain " + domain + " is not a PEC domain in the index"};
    else if (owner->dn != r.provider->dn)
        r.from_domain = {Verdict::fail, "From: domain " + domain + " belongs to " + owner->name +
                                            ", not to the signer's provider " + r.provider->name};
    else
        r.from_domain = {Verdict::pass, "From: domain " + domain + " is managed by " + owner->name};
}

void subject_warning(PecVerification& r) {
    if (!r.classification.kind) return;
    auto prefix = subject_prefix(*r.classification.kind);
    // Never decisive: mailing lists and forwards change the Subject (pec.md 2.4).
    if (r.facts.headers.subject.find(prefix) == std::string::npos)
        r.warnings.push_back("Subject does not contain the prefix \"" + std::string(trim(prefix)) + "\"");
}

}  // namespace

std::string_view to_string(Verdict v) noexcept {
    switch (v) {
        case Verdict::pass:
            return "pass";
        case Verdict::fail:
            return "fail";
        case Verdict::not_checked:
            return "not-checked";
    }
    return "unknown";
}

bool PecVerification::valid() const noexcept {
    auto ok = [](const Check& c) { return c.verdict != Verdict::fail; };
    return classification.kind.has_value() && !classification.malformed() &&
           signature.verdict == Verdict::pass && ok(chain) && ok(provider_check) && ok(from_domain) &&
           consistency.verdict == Verdict::pass;
}

std::vector<std::string> header_inconsistencies(const PecHeaders& h, const MessageContent& content,
                                                const Daticert& d, std::optional<MessageKind> kind) {
    std::vector<std::string> out;
    const std::string tipo(to_string(d.tipo));
    if (h.x_ricevuta && norm(*h.x_ricevuta) != tipo)
        out.push_back("X-Ricevuta is \"" + std::string(trim(*h.x_ricevuta)) +
                      "\" but daticert postacert@tipo is \"" + tipo + "\"");
    if (h.x_trasporto) {
        auto t = norm(*h.x_trasporto);
        if (t == "posta-certificata" && d.tipo != DaticertTipo::posta_certificata)
            out.push_back("X-Trasporto is posta-certificata but daticert postacert@tipo is \"" + tipo + "\"");
        if (t == "errore")
            out.push_back("X-Trasporto is errore (anomaly envelope) but the message carries daticert.xml");
    }
    if (!h.x_trasporto && !h.x_ricevuta)
        out.push_back("daticert postacert@tipo is \"" + tipo +
                      "\" but neither X-Trasporto nor X-Ricevuta is present");
    if (d.tipo == DaticertTipo::posta_certificata && h.x_ricevuta && !h.x_trasporto)
        out.push_back(
            "daticert says posta-certificata (transport envelope) but the message has no X-Trasporto");

    if (h.x_riferimento_message_id && d.msgid) {
        if (bare_id(*h.x_riferimento_message_id) != bare_id(*d.msgid))
            out.push_back("X-Riferimento-Message-ID is " + std::string(trim(*h.x_riferimento_message_id)) +
                          " but daticert msgid is " + *d.msgid);
    } else if (d.msgid && !bare_id(*d.msgid).empty()) {
        out.push_back("X-Riferimento-Message-ID is missing but daticert msgid is " + *d.msgid);
    } else if (h.x_riferimento_message_id && !bare_id(*h.x_riferimento_message_id).empty()) {
        out.push_back("X-Riferimento-Message-ID is " + std::string(trim(*h.x_riferimento_message_id)) +
                      " but daticert has no msgid");
    }

    bool virus_kind = d.tipo == DaticertTipo::non_accettazione || d.tipo == DaticertTipo::errore_consegna;
    bool header_virus = h.x_verifica_sicurezza && norm(*h.x_verifica_sicurezza) == "errore";
    if (h.x_verifica_sicurezza && !header_virus)
        out.push_back("X-VerificaSicurezza is \"" + std::string(trim(*h.x_verifica_sicurezza)) +
                      "\"; the only defined value is errore");
    if (header_virus && !(virus_kind && d.errore == DaticertErrore::virus))
        out.push_back("X-VerificaSicurezza: errore but daticert is tipo=\"" + tipo + "\" errore=\"" +
                      std::string(to_string(d.errore)) + "\" (expected errore=\"virus\")");
    if (!h.x_verifica_sicurezza && virus_kind && d.errore == DaticertErrore::virus)
        out.push_back("daticert says errore=\"virus\" but X-VerificaSicurezza: errore is missing");

    if (h.x_tipo_ricevuta && d.tipo == DaticertTipo::posta_certificata && d.ricevuta &&
        norm(*h.x_tipo_ricevuta) != to_string(*d.ricevuta))
        out.push_back("X-TipoRicevuta is \"" + std::string(trim(*h.x_tipo_ricevuta)) +
                      "\" but daticert ricevuta tipo is \"" + std::string(to_string(*d.ricevuta)) + "\"");

    if (d.tipo == DaticertTipo::posta_certificata) {
        if (bare_id(h.message_id) != d.identificativo)
            out.push_back("envelope Message-ID " + h.message_id + " differs from daticert identificativo " +
                          d.identificativo);
        if (content.has_postacert && !content.postacert_message_id.empty() &&
            bare_id(content.postacert_message_id) != d.identificativo)
            out.push_back("postacert.eml Message-ID <" + content.postacert_message_id +
                          "> differs from daticert identificativo " + d.identificativo);
    }
    if (h.x_mittente && kind == MessageKind::rilevazione_virus && !iequals(trim(*h.x_mittente), d.mittente))
        out.push_back("X-Mittente is " + std::string(trim(*h.x_mittente)) + " but daticert mittente is " +
                      d.mittente);
    for (auto& name : h.duplicated) out.push_back(name + " appears more than once with different values");
    return out;
}

PecVerification verify_message(std::string_view raw, const VerifyOptions& o) {
    PecVerification r;
    auto top = crypto::split_entity(raw);
    r.facts.headers = read_pec_headers(top.headers);
    auto smime = crypto::smime_verify(raw, o.trust);
    r.facts.smime = smime.parts;
    r.cms = smime.cms;
    // Not multipart/signed: the PEC parts are looked for in the message itself, so an
    // unsigned fake is still classified (and fails the signature verdict).
    r.facts.content = read_content(smime.parts.signed_part.empty() ? raw : smime.parts.signed_part);
    r.warnings = smime.parts.warnings;

    if (r.facts.content.has_daticert) {
        try {
            r.daticert = parse_daticert(r.facts.content.daticert_xml);
        } catch (const std::exception& e) {
            r.daticert_error = e.what();
        }
    }
    ClassifyInput in;
    in.x_trasporto = r.facts.headers.x_trasporto;
    in.x_ricevuta = r.facts.headers.x_ricevuta;
    in.x_verifica_sicurezza = r.facts.headers.x_verifica_sicurezza;
    in.multipart_signed = smime.parts.content_type == "multipart/signed";
    in.has_daticert = r.facts.content.has_daticert;
    in.daticert = r.daticert;
    in.daticert_error = r.daticert_error;
    in.has_postacert = r.facts.content.has_postacert;
    in.text = r.facts.content.text;
    r.classification = classify(in);

    check_signature(r, smime);
    check_index(r, smime, o);

    if (r.daticert) {
        r.inconsistencies =
            header_inconsistencies(r.facts.headers, r.facts.content, *r.daticert, r.classification.kind);
        r.consistency =
            r.inconsistencies.empty()
                ? Check{Verdict::pass, "headers agree with daticert.xml"}
                : Check{Verdict::fail, std::to_string(r.inconsistencies.size()) + " inconsistencies"};
    } else if (r.classification.kind == MessageKind::anomaly_envelope) {
        r.consistency = {Verdict::pass, "anomaly envelope: no daticert.xml to compare"};
    } else {
        r.consistency = {Verdict::not_checked,
                         r.facts.content.has_daticert ? "daticert.xml does not parse" : "no daticert.xml"};
    }
    subject_warning(r);
    return r;
}

}  // namespace pecd::pec
