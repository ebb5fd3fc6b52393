// jwt_entries.cpp - the token verifier's promises (see jwt_entries.hpp)
#include "jwt_entries.hpp"

#include <exception>

#include "api/jwt.hpp"

namespace pecd::fuzz {
namespace {

// The public halves of the keys that signed fuzz/jwt/corpus.
constexpr std::string_view kJwks =
    R"json({"keys": [{"kty": "RSA", "kid": "rsa1", "use": "sig", "n": "mYqT5B2FGNoKJ7qxPPSOJtAxipwRsGJRc70oVJBXNX-TAbFngIasbp_86zFqyKWUZbfQEi0VfGe4OZHh17HQT5C6_wDsts8PtZzbNrFEXatQgOXhB__0HcMlJXDuTu6LTkTvO-yzZ9NqAoBCwjozY9yQpRB_yO7HvdFTvppLZb8mBZ-SW7en_9BnAr-VAaq-e5lNPWYZ4xKp9J_QV8QCjeavuck43A8NZ6FS6H8jMNU8kXYMJqUr9reVZqyJtVsCMeCetDdcIn_liMwvz_kAFnzqz_ilXL5XiDJmhrR1xQln6WQLG3K-Ky2eeXpr8-yA_J6KaeGzGsmWXQ2ZFGeBqw", "e": "AQAB"}, {"kty": "EC", "kid": "ec1", "crv": "P-256", "x": "RstBQgdXNIbAkMiyVpfMP_weh8f_YmRV2obHY3npzlc", "y": "_oP8ApWiErpIMVbK6I2U1l18I5KBwyVJbH02D5WsgIY"}]})json";

const api::KeySet& keys() {
    static const api::KeySet k = api::parse_jwks(kJwks);
    return k;
}

std::string spelling_problem(std::string_view token) {
    std::size_t start = 0;
    for (int part = 0; part < 3; ++part) {
        auto dot = part < 2 ? token.find('.', start) : token.size();
        if (dot == std::string_view::npos) return "accepted without three parts";
        auto text = token.substr(start, dot - start);
        if (api::base64url_encode(api::base64url_decode(text)) != text)
            return "accepted in a non-canonical spelling (part " + std::to_string(part + 1) + ")";
        start = dot + 1;
    }
    return {};
}

}  // namespace

JwtOutcome jwt_entry(std::string_view token) {
    JwtOutcome out;
    const api::TokenPolicy policy{"https://idp.test", "pecd-api", std::chrono::seconds(30)};
    try {
        auto claims = api::verify_token(token, keys(), policy, kJwtNow);
        out.accepted = true;
        if (auto p = spelling_problem(token); !p.empty())
            out.violation = p;
        else if (claims.subject != "portal-a" || !claims.may_reach("x@a.example") ||
                 claims.may_reach("x@b.example"))
            out.violation = "accepted with claims nobody signed";
    } catch (const api::TokenError&) {
    } catch (const std::exception& e) {
        out.violation = std::string("escaped: ") + e.what();
    }
    return out;
}

}  // namespace pecd::fuzz
