// jwt_helpers.hpp - what the API tests need to act as an identity provider: a key's
// public numbers as JWK members, the JWK Set of the test keys, and a compact JWS signed
// with a key (RS256, or ES256 in its r||s form). Header-only, for the test binaries.
#pragma once

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "api/jwt.hpp"

namespace pecd::api::test {

// A big-number parameter of the key (e.g. OSSL_PKEY_PARAM_RSA_N), base64url, as JWK wants it.
inline std::string bn_b64(EVP_PKEY* k, const char* name) {
    BIGNUM* bn = nullptr;
    EVP_PKEY_get_bn_param(k, name, &bn);
    std::string s(static_cast<std::size_t>(BN_num_bytes(bn)), '\0');
    BN_bn2bin(bn, reinterpret_cast<unsigned char*>(s.data()));
    BN_free(bn);
    return base64url_encode(s);
}

// The JWK Set of an RSA key (kid "rsa1") and a P-256 key (kid "ec1"), as an identity
// provider publishes it.
inline nlohmann::json jwks_of(EVP_PKEY* rsa, EVP_PKEY* ec) {
    unsigned char pub[65];
    std::size_t publen = 0;
    EVP_PKEY_get_octet_string_param(ec, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof pub, &publen);
    if (publen != 65) throw std::runtime_error("not an uncompressed P-256 public key");
    return {{"keys",
             {{{"kty", "RSA"},
               {"kid", "rsa1"},
               {"use", "sig"},
               {"n", bn_b64(rsa, OSSL_PKEY_PARAM_RSA_N)},
               {"e", bn_b64(rsa, OSSL_PKEY_PARAM_RSA_E)}},
              {{"kty", "EC"},
               {"kid", "ec1"},
               {"crv", "P-256"},
               {"x", base64url_encode(std::string(reinterpret_cast<char*>(pub) + 1, 32))},
               {"y", base64url_encode(std::string(reinterpret_cast<char*>(pub) + 33, 32))}}}}};
}

// Signs header.payload with the key (RS256 or ES256 r||s form).
inline std::string sign(EVP_PKEY* key, const nlohmann::json& header, const nlohmann::json& payload) {
    std::string input = base64url_encode(header.dump()) + "." + base64url_encode(payload.dump());
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key);
    std::size_t len = 0;
    EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()), input.size());
    std::string sig(len, '\0');
    EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                   reinterpret_cast<const unsigned char*>(input.data()), input.size());
    sig.resize(len);
    EVP_MD_CTX_free(ctx);
    if (header["alg"] == "ES256") {
        const unsigned char* p = reinterpret_cast<const unsigned char*>(sig.data());
        ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
        std::string raw(64, '\0');
        BN_bn2binpad(ECDSA_SIG_get0_r(es), reinterpret_cast<unsigned char*>(raw.data()), 32);
        BN_bn2binpad(ECDSA_SIG_get0_s(es), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
        ECDSA_SIG_free(es);
        sig = raw;
    }
    return input + "." + base64url_encode(sig);
}

}  // namespace pecd::api::test
