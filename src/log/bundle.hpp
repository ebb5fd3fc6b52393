// bundle.hpp - a self-contained export of legal-log records with their proof
//
// What a provider hands to a mailbox holder or an auditor: the records asked for, the
// digests of every record of the segments that contain them, each segment's manifest,
// CMS seal and RFC 3161 time stamp, the certificates, a README and verify.sh, which
// checks everything with stock tools (sh, sed, sha256sum, openssl) and nothing of pecd:
//
//   README.txt                    what is inside and how to check it by hand
//   verify.sh [SIGNER_CA [TSA_CA]] the check; exit 0 = intact
//   records.jsonl                 the disclosed records, canonical bytes, one per line
//   segments/<id>/manifest.txt    the signed text (CRLF lines)
//   segments/<id>/seal.p7s        CMS SignedData, DER, detached over manifest.txt
//   segments/<id>/timestamp.tsr   RFC 3161 TimeStampResp, DER, over SHA-256(manifest.txt)
//   segments/<id>/digests.txt     "<seq> <digest>" for every record of the segment
//   segments/<id>/signer.pem      certificates carried in the seal
//   segments/<id>/tsa.pem         certificates carried in the time stamp
//   unsealed/digests.txt          records not yet in a sealed segment (chain only)
//   unsealed/start.txt            the chain value they continue from
//
// Contract: export_bundle() writes into an empty or new directory and returns what it
// wrote; it reads the log only. Records of the query that are in purged segments are
// gone and cannot be exported.
#pragma once

#include <filesystem>

#include "log/legal_log.hpp"

namespace pecd::log {

struct BundleSummary {
    std::size_t records = 0;   // disclosed records
    std::size_t segments = 0;  // sealed segments included
    std::size_t unsealed = 0;  // disclosed records not yet sealed
};

// query == nullptr: every record still kept.
BundleSummary export_bundle(const LegalLog& log, const std::filesystem::path& dir, const SearchQuery* query);

}  // namespace pecd::log
