// verified_pec_view.cpp - verification verdicts and legal-log history (see verified_pec_view.hpp)
#include "api/verified_pec_view.hpp"

#include <algorithm>
#include <set>

#include "pec/classify.hpp"
#include "pec/verify.hpp"

namespace pecd::api {

Verdict VerifiedPecView::verify(std::string_view raw, const MessageHeaders& h) const {
    if (h.pec_type == "ordinary")
        return {"not-pec", "the message has neither X-Trasporto nor X-Ricevuta: it is not a PEC message", {}};
    pec::VerifyOptions o;
    const auto trust = trust_.current();
    o.trust = trust.get();
    o.index = index_;
    auto r = pec::verify_message(raw, o);
    Verdict v;
    v.verdict = r.valid() ? "valid" : "invalid";
    std::vector<std::string> failed;
    auto check = [&](const char* name, const pec::Check& c) {
        v.details[name] = std::string(pec::to_string(c.verdict));
        if (c.verdict == pec::Verdict::fail) failed.push_back(std::string(name) + ": " + c.detail);
    };
    check("signature", r.signature);
    check("chain", r.chain);
    check("provider", r.provider_check);
    check("from_domain", r.from_domain);
    check("consistency", r.consistency);
    v.details["type"] = pec::classification_name(r.classification);
    if (!r.signer_subject.empty()) v.details["signer"] = r.signer_subject;
    if (r.provider) v.details["provider_name"] = r.provider->name;
    if (r.daticert) v.details["identificativo"] = r.daticert->identificativo;
    for (const auto& p : r.classification.problems) failed.push_back(p);
    for (const auto& p : r.inconsistencies) failed.push_back(p);
    if (!r.daticert_error.empty()) failed.push_back("daticert: " + r.daticert_error);
    if (r.valid()) {
        v.reason = "signed by a provider of the index, chain and daticert verified";
    } else {
        for (const auto& f : failed) v.reason += (v.reason.empty() ? "" : "; ") + f;
        if (v.reason.empty()) v.reason = "not a valid PEC message";
    }
    return v;
}

std::vector<PecEventInfo> VerifiedPecView::history(const MessageHeaders& h) const {
    // A transport envelope (or an anomaly envelope) carries the PEC id as its own
    // Message-ID; receipts and notices name it in X-Riferimento-Message-ID.
    std::set<std::string> ids;
    if (h.pec_type == "posta-certificata" || h.pec_type == "errore") {
        if (!h.message_id.empty()) ids.insert(h.message_id);
    } else if (h.pec_type != "ordinary" && !h.pec_ref.empty()) {
        ids.insert(h.pec_ref);
    }
    std::vector<std::pair<std::int64_t, PecEventInfo>> found;
    std::set<std::int64_t> seen;
    for (const auto& id : ids) {
        log::SearchQuery q;
        q.message_id = id;
        q.limit = 200;
        for (const auto& r : log_.search(q)) {
            if (!seen.insert(r.seq).second) continue;
            auto e = log::parse_record(r.record).event;
            if (e.kind == log::EventKind::api_audit) continue;
            PecEventInfo info;
            info.kind = std::string(log::to_string(e.kind));
            info.time = log::format_utc(e.time);
            info.outcome = e.outcome;
            for (const auto& rc : e.recipients) info.recipients.push_back(rc.address);
            info.generated_ids = e.generated_ids;
            found.emplace_back(r.seq, std::move(info));
        }
    }
    std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<PecEventInfo> out;
    for (auto& [seq, info] : found) out.push_back(std::move(info));
    return out;
}

}  // namespace pecd::api
