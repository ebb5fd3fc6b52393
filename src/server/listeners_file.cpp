#include "server/listeners_file.hpp"

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/fs.hpp"

namespace pecd::server {

std::string tls_mode_name(smtp::TlsMode mode) {
    switch (mode) {
        case smtp::TlsMode::none: return "none";
        case smtp::TlsMode::starttls: return "starttls";
        case smtp::TlsMode::starttls_required: return "starttls-required";
        case smtp::TlsMode::implicit: return "implicit";
    }
    return "none";
}

smtp::TlsMode parse_tls_mode(const std::string& name) {
    if (name == "none") return smtp::TlsMode::none;
    if (name == "starttls") return smtp::TlsMode::starttls;
    if (name == "starttls-required") return smtp::TlsMode::starttls_required;
    if (name == "implicit") return smtp::TlsMode::implicit;
    throw Error("unknown TLS mode '" + name + "'");
}

void write_listeners_file(const std::filesystem::path& path, const std::string& hostname,
                          const std::vector<BoundListener>& listeners) {
    nlohmann::json doc;
    doc["pid"] = ::getpid();
    doc["hostname"] = hostname;
    doc["listeners"] = nlohmann::json::array();
    for (auto& l : listeners)
        doc["listeners"].push_back(
            {{"name", l.name}, {"address", l.address}, {"port", l.port}, {"tls", tls_mode_name(l.tls)}});
    fs::write_file_durable(path, doc.dump(2) + "\n");
}

}  // namespace pecd::server
