// jwt.cpp - JWS verification, JWK sets and claim checks on OpenSSL 3 (see jwt.hpp)
#include "api/jwt.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/calendar.hpp"
#include "core/strings.hpp"

namespace pecd::api {
namespace {

using json = nlohmann::json;

template <class T, void (*F)(T*)>
struct Deleter {
    void operator()(T* p) const { F(p); }
};
using BnPtr = std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>>;
using BldPtr = std::unique_ptr<OSSL_PARAM_BLD, Deleter<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free>>;
using ParamPtr = std::unique_ptr<OSSL_PARAM, Deleter<OSSL_PARAM, OSSL_PARAM_free>>;
using CtxPtr = std::unique_ptr<EVP_PKEY_CTX, Deleter<EVP_PKEY_CTX, EVP_PKEY_CTX_free>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX, EVP_MD_CTX_free>>;
using SigPtr = std::unique_ptr<ECDSA_SIG, Deleter<ECDSA_SIG, ECDSA_SIG_free>>;

std::shared_ptr<void> from_params(const char* type, OSSL_PARAM_BLD* bld) {
    ParamPtr params(OSSL_PARAM_BLD_to_param(bld));
    CtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
    EVP_PKEY* pkey = nullptr;
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) <= 0 ||
        EVP_PKEY_fromdata(ctx.get(), &pkey, EVP_PKEY_PUBLIC_KEY, params.get()) <= 0)
        return nullptr;
    return std::shared_ptr<void>(pkey, [](void* p) { EVP_PKEY_free(static_cast<EVP_PKEY*>(p)); });
}

std::string member(const json& j, const char* key, const std::string& where) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string()) throw ParseError("missing or not a string", 0, where + "." + key);
    return it->get<std::string>();
}

BnPtr bignum(const std::string& b64, const std::string& field) {
    std::string bytes;
    try {
        bytes = base64url_decode(b64);
    } catch (const TokenError&) {
        throw ParseError("not base64url", 0, field);
    }
    BnPtr bn(BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()),
                       nullptr));
    if (!bn || bytes.empty()) throw ParseError("empty or invalid number", 0, field);
    return bn;
}

std::shared_ptr<void> rsa_key(const json& k, const std::string& where) {
    auto n = bignum(member(k, "n", where), where + ".n");
    auto e = bignum(member(k, "e", where), where + ".e");
    if (BN_num_bits(n.get()) < 2048)
        throw ParseError("RSA keys below 2048 bits are refused", 0, where + ".n");
    BldPtr bld(OSSL_PARAM_BLD_new());
    if (!bld || !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) ||
        !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get()))
        throw Error("out of memory building an RSA key");
    auto key = from_params("RSA", bld.get());
    if (!key) throw ParseError("not a valid RSA public key", 0, where);
    return key;
}

std::shared_ptr<void> ec_key(const json& k, const std::string& where) {
    std::string x, y;
    try {
        x = base64url_decode(member(k, "x", where));
        y = base64url_decode(member(k, "y", where));
    } catch (const TokenError&) {
        throw ParseError("not base64url", 0, where + ".x/y");
    }
    if (x.size() != 32 || y.size() != 32)
        throw ParseError("P-256 coordinates are 32 bytes", 0, where + ".x/y");
    std::string point = "\x04" + x + y;
    BldPtr bld(OSSL_PARAM_BLD_new());
    if (!bld || !OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()))
        throw Error("out of memory building an EC key");
    auto key = from_params("EC", bld.get());
    if (!key) throw ParseError("not a point on P-256", 0, where);
    return key;
}

json decode_part(std::string_view part, const char* what) {
    try {
        auto j = json::parse(base64url_decode(part));
        if (!j.is_object()) throw TokenError(std::string("token ") + what + " is not a JSON object");
        return j;
    } catch (const json::exception&) {
        throw TokenError(std::string("token ") + what + " is not valid JSON");
    }
}

// JWS ES256 signatures are r||s (RFC 7518 3.4); OpenSSL verifies DER.
std::string ecdsa_der(std::string_view raw) {
    if (raw.size() != 64) throw TokenError("bad signature");
    SigPtr sig(ECDSA_SIG_new());
    BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), 32, nullptr);
    BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()) + 32, 32, nullptr);
    if (!sig || !r || !s || !ECDSA_SIG_set0(sig.get(), r, s)) {
        BN_free(r);
        BN_free(s);
        throw Error("out of memory verifying a signature");
    }
    unsigned char* der = nullptr;
    int len = i2d_ECDSA_SIG(sig.get(), &der);
    if (len <= 0) throw Error("out of memory verifying a signature");
    std::string out(reinterpret_cast<char*>(der), static_cast<std::size_t>(len));
    OPENSSL_free(der);
    return out;
}

