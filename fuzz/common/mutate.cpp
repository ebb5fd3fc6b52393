// mutate.cpp - deterministic input mutation for the fuzz smoke tests (see mutate.hpp)
#include "mutate.hpp"

#include <algorithm>

#include "core/fs.hpp"

namespace pecd::fuzz {

std::vector<std::string> load_dir(const std::filesystem::path& dir, const std::string& ext) {
    std::vector<std::string> out;
    std::vector<std::filesystem::path> files;
    for (auto& e : std::filesystem::directory_iterator(dir))
        if (ext.empty() || e.path().extension() == ext) files.push_back(e.path());
    std::sort(files.begin(), files.end());  // deterministic order
    for (auto& f : files) out.push_back(pecd::fs::read_file(f));
    return out;
}

std::string mutate(const std::string& in, const std::string& other, std::mt19937& rng,
                   const std::vector<std::string>& tokens) {
    std::string s = in;
    auto pick = [&](std::size_t n) {
        return n == 0 ? 0 : std::uniform_int_distribution<std::size_t>(0, n - 1)(rng);
    };
    int ops = 1 + static_cast<int>(pick(4));
    for (int i = 0; i < ops; ++i) {
        std::size_t pos = pick(s.size() + 1);
        switch (pick(7)) {
            case 0:
                if (!s.empty()) s[pick(s.size())] ^= static_cast<char>(1u << pick(8));
                break;
            case 1:
                if (!s.empty()) s[pick(s.size())] = "\r\n-:;=\"<>\0\xff"[pick(11)];
                break;
            case 2:
                if (pos < s.size()) s.erase(pos, 1 + pick(64));
                break;
            case 3:
                if (pos < s.size()) s.insert(pos, s.substr(pos, 1 + pick(128)));
                break;
            case 4:
                s.insert(std::min(pos, s.size()), tokens[pick(tokens.size())]);
                break;
            case 5:
                s.resize(pos);
                break;
            default: {
                if (other.empty()) break;
                std::size_t from = pick(other.size());
                std::size_t len = 1 + pick(256);
                s.replace(std::min(pos, s.size()), pick(64), other.substr(from, len));
            }
        }
    }
    return s;
}

}  // namespace pecd::fuzz
