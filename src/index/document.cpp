// document.cpp - plain or signed LDIF into a verified index (see document.hpp)
#include "index/document.hpp"

#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/strings.hpp"

namespace pecd::index {

bool looks_signed(std::string_view bytes) {
    if (bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x30 &&
        static_cast<unsigned char>(bytes[1]) >= 0x80)
        return true;
    return trim(bytes.substr(0, 64)).starts_with("-----BEGIN");
}

OpenedDocument open_document(std::string_view bytes, const DocumentPolicy& policy) {
    OpenedDocument d;
    if (!looks_signed(bytes)) {
        if (policy.require_signature)
            throw Error("not signed: a signed LDIF (CMS .p7m) is required when a trust anchor is configured");
        d.ldif = std::string(bytes);
        return d;
    }
    crypto::TrustStore trust;
    if (policy.trust) trust = *policy.trust;
    trust.at = policy.clock->now();
    auto v = crypto::cms_verify_attached(bytes, policy.trust ? &trust : nullptr);
    if (!v.parsed) throw Error("malformed signed LDIF: " + v.error);
    if (!v.signature_ok) throw Error("signed LDIF refused: " + v.error);
    if (!v.signer) throw Error("signed LDIF refused: no signer certificate");
    d.signer = crypto::certificate_subject(v.signer.get());
    if (policy.trust && !v.chain_ok)
        throw Error("signed LDIF refused: signer " + d.signer + " not trusted (" + v.error + ")");
    if (!policy.trust && policy.require_signature)
        throw Error("signed LDIF refused: no trust anchor to check the signer against");
    d.ldif = std::move(v.content);
    d.signed_document = true;
    return d;
}

LoadedIndex load_document(std::string_view bytes, const DocumentPolicy& policy) {
    auto opened = open_document(bytes, policy);
    LoadedIndex l;
    l.signed_document = opened.signed_document;
    l.signer = std::move(opened.signer);
    l.index = index_from_ldif(opened.ldif, &l.problems);
    if (l.index->counts().providers + l.index->counts().units == 0)
        throw Error(
            "the index holds no usable provider record" +
            (l.problems.empty() ? std::string() : " (first problem: " + l.problems.front().describe() + ")"));
    return l;
}

std::shared_ptr<const ProviderLookup> load_index_file(const std::filesystem::path& path,
                                                      const std::filesystem::path& trust_anchor) {
    auto bytes = fs::read_file(path);
    crypto::TrustStore trust;
    DocumentPolicy policy;
    if (!trust_anchor.empty()) {
        trust = crypto::TrustStore::from_pem_file(trust_anchor);
        policy.trust = &trust;
        policy.require_signature = true;
    }
    try {
        return load_document(bytes, policy).index;
    } catch (const ParseError& e) {
        throw ParseError(e.what(), 0, path.string());
    } catch (const Error& e) {
        throw Error(path.string() + ": " + e.what());
    }
}

}  // namespace pecd::index
