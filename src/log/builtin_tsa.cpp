// builtin_tsa.cpp - create once, then load, the built-in TSA identity (see builtin_tsa.hpp)
#include "log/builtin_tsa.hpp"

#include "core/fs.hpp"
#include "crypto/timestamp.hpp"

namespace pecd::log {

crypto::SigningIdentity load_or_create_builtin_tsa(const std::filesystem::path& dir,
                                                   const std::string& common_name) {
    const auto cert = dir / "tsa.pem";
    const auto key = dir / "tsa.key";
    if (!std::filesystem::exists(cert) || !std::filesystem::exists(key)) {
        fs::ensure_dir(dir, 0750);
        crypto::SigningIdentity fresh = crypto::create_tsa_identity(common_name);
        // Key first: a certificate without its key would be loaded and fail later.
        fs::write_file_durable(key, crypto::private_key_pem(fresh.key.get()), 0600);
        fs::write_file_durable(cert, crypto::certificate_pem(fresh.certificate.get()), 0644);
    }
    crypto::KeySource source;
    source.certificate = cert;
    source.key = key;
    return crypto::load_identity(source);
}

}  // namespace pecd::log
