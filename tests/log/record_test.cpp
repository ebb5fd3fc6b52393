// record_test.cpp - canonical records, the chain definition, manifests, legal time
#include <gtest/gtest.h>

#include <chrono>
#include <random>

#include "canonical_json_reference.hpp"
#include "core/error.hpp"
#include "log/chain.hpp"
#include "log/event.hpp"
#include "log_test_support.hpp"

namespace pecd::log {
namespace {

using namespace std::chrono;

TimePoint utc(int y, unsigned m, unsigned d, int hh, int mm, int ss) {
    return TimePoint(sys_days{year{y} / month{m} / day{d}}.time_since_epoch() + hours{hh} + minutes{mm} +
                     seconds{ss});
}

Event sample_event() {
    Event e;
    e.kind = EventKind::delivery;
    e.pec_msgid = "opec210.20260301120000.12345.01.1.1@pec.example.it";
    e.client_msgid = "<abc@client.example>";
    e.time = utc(2026, 3, 1, 12, 0, 0) + microseconds(250);
    e.utc_offset_minutes = 60;
    e.sender = "mario.rossi@pec.example.it";
    e.recipients = {{"anna@pec.other.it", true}, {"bob@gmail.example", false}};
    e.subject = "Fattura n. 12 \xE2\x82\xAC";  // euro sign
    e.generated_ids = {"<receipt-1@pec.example.it>"};
    e.peer_provider = "Other PEC S.p.A.";
    e.peer_host = "mx.pec.other.it";
    e.tls = {"TLSv1.3", "TLS_AES_256_GCM_SHA384", "CN=mx.pec.other.it"};
    e.outcome = "ok";
    e.details = {{"receipt_type", "completa"}};
    return e;
}

TEST(Record, CanonicalFormIsSortedAsciiOneLineAndRoundTrips) {
    Event e = sample_event();
    std::string rec = canonical_record(e, 42);
    EXPECT_EQ(rec.find('\n'), std::string::npos);
    for (unsigned char c : rec) EXPECT_LT(c, 0x80);
    EXPECT_NE(rec.find(R"("subject":"Fattura n. 12 \u20ac")"), std::string::npos) << rec;
    EXPECT_TRUE(rec.starts_with(R"({"actor":"","client_msgid":"<abc@client.example>","details":{)")) << rec;
    EXPECT_NE(rec.find(R"("time":"2026-03-01T12:00:00.000250Z","tls":)"), std::string::npos) << rec;
    EXPECT_NE(rec.find(R"("utc_offset":"+01:00","v":1})"), std::string::npos) << rec;
    EXPECT_NE(rec.find(R"({"address":"bob@gmail.example","type":"external"})"), std::string::npos);

    ParsedRecord back = parse_record(rec);
    EXPECT_EQ(back.seq, 42);
    EXPECT_EQ(back.event.kind, EventKind::delivery);
    EXPECT_EQ(back.event.time, e.time);
    EXPECT_EQ(back.event.subject, e.subject);
    EXPECT_EQ(back.event.recipients.size(), 2u);
    EXPECT_FALSE(back.event.recipients[1].certified);
    EXPECT_EQ(back.event.tls.cipher, "TLS_AES_256_GCM_SHA384");
    EXPECT_EQ(back.event.details.at("receipt_type"), "completa");
    // Stable: the same event gives the same bytes.
    EXPECT_EQ(canonical_record(back.event, 42), rec);
}

// Strings that exercise escaping and UTF-8 repair: every ASCII control, quote, backslash,
// DEL, valid 2/3/4-byte characters at their range limits, and each kind of broken sequence.
const std::vector<std::string>& tricky_strings() {
    static const std::vector<std::string> v = [] {
        std::vector<std::string> out = {"",
                                        "plain",
                                        "quote \" and \\ backslash",
                                        std::string("nul \0 inside", 12),
                                        "\x7f del",
                                        "\xC2\x80 \xDF\xBF",
                                        "\xE0\xA0\x80 \xEF\xBF\xBF \xE2\x82\xAC",
                                        "\xF0\x90\x80\x80 \xF4\x8F\xBF\xBF",
                                        "\xF0\x9F\x98\x80 emoji",
                                        "\xC0\xAF overlong",
                                        "\xC1\xBF",
                                        "\xE0\x80\x80 overlong",
                                        "\xED\xA0\x80 surrogate",
                                        "\xF0\x80\x80\x80",
                                        "\xF4\x90\x80\x80 too high",
                                        "\xF5\x80\x80\x80",
                                        "\xFF\xFE",
                                        "\x80 lone continuation",
                                        "\xBF\xBF",
                                        "cut at end \xE2\x82",
                                        "cut \xE2\x82x mid",
                                        "\xF0\x9F\x98",
                                        "\xF0\x9F",
                                        "\xC3",
                                        "\xC3\xC3\xA9",
                                        "\xE2\x28\xA1",
                                        "\xE2\x82\x28",
                                        "\xF0\x28\x8C\xBC",
                                        "\xF0\x90\x28\xBC",
                                        "\xF0\x28\x8C\x28"};
        for (int c = 0; c < 0x20; ++c) out.push_back(std::string("ctl ") + static_cast<char>(c) + " end");
        return out;
    }();
    return v;
}

std::string random_bytes(std::mt19937& rng, std::size_t max_len) {
    // Mostly pieces of the tricky strings, sometimes raw random bytes: both valid and
    // broken UTF-8, cut at every position.
    std::string out;
    std::size_t len = rng() % (max_len + 1);
    while (out.size() < len) {
        if (rng() % 3 == 0) {
            out += static_cast<char>(rng() & 0xFF);
        } else {
            const auto& t = tricky_strings()[rng() % tricky_strings().size()];
            if (t.empty()) continue;
            std::size_t from = rng() % t.size();
            out += t.substr(from, 1 + rng() % (t.size() - from));
        }
    }
    return out;
}

TEST(Record, CanonicalFormIsExactlyTheJsonLibrarysForm) {
    Event e = sample_event();
    EXPECT_EQ(canonical_record(e, 42), test::canonical_record_via_json(e, 42));
    for (const auto& t : tricky_strings()) {
        e.subject = t;
        EXPECT_EQ(canonical_record(e, 7), test::canonical_record_via_json(e, 7)) << "subject bytes: " << t;
    }
    Event empty;
    EXPECT_EQ(canonical_record(empty, 0), test::canonical_record_via_json(empty, 0));
    EXPECT_EQ(canonical_record(empty, -5), test::canonical_record_via_json(empty, -5));

    std::mt19937 rng(20261207);
    for (int round = 0; round < 3000; ++round) {
        Event r;
        r.kind = static_cast<EventKind>(rng() % 15);
        r.time = utc(2026, 1 + rng() % 12, 1 + rng() % 28, rng() % 24, rng() % 60, rng() % 60) +
                 microseconds(rng() % 1000000);
        r.utc_offset_minutes = rng() % 2 ? 60 : 120;
        r.pec_msgid = random_bytes(rng, 40);
        r.client_msgid = random_bytes(rng, 40);
        r.sender = random_bytes(rng, 30);
        for (unsigned n = rng() % 4; n > 0; --n)
            r.recipients.push_back({random_bytes(rng, 30), rng() % 2 == 0});
        r.subject = random_bytes(rng, 120);
        for (unsigned n = rng() % 3; n > 0; --n) r.generated_ids.push_back(random_bytes(rng, 30));
        r.peer_provider = random_bytes(rng, 20);
        r.peer_host = random_bytes(rng, 20);
        r.tls = {random_bytes(rng, 8), random_bytes(rng, 20), random_bytes(rng, 20)};
        r.outcome = random_bytes(rng, 20);
        r.actor = random_bytes(rng, 10);
        for (unsigned n = rng() % 4; n > 0; --n) r.details[random_bytes(rng, 10)] = random_bytes(rng, 20);
        const std::int64_t seq = static_cast<std::int64_t>(rng()) * (rng() % 2 ? 1 : -1);
        ASSERT_EQ(canonical_record(r, seq), test::canonical_record_via_json(r, seq)) << "round " << round;
    }
}

TEST(Record, EveryKindHasANameThatParsesBack) {
    for (int k = 0; k <= static_cast<int>(EventKind::purge); ++k) {
        auto kind = static_cast<EventKind>(k);
        EXPECT_EQ(event_kind_from_string(to_string(kind)), kind);
    }
    EXPECT_FALSE(event_kind_from_string("nonsense"));
}

TEST(Record, InvalidUtf8IsReplacedNotFatal) {
    Event e = sample_event();
    e.subject = "bad \xC3\x28 byte";
    std::string rec = canonical_record(e, 1);
    EXPECT_NE(rec.find("\\ufffd"), std::string::npos) << rec;
}

TEST(Record, MalformedRecordsNameTheField) {
    std::string rec = canonical_record(sample_event(), 3);
    auto field_of = [](const std::string& text) {
        try {
            parse_record(text);
        } catch (const ParseError& e) {
            return e.field();
        }
        return std::string("<accepted>");
    };
    std::string no_sender = rec;
    no_sender.replace(no_sender.find("\"sender\""), 8, "\"sendex\"");
    EXPECT_EQ(field_of(no_sender), "sender");
    std::string bad_time = rec;
    bad_time.replace(bad_time.find("2026-03-01T"), 11, "2026-13-01T");
    EXPECT_EQ(field_of(bad_time), "time");
    // A well-formed time the clock cannot hold (it once wrapped into another century).
    for (const char* year : {"9999", "2263", "0001"}) {
        std::string far = rec;
        far.replace(far.find("2026-03-01T"), 4, year);
        EXPECT_EQ(field_of(far), "time") << year;
    }
    std::string bad_kind = rec;
    bad_kind.replace(bad_kind.find("\"delivery\""), 10, "\"deliverx\"");
    EXPECT_EQ(field_of(bad_kind), "kind");
    EXPECT_EQ(field_of("[1,2]"), "record");
    EXPECT_EQ(field_of("{\"v\":1"), "record");
    // A tampered record with a number no double holds is a malformed record, not a crash
    // of the verifier (nlohmann reports it as out_of_range, not as a parse error).
    std::string huge = rec;
    huge.replace(huge.find("\"seq\":3"), 7, "\"seq\":1e999");
    EXPECT_EQ(field_of(huge), "record");
}

TEST(Record, ItalianLegalTimeFollowsTheEuRule) {
    EXPECT_EQ(italy_utc_offset_minutes(utc(2026, 3, 29, 0, 59, 59)), 60);
    EXPECT_EQ(italy_utc_offset_minutes(utc(2026, 3, 29, 1, 0, 0)), 120);
    EXPECT_EQ(italy_utc_offset_minutes(utc(2026, 10, 25, 0, 59, 59)), 120);
    EXPECT_EQ(italy_utc_offset_minutes(utc(2026, 10, 25, 1, 0, 0)), 60);
    EXPECT_EQ(italy_utc_offset_minutes(utc(2027, 1, 15, 12, 0, 0)), 60);
    EXPECT_EQ(format_offset(120), "+02:00");
    EXPECT_EQ(format_offset(-330), "-05:30");
}

TEST(Chain, LinkMatchesTheDocumentedShellRecomputation) {
    std::string rec = canonical_record(sample_event(), 1);
    std::string digest = record_digest(rec);
    test::TempDir dir;
    test::write_file(dir / "rec", rec);
    auto shell_digest = test::run_command("sha256sum " + test::quote(dir / "rec") + " | cut -d' ' -f1");
    EXPECT_EQ(shell_digest.output, digest + "\n");
    auto shell_link = test::run_command("printf '%s\\n%s' " + kGenesisChain + " " + digest +
                                        " | sha256sum | cut -d' ' -f1");
    EXPECT_EQ(shell_link.output, chain_link(kGenesisChain, digest) + "\n");
    EXPECT_NE(chain_link(kGenesisChain, digest), chain_link(chain_link(kGenesisChain, digest), digest));
}

TEST(Chain, ManifestRoundTripsAndUsesCrlf) {
    SegmentManifest m{7,
                      101,
                      200,
                      std::string(64, 'a'),
                      std::string(64, 'b'),
                      utc(2026, 3, 1, 12, 0, 0),
                      utc(2026, 3, 1, 13, 0, 0)};
    std::string text = format_manifest(m);
    EXPECT_NE(text.find("records: 100\r\n"), std::string::npos);
    SegmentManifest back = parse_manifest(text);
    EXPECT_EQ(back.segment, 7);
    EXPECT_EQ(back.first_seq, 101);
    EXPECT_EQ(back.last_seq, 200);
    EXPECT_EQ(back.head_chain, m.head_chain);
    EXPECT_EQ(back.closed, m.closed);
    EXPECT_EQ(format_manifest(back), text);

    std::string wrong_count = text;
    wrong_count.replace(wrong_count.find("records: 100"), 12, "records: 101");
    try {
        parse_manifest(wrong_count);
        FAIL() << "accepted a wrong record count";
    } catch (const ParseError& e) {
        EXPECT_EQ(e.line(), 6u);
        EXPECT_EQ(e.field(), "records");
    }
    std::string lf_only = text;
    lf_only.erase(lf_only.find('\r'), 1);
    EXPECT_THROW(parse_manifest(lf_only), ParseError);
}

}  // namespace
}  // namespace pecd::log
