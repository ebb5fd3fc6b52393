// config_check.hpp - what `pecd --check-config` verifies beyond the TOML itself: the
// files the configuration names
//
// Before a restart or a certificate deployment an operator wants to know that the daemon
// will start, not only that the file parses. check_files() reads every file a setting
// names, the way the daemon will, without binding a port or opening the database:
//   - certificate/key pairs ([tls], each listener and SNI entry, [api], the outbound
//     client pair, the PEC signing pair): the chain parses, the key parses and belongs to
//     the leaf, the leaf has not expired;
//   - certificate bundles (trust anchors, CA files): at least one certificate, all
//     parsable;
//   - the provider index file: parsed (and verified when signed) as the daemon loads it;
//   - the CRL file: at least one CRL, PEM or DER, none past its next update;
//   - other files (secrets, the JWKS file, the PKCS#11 module): present and readable; a
//     secret's content is never read into a message;
//   - the data directory: a writable directory, or creatable in a writable parent.
// Each problem names the setting's key and the reason.
#pragma once

#include <string>
#include <vector>

#include "config/config.hpp"
#include "core/clock.hpp"

namespace pecd::server {

struct ConfigProblem {
    std::string key;  // e.g. "listener[2].key"
    std::string problem;
};

std::vector<ConfigProblem> check_files(const config::Config& c, TimePoint now);

}  // namespace pecd::server
