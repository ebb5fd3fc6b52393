// allocator.hpp - the process's memory allocator: which one serves malloc, and its tuning
#pragma once

#include <string>

namespace pecd::app {

// Fixes the system allocator's thresholds when it is the one in use (see allocator.cpp).
void tune_allocator();

// "mimalloc 2.0.9", or "system (glibc)"; names the allocator that actually serves
// malloc() in this process, not the one the build asked for.
std::string allocator_in_use();

}  // namespace pecd::app