bool verify_signature(const Jwk& key, std::string_view signed_part, std::string_view signature) {
    std::string sig(signature);
    if (key.alg == "ES256") sig = ecdsa_der(signature);
    MdCtxPtr ctx(EVP_MD_CTX_new());
    if (!ctx) throw Error("out of memory verifying a signature");
    auto* pkey = static_cast<EVP_PKEY*>(key.pkey.get());
    if (EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, pkey) <= 0) return false;
    return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                            reinterpret_cast<const unsigned char*>(signed_part.data()),
                            signed_part.size()) == 1;
}

TimePoint seconds_claim(const json& claims, const char* name, bool required) {
    auto it = claims.find(name);
    if (it == claims.end()) {
        if (required) throw TokenError(std::string("token has no \"") + name + "\" claim");
        return TimePoint::min();
    }
    if (!it->is_number()) throw TokenError(std::string("token claim \"") + name + "\" is not a number");
    // Up to what the clock holds (2262): past it, a conversion would wrap around, and an
    // "nbf" in 2603 became a day in 2019.
    double v = it->get<double>();
    std::optional<TimePoint> t;
    if (v >= 0 && v < 1e12)
        t = to_time_point(std::chrono::sys_seconds(std::chrono::seconds(static_cast<std::int64_t>(v))));
    if (!t) throw TokenError(std::string("token claim \"") + name + "\" is out of range");
    return *t;
}

std::vector<std::string> string_list(const json& claims, const char* name, bool lower) {
    std::vector<std::string> out;
    auto it = claims.find(name);
    if (it == claims.end()) return out;
    if (!it->is_array()) throw TokenError(std::string("token claim \"") + name + "\" is not an array");
    for (auto& v : *it) {
        if (!v.is_string()) throw TokenError(std::string("token claim \"") + name + "\" holds a non-string");
        out.push_back(lower ? to_lower(v.get<std::string>()) : v.get<std::string>());
    }
    return out;
}

}  // namespace

std::string base64url_decode(std::string_view in) {
    static const auto table = [] {
        std::array<signed char, 256> t{};
        t.fill(-1);
        const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(a[i])] = static_cast<signed char>(i);
        return t;
    }();
    if (in.size() % 4 == 1) throw TokenError("bad base64url length");
    std::string out;
    out.reserve(in.size() * 3 / 4);
    std::uint32_t acc = 0;
    int bits = 0;
    for (char c : in) {
        int v = table[static_cast<unsigned char>(c)];
        if (v < 0) throw TokenError("bad base64url character");
        acc = (acc << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((acc >> bits) & 0xff));
        }
    }
    // Canonical encoding only (RFC 4648 3.5): with the unused low bits of the last
    // character ignored, one signature would have several spellings, and a token could be
    // altered without breaking it.
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) throw TokenError("bad base64url padding bits");
    return out;
}

std::string base64url_encode(std::string_view in) {
    const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    std::uint32_t acc = 0;
    int bits = 0;
    for (unsigned char c : in) {
        acc = (acc << 8) | c;
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out.push_back(a[(acc >> bits) & 63]);
        }
    }
    if (bits > 0) out.push_back(a[(acc << (6 - bits)) & 63]);
    return out;
}

const Jwk* KeySet::find(std::string_view kid) const {
    for (auto& k : keys)
        if (k.kid == kid) return &k;
    return nullptr;
}

KeySet parse_jwks(std::string_view text) {
    json doc;
    try {
        doc = json::parse(text);
    } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e999
        throw ParseError(std::string("not JSON: ") + e.what(), 0, "jwks");
    }
    if (!doc.is_object() || !doc.contains("keys") || !doc["keys"].is_array())
        throw ParseError("expected an object with a \"keys\" array", 0, "jwks");
    KeySet set;
    std::size_t i = 0;
    for (auto& k : doc["keys"]) {
        std::string where = "jwks.keys[" + std::to_string(i++) + "]";
        if (!k.is_object()) throw ParseError("expected an object", 0, where);
        if (k.contains("use") && k["use"] != "sig") continue;
        auto kty = member(k, "kty", where);
        Jwk jwk;
        if (k.contains("kid")) jwk.kid = member(k, "kid", where);
        std::string alg = k.contains("alg") ? member(k, "alg", where) : "";
        if (kty == "RSA") {
            if (!alg.empty() && alg != "RS256") continue;
            jwk.alg = "RS256";
            jwk.pkey = rsa_key(k, where);
        } else if (kty == "EC") {
            if (member(k, "crv", where) != "P-256" || (!alg.empty() && alg != "ES256")) continue;
            jwk.alg = "ES256";
            jwk.pkey = ec_key(k, where);
        } else {
            continue;
        }
        set.keys.push_back(std::move(jwk));
    }
    return set;
}

