// verify.cpp - legal-log verification (see verify.hpp)
#include "log/verify.hpp"

#include <map>

#include "core/error.hpp"
#include "crypto/cms.hpp"
#include "crypto/timestamp.hpp"

namespace pecd::log {
namespace {

// Walks the records of one contiguous run, recomputing digests and links. `chain` holds
// the recomputed chain value before the run and is advanced.
class ChainWalker {
public:
    ChainWalker(std::string start_chain, std::int64_t start_seq, VerifyReport& report)
        : chain_(std::move(start_chain)), expected_(start_seq + 1), report_(report) {}

    void step(const StoredRecord& r, std::int64_t segment) {
        ++report_.records;
        if (r.seq != expected_) {
            problem(expected_, segment,
                    r.seq - expected_ == 1
                        ? "record " + std::to_string(expected_) + " is missing: it was removed"
                        : "records " + std::to_string(expected_) + ".." + std::to_string(r.seq - 1) +
                              " are missing: they were removed");
            chain_ = r.chain;  // resynchronize on the stored chain so one gap is one problem
            expected_ = r.seq + 1;
            return;
        }
        expected_ = r.seq + 1;
        std::string digest = record_digest(r.record);
        try {
            ParsedRecord parsed = parse_record(r.record);
            if (parsed.seq < r.seq)
                problem(parsed.seq, segment,
                        "record " + std::to_string(parsed.seq) + " was pushed to position " +
                            std::to_string(r.seq) + ": a record was inserted at position " +
                            std::to_string(parsed.seq));
            else if (parsed.seq != r.seq)
                problem(r.seq, segment,
                        "record at position " + std::to_string(r.seq) + " says it is record " +
                            std::to_string(parsed.seq) + ": records were renumbered");
        } catch (const ParseError& e) {
            problem(r.seq, segment,
                    "record " + std::to_string(r.seq) + " is not a valid record: " + e.what());
        }
        if (digest != r.digest) {
            problem(
                r.seq, segment,
                "record " + std::to_string(r.seq) + " was altered: its content does not match its digest");
        }
        std::string link = chain_link(chain_, digest);
        if (link != r.chain && digest == r.digest) {
            problem(r.seq, segment,
                    "record " + std::to_string(r.seq) +
                        ": the chain is broken here (a record before it was altered, inserted or removed)");
        }
        chain_ = link;
        if (link != r.chain) chain_ = r.chain;  // report each break once
        recomputed_[r.seq] = link;
    }

    const std::string& chain() const { return chain_; }
    std::int64_t expected() const { return expected_; }
    // The recomputed chain value at `seq`, when that record was walked.
    std::string recomputed(std::int64_t seq) const {
        auto it = recomputed_.find(seq);
        return it == recomputed_.end() ? std::string() : it->second;
    }

