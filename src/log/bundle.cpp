// bundle.cpp - the export bundle (see bundle.hpp); verify.sh is the documented recipe
#include "log/bundle.hpp"

#include <map>
#include <set>

#include "core/error.hpp"
#include "core/fs.hpp"
#include "crypto/cms.hpp"
#include "crypto/timestamp.hpp"

namespace pecd::log {
namespace {

constexpr const char* kReadme = R"TXT(pecd legal log export
=====================

This directory proves that the records in records.jsonl are part of the legal log of
a PEC provider, unaltered, and existed when the time stamps say.

Definitions
-----------
- A record is one line of records.jsonl: canonical JSON (keys sorted, no spaces,
  non-ASCII escaped as \uXXXX). Its field "seq" is its position in the log.
- digest(record) = SHA-256 of the record bytes (without the newline), lower-case hex.
- chain(n) = SHA-256 of the text  chain(n-1) + "\n" + digest(record n), lower-case hex;
  chain(0) is 64 zeros. In shell:  printf '%s\n%s' "$prev" "$digest" | sha256sum
- A segment is the run of records first-seq..last-seq; its manifest.txt states
  previous-chain = chain(first-seq - 1) and head-chain = chain(last-seq).
- seal.p7s is a detached CMS signature of manifest.txt by the provider;
  timestamp.tsr is an RFC 3161 time stamp over SHA-256(manifest.txt).

How to check (verify.sh does exactly this)
------------------------------------------
1. For each segment: recompute the chain from previous-chain over digests.txt (which
   lists every record of the segment, in order) and compare with head-chain.
2. openssl cms -verify -binary -inform DER -in seal.p7s -content manifest.txt \
       -CAfile <provider CA> -purpose any -out /dev/null
3. openssl ts -verify -data manifest.txt -in timestamp.tsr -CAfile <TSA CA>
4. For each line of records.jsonl: its digest must be listed for its seq in a
   digests.txt.
Without arguments verify.sh trusts the certificates carried in the bundle (signer.pem,
tsa.pem), which proves integrity only; pass the provider's CA and the TSA's CA,
obtained independently, to prove origin:   sh verify.sh provider-ca.pem tsa-ca.pem
Records under unsealed/ are chained but not yet sealed; they carry no signature.
)TXT";

constexpr const char* kVerifyScript = R"SH(#!/bin/sh
# verify.sh - checks a pecd legal log export with sh, sed, sha256sum and openssl only.
# Usage: sh verify.sh [SIGNER_CA.pem [TSA_CA.pem]]    Exit status 0 = intact.
set -u
cd "$(dirname "$0")" || exit 2
SIGNER_CA=${1:-}
TSA_CA=${2:-}
case "$SIGNER_CA" in ""|/*) ;; *) SIGNER_CA="$OLDPWD/$SIGNER_CA" ;; esac
case "$TSA_CA" in ""|/*) ;; *) TSA_CA="$OLDPWD/$TSA_CA" ;; esac
status=0
field() { sed -n "s/^$1: \\(.*\\)\\r\$/\\1/p" "$2"; }

# Recomputes the chain over a digests file from $2; prints the final value, or fails
# naming the first missing position.
walk() {
  h=$2; expected=$3
  while read -r seq digest; do
    if [ "$seq" != "$expected" ]; then echo "MISSING record $expected" >&2; return 1; fi
    h=$(printf '%s\n%s' "$h" "$digest" | sha256sum | cut -d' ' -f1)
    expected=$((expected + 1))
  done < "$1"
  echo "$h $expected"
}

for dir in segments/*/; do
  [ -d "$dir" ] || continue
  m="${dir}manifest.txt"
  id=$(field segment "$m"); first=$(field first-seq "$m"); last=$(field last-seq "$m")
  result=$(walk "${dir}digests.txt" "$(field previous-chain "$m")" "$first") || {
    echo "FAIL segment $id: a record is missing from its digest list"; status=1; continue; }
  set -- $result
  if [ "$1" != "$(field head-chain "$m")" ] || [ "$2" != $((last + 1)) ]; then
    echo "FAIL segment $id (records $first..$last): the digests do not lead to the sealed head"; status=1
  fi
  if [ -n "$SIGNER_CA" ]; then ca=$SIGNER_CA; extra=""; else ca="${dir}signer.pem"; extra="-partial_chain"; fi
  if ! openssl cms -verify -binary -inform DER -in "${dir}seal.p7s" -content "$m" -CAfile "$ca" $extra \
       -purpose any -out /dev/null 2>/dev/null; then
    echo "FAIL segment $id: the seal signature does not verify"; status=1
  fi
  if [ -n "$TSA_CA" ]; then ca=$TSA_CA; else ca="${dir}tsa.pem"; fi
  if ! openssl ts -verify -data "$m" -in "${dir}timestamp.tsr" -CAfile "$ca" >/dev/null 2>&1; then
    echo "FAIL segment $id: the time stamp does not verify"; status=1
  fi
  [ $status -eq 0 ] && echo "segment $id: records $first..$last sealed and intact"
done

if [ -s unsealed/digests.txt ]; then
  first=$(head -n 1 unsealed/digests.txt | cut -d' ' -f1)
  walk unsealed/digests.txt "$(cat unsealed/start.txt)" "$first" >/dev/null || {
    echo "FAIL unsealed records: a record is missing"; status=1; }
  echo "note: records from $first on are not sealed yet"
fi

n=0
while IFS= read -r rec; do
  n=$((n + 1))
  seq=$(printf '%s' "$rec" | sed -n 's/.*,"seq":\([0-9][0-9]*\),"subject":.*/\1/p')
  d=$(printf '%s' "$rec" | sha256sum | cut -d' ' -f1)
  if [ -z "$seq" ] || ! cat segments/*/digests.txt unsealed/digests.txt 2>/dev/null | grep -qx "$seq $d"; then
    echo "FAIL record on line $n (seq ${seq:-?}): altered, or not part of the sealed log"; status=1
  fi
done < records.jsonl

if [ $status -eq 0 ]; then echo "bundle OK: $n records intact"; else echo "bundle NOT intact"; fi
exit $status
)SH";

std::string pem_of(const std::vector<crypto::X509Ptr>& certs) {
    std::string out;
    for (const auto& c : certs) out += crypto::certificate_pem(c.get());
    return out;
}

void write(const std::filesystem::path& p, const std::string& data, unsigned mode = 0644) {
    fs::write_file_durable(p, data, mode);
}

}  // namespace

BundleSummary export_bundle(const LegalLog& log, const std::filesystem::path& dir, const SearchQuery* query) {
    if (std::filesystem::exists(dir) && !std::filesystem::is_empty(dir))
        throw Error("export: " + dir.string() + " is not empty");
    fs::ensure_dir(dir, 0755);
    std::vector<StoredRecord> disclosed;
    if (query) {
        disclosed = log.search(*query);
    } else {
        SearchQuery all;
        all.limit = SIZE_MAX / 2;
        disclosed = log.search(all);
    }
    BundleSummary summary;
    std::vector<Segment> segments = log.segments();
    std::int64_t sealed_upto = 0;  // records <= this are in a sealed segment
    std::string unsealed_start = kGenesisChain;
    for (const auto& s : segments) {
        if (!s.sealed()) break;
        sealed_upto = s.last_seq;
        unsealed_start = s.head_chain;
    }
    std::set<std::int64_t> wanted;  // segment ids
    bool any_unsealed = false;
    std::string lines;
    for (const auto& r : disclosed) {
        lines += r.record + "\n";
        for (const auto& s : segments)
            if (r.seq >= s.first_seq && r.seq <= s.last_seq && s.sealed() && !s.purged) wanted.insert(s.id);
        if (r.seq > sealed_upto) {
            any_unsealed = true;
            ++summary.unsealed;
        }
    }
    summary.records = disclosed.size();
    write(dir / "records.jsonl", lines);
    write(dir / "README.txt", kReadme);
    write(dir / "verify.sh", kVerifyScript, 0755);
    for (const auto& s : segments) {
        if (!wanted.count(s.id)) continue;
        auto sdir = dir / "segments" / std::to_string(s.id);
        fs::ensure_dir(sdir, 0755);
        std::string digests;
        for (const auto& r : log.records(s.first_seq, s.last_seq))
            digests += std::to_string(r.seq) + " " + r.digest + "\n";
        write(sdir / "digests.txt", digests);
        write(sdir / "manifest.txt", s.manifest);
        write(sdir / "seal.p7s", s.signature);
        write(sdir / "timestamp.tsr", s.timestamp);
        write(sdir / "signer.pem", pem_of(crypto::cms_verify_detached(s.signature, s.manifest).certificates));
        write(sdir / "tsa.pem", pem_of(crypto::timestamp_certificates(s.timestamp)));
        ++summary.segments;
    }
    if (any_unsealed) {
        fs::ensure_dir(dir / "unsealed", 0755);
        std::string digests;
        for (const auto& r : log.records(sealed_upto + 1, INT64_MAX))
            digests += std::to_string(r.seq) + " " + r.digest + "\n";
        write(dir / "unsealed" / "digests.txt", digests);
        write(dir / "unsealed" / "start.txt", unsealed_start + "\n");
    }
    return summary;
}

}  // namespace pecd::log
