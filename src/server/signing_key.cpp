#include "server/signing_key.hpp"

#include "core/fs.hpp"

namespace pecd::server {

crypto::KeySource signing_key_source(const config::Pec& pec) {
    crypto::KeySource ks;
    ks.certificate = pec.signing_certificate;
    ks.key = pec.signing_key;
    ks.pkcs11_module = pec.pkcs11_module;
    ks.pkcs11_token = pec.pkcs11_token;
    ks.pkcs11_key_label = pec.pkcs11_key_label;
    if (!pec.pkcs11_pin_file.empty()) {
        ks.pkcs11_pin = fs::read_file(pec.pkcs11_pin_file);
        while (!ks.pkcs11_pin.empty() && (ks.pkcs11_pin.back() == '\n' || ks.pkcs11_pin.back() == '\r'))
            ks.pkcs11_pin.pop_back();
    }
    return ks;
}

}  // namespace pecd::server
