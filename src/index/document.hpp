// document.hpp - an index document (plain or signed LDIF) into a verified index
//
// A signed LDIF is a CMS SignedData with the LDIF attached (pec.md 6.2: DER .p7m; PEM is
// accepted too). It is used only after crypto::cms_verify_attached() has checked the
// signature AND the signer's chain up to the configured trust anchor, at the clock's time.
//
// Contract:
// - open_document() returns the LDIF text, or throws pecd::Error whose message says which
//   check failed: "malformed signed LDIF", "signature does not match", "signer not trusted
//   (certificate has expired)", "not signed" (when a signature is required), ...
// - load_document() also parses and indexes it; LDIF errors are ParseError with the line;
//   an index with no usable provider record is refused (a truncated or wrong file must not
//   replace a good index).
// - load_index_file() is the one-call helper for other modules (pecctl verify --index):
//   a file path, optionally a trust anchor file, to a ProviderLookup.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"
#include "crypto/cms.hpp"
#include "index/provider_index.hpp"

namespace pecd::index {

struct DocumentPolicy {
    const crypto::TrustStore* trust = nullptr;  // anchors for the signer's chain
    bool require_signature = false;             // refuse plain LDIF
    const Clock* clock = &SystemClock::instance();
};

// True when the bytes look like CMS (DER SEQUENCE with a long-form length, or PEM).
bool looks_signed(std::string_view bytes);

struct OpenedDocument {
    std::string ldif;
    bool signed_document = false;
    std::string signer;  // subject of the signer certificate, when signed
};

OpenedDocument open_document(std::string_view bytes, const DocumentPolicy& policy);

struct LoadedIndex {
    IndexPtr index;
    std::vector<Problem> problems;
    bool signed_document = false;
    std::string signer;
};

LoadedIndex load_document(std::string_view bytes, const DocumentPolicy& policy);

// Reads and loads a file; with a trust anchor file the document must be signed by a
// certificate chaining to it. Throws Error/ParseError naming the file.
std::shared_ptr<const ProviderLookup> load_index_file(const std::filesystem::path& path,
                                                      const std::filesystem::path& trust_anchor = {});

}  // namespace pecd::index
