// mutate.hpp - deterministic input mutation for the fuzz smoke tests in the normal suite
//
// The smoke tests feed the fuzz targets' entry functions a fixed set of mutations of
// their seed corpus: a seeded PRNG, so every run tries the same inputs and a failure
// reproduces. libFuzzer itself (scripts/fuzz.sh) explores far more; these keep the entry
// functions exercised by every test run.
#pragma once

#include <filesystem>
#include <random>
#include <string>
#include <vector>

namespace pecd::fuzz {

// The files of `dir` whose name ends in `ext` ("" for all), sorted by name, read whole.
std::vector<std::string> load_dir(const std::filesystem::path& dir, const std::string& ext);

// One to four edits of `in`: bit flips, special bytes, cuts, repeats, one of `tokens`
// inserted, truncation, or a splice from `other`.
std::string mutate(const std::string& in, const std::string& other, std::mt19937& rng,
                   const std::vector<std::string>& tokens);

}  // namespace pecd::fuzz