    void problem(std::int64_t seq, std::int64_t segment, std::string what) {
        report_.problems.push_back({seq, segment, std::move(what)});
    }

private:
    std::string chain_;
    std::int64_t expected_;
    VerifyReport& report_;
    std::map<std::int64_t, std::string> recomputed_;
};

}  // namespace

std::string check_seal(const std::string& manifest, const std::string& signature,
                       const std::string& timestamp, const VerifyOptions& options) {
    crypto::TrustStore trust;
    trust.anchors = options.signer_anchors;
    auto cms = crypto::cms_verify_detached(signature, manifest, trust.anchors.empty() ? nullptr : &trust);
    if (!cms.parsed) return "the seal signature is not a CMS structure: " + cms.error;
    if (!cms.signature_ok) return "the seal signature does not verify: " + cms.error;
    if (cms.chain_checked && !cms.chain_ok) return "the seal signer is not trusted: " + cms.error;
    std::vector<crypto::X509Ptr> tsa = options.tsa_anchors;
    try {
        if (tsa.empty()) tsa = crypto::timestamp_certificates(timestamp);
    } catch (const ParseError& e) {
        return std::string("the time stamp is unreadable: ") + e.what();
    }
    auto ts = crypto::verify_timestamp_response(timestamp, crypto::sha256(manifest), tsa);
    if (!ts.ok) return ts.error;
    return {};
}

std::vector<Problem> verify_segment(const LegalLog& log, const Segment& s, const VerifyOptions& options) {
    VerifyReport report;
    ChainWalker walker(s.previous_chain, s.first_seq - 1, report);
    if (s.purged) {
        walker.problem(0, s.id, "segment " + std::to_string(s.id) + " was purged (retention)");
        return report.problems;
    }
    for (const auto& r : log.records(s.first_seq, s.last_seq)) walker.step(r, s.id);
    if (walker.expected() <= s.last_seq)
        walker.problem(walker.expected(), s.id,
                       "records " + std::to_string(walker.expected()) + ".." + std::to_string(s.last_seq) +
                           " of segment " + std::to_string(s.id) + " are missing: they were removed");
    else if (walker.recomputed(s.last_seq) != s.head_chain)
        walker.problem(0, s.id,
                       "segment " + std::to_string(s.id) +
                           ": its records do not lead to the sealed head: altered, inserted or removed");
    if (!s.sealed()) {
        walker.problem(0, s.id, "segment " + std::to_string(s.id) + " is not sealed yet");
    } else if (std::string error = check_seal(s.manifest, s.signature, s.timestamp, options);
               !error.empty()) {
        walker.problem(0, s.id, "segment " + std::to_string(s.id) + ": " + error);
    }
    return report.problems;
}

VerifyReport verify_log(const LegalLog& log, const VerifyOptions& options) {
    VerifyReport report;
    report.anchored = !options.signer_anchors.empty() && !options.tsa_anchors.empty();
    std::vector<Segment> segments = log.segments();

    // The chain starts after the last purged segment: its sealed head is the anchor.
    std::string start_chain = kGenesisChain;
    std::int64_t start_seq = 0;
    for (const auto& s : segments) {
        if (!s.purged) break;
        start_chain = s.head_chain;
        start_seq = s.last_seq;
    }
    ChainWalker walker(start_chain, start_seq, report);

    std::int64_t prev_last = 0;
    std::string prev_head = kGenesisChain;
    for (const auto& s : segments) {
        if (s.first_seq != prev_last + 1 || s.previous_chain != prev_head)
            walker.problem(0, s.id,
                           "segment " + std::to_string(s.id) + " does not follow the previous segment");
        prev_last = s.last_seq;
        prev_head = s.head_chain;
        try {
            SegmentManifest m = parse_manifest(s.manifest);
            if (m.segment != s.id || m.first_seq != s.first_seq || m.last_seq != s.last_seq ||
                m.previous_chain != s.previous_chain || m.head_chain != s.head_chain)
                walker.problem(0, s.id,
                               "segment " + std::to_string(s.id) + ": its columns differ from its manifest");
        } catch (const ParseError& e) {
            walker.problem(0, s.id, "segment " + std::to_string(s.id) + ": bad manifest: " + e.what());
        }
        if (s.purged) {
            ++report.segments_purged;
        } else {
            for (const auto& r : log.records(s.first_seq, s.last_seq)) walker.step(r, s.id);
            if (walker.expected() <= s.last_seq) {
                walker.problem(walker.expected(), s.id,
                               "records " + std::to_string(walker.expected()) + ".." +
                                   std::to_string(s.last_seq) + " of segment " + std::to_string(s.id) +
                                   " are missing: they were removed");
            } else if (walker.recomputed(s.last_seq) != s.head_chain) {
                walker.problem(
                    0, s.id,
                    "segment " + std::to_string(s.id) + " (records " + std::to_string(s.first_seq) + ".." +
                        std::to_string(s.last_seq) +
                        "): its records do not lead to the sealed head: altered, inserted or removed");
            }
        }
        if (!s.sealed()) {
            ++report.segments_unsealed;
            continue;
        }
        ++report.segments_sealed;
        std::string error = check_seal(s.manifest, s.signature, s.timestamp, options);
        if (!error.empty()) walker.problem(0, s.id, "segment " + std::to_string(s.id) + ": " + error);
    }
    // The open tail after the last segment.
    std::int64_t head = log.head_seq();
    if (prev_last < head) {
        for (const auto& r : log.records(prev_last + 1, head)) walker.step(r, 0);
    }
    if (walker.expected() <= head) {
        walker.problem(walker.expected(), 0,
                       "records " + std::to_string(walker.expected()) + ".." + std::to_string(head) +
                           " are missing: they were removed");
    }
    // Rows beyond the head were inserted past the end of the log.
    auto beyond = log.records(head + 1, INT64_MAX);
    if (!beyond.empty())
        walker.problem(
            beyond.front().seq, 0,
            "record " + std::to_string(beyond.front().seq) + " lies beyond the head of the log: inserted");
    return report;
}

}  // namespace pecd::log
