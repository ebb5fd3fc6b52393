// jwt.hpp - OAuth2 bearer tokens: JWS (compact) verification, JWK sets, claim checks
//
// Why OpenSSL directly: Debian 12's libjwt-dev is 1.10 (PEM keys only, no JWK/JWKS and
// no key selection by kid), so a JWK set still had to be parsed by hand; verifying an
// RS256/ES256 JWS is one EVP_DigestVerify once the key is built, so the whole
// verification stays here on OpenSSL 3, which pecd already depends on.
//
// Contract:
// - parse_jwks(json) builds the key set from a JWK Set document (RFC 7517): RSA keys
//   ("kty":"RSA", n, e) and P-256 EC keys ("kty":"EC","crv":"P-256", x, y); keys with
//   "use" other than "sig", other types or curves are skipped; a key without "kid" is
//   usable only by tokens without "kid". Malformed documents throw ParseError.
// - verify_token(token, keys, policy, now) accepts a token only when: it is three
//   base64url parts; the header's alg is RS256 or ES256 (none, HS*, everything else
//   refused) and matches the key's type; the key is found by kid; the signature
//   verifies; iss equals policy.issuer; aud (string or array) contains policy.audience;
//   exp is present and now < exp + leeway; nbf (when present) <= now + leeway.
//   Otherwise it throws TokenError with a reason fit for the client (never the token).
// - Claims: sub, scope (space-separated string, or "scp" array), and the grants
//   "pecd_mailboxes" (addresses) and "pecd_domains" (domains) that say what it may reach.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"
#include "core/error.hpp"

namespace pecd::api {

class TokenError : public Error {
public:
    using Error::Error;
};

struct Jwk {
    std::string kid;
    std::string alg;             // "RS256" or "ES256": the only algorithm the key may verify
    std::shared_ptr<void> pkey;  // EVP_PKEY, freed by its deleter
};

struct KeySet {
    std::vector<Jwk> keys;
    const Jwk* find(std::string_view kid) const;
};

KeySet parse_jwks(std::string_view json);

struct TokenPolicy {
    std::string issuer;
    std::string audience;
    std::chrono::seconds leeway{60};
};

struct Claims {
    std::string subject;
    std::string issuer;
    std::string token_id;  // jti, when present (audit)
    std::vector<std::string> scopes;
    std::vector<std::string> mailboxes;  // lower-cased
    std::vector<std::string> domains;    // lower-cased
    TimePoint expires{};

    bool has_scope(std::string_view s) const;
    // Whether the token's grants cover this (lower-cased) address.
    bool may_reach(std::string_view address) const;
};

// The unverified header's kid (empty when absent); TokenError when unreadable.
std::string token_kid(std::string_view token);
Claims verify_token(std::string_view token, const KeySet& keys, const TokenPolicy& policy, TimePoint now);

std::string base64url_decode(std::string_view in);  // TokenError on bad input
std::string base64url_encode(std::string_view in);

}  // namespace pecd::api