bool Claims::has_scope(std::string_view s) const {
    return std::find(scopes.begin(), scopes.end(), s) != scopes.end();
}

bool Claims::may_reach(std::string_view address) const {
    if (std::find(mailboxes.begin(), mailboxes.end(), address) != mailboxes.end()) return true;
    auto at = address.rfind('@');
    if (at == std::string_view::npos) return false;
    auto domain = address.substr(at + 1);
    return std::find(domains.begin(), domains.end(), domain) != domains.end();
}

std::string token_kid(std::string_view token) {
    auto dot = token.find('.');
    if (dot == std::string_view::npos) throw TokenError("token is not a compact JWS");
    auto header = decode_part(token.substr(0, dot), "header");
    auto it = header.find("kid");
    if (it == header.end()) return {};
    if (!it->is_string()) throw TokenError("token header kid is not a string");
    return it->get<std::string>();
}

Claims verify_token(std::string_view token, const KeySet& keys, const TokenPolicy& policy, TimePoint now) {
    auto d1 = token.find('.');
    auto d2 = d1 == std::string_view::npos ? d1 : token.find('.', d1 + 1);
    if (d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos)
        throw TokenError("token is not a compact JWS (three parts)");
    auto header = decode_part(token.substr(0, d1), "header");
    auto alg_it = header.find("alg");
    if (alg_it == header.end() || !alg_it->is_string()) throw TokenError("token header has no alg");
    auto alg = alg_it->get<std::string>();
    if (alg != "RS256" && alg != "ES256") throw TokenError("token algorithm " + alg + " is not accepted");
    if (header.contains("crit")) throw TokenError("token header has critical extensions");
    std::string kid;
    if (auto it = header.find("kid"); it != header.end()) {
        if (!it->is_string()) throw TokenError("token header kid is not a string");
        kid = it->get<std::string>();
    }
    const Jwk* key = keys.find(kid);
    if (!key) throw TokenError("token signed by an unknown key (kid \"" + kid.substr(0, 64) + "\")");
    if (key->alg != alg) throw TokenError("token algorithm " + alg + " does not match its key");
    auto signature = base64url_decode(token.substr(d2 + 1));
    if (!verify_signature(*key, token.substr(0, d2), signature))
        throw TokenError("token signature is not valid");

    auto claims = decode_part(token.substr(d1 + 1, d2 - d1 - 1), "payload");
    Claims c;
    if (!claims.contains("iss") || claims["iss"] != policy.issuer)
        throw TokenError("token issuer is not accepted");
    c.issuer = policy.issuer;
    bool aud_ok = false;
    if (auto it = claims.find("aud"); it != claims.end()) {
        if (it->is_string()) aud_ok = *it == policy.audience;
        if (it->is_array())
            for (auto& a : *it) aud_ok = aud_ok || (a.is_string() && a == policy.audience);
    }
    if (!aud_ok) throw TokenError("token audience does not include this API");
    c.expires = seconds_claim(claims, "exp", true);
    if (now >= c.expires + policy.leeway) throw TokenError("token has expired");
    auto nbf = seconds_claim(claims, "nbf", false);
    if (nbf != TimePoint::min() && nbf > now + policy.leeway) throw TokenError("token is not valid yet");
    if (auto it = claims.find("sub"); it != claims.end() && it->is_string())
        c.subject = it->get<std::string>();
    if (c.subject.empty()) throw TokenError("token has no subject");
    if (auto it = claims.find("jti"); it != claims.end() && it->is_string())
        c.token_id = it->get<std::string>();
    if (auto it = claims.find("scope"); it != claims.end()) {
        if (!it->is_string()) throw TokenError("token claim \"scope\" is not a string");
        const std::string scope = it->get<std::string>();  // split() returns views into it
        for (auto s : split(scope, ' '))
            if (!s.empty()) c.scopes.emplace_back(s);
    } else {
        c.scopes = string_list(claims, "scp", false);
    }
    c.mailboxes = string_list(claims, "pecd_mailboxes", true);
    c.domains = string_list(claims, "pecd_domains", true);
    return c;
}

}  // namespace pecd::api
