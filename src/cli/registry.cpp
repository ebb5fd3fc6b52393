#include "cli/registry.hpp"

namespace pecd::cli {

std::vector<GroupRegistrar>& groups() {
    static std::vector<GroupRegistrar> g;
    return g;
}

}  // namespace pecd::cli
