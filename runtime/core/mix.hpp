#pragma once

// SplitMix64's mixing step, shared by every stable hash Parley stores or
// places by (partition_of in placement.hpp, writer_ids.hpp). Data is placed
// and fenced by it: DO NOT CHANGE.

#include <cstdint>

namespace parley::mix {

/// SplitMix64's increment: 2^64 / phi, odd (the "golden gamma").
inline constexpr uint64_t golden_gamma = 0x9E3779B97F4A7C15ull;

/// SplitMix64's finalizer (David Stafford's Mix13).
constexpr uint64_t fmix(uint64_t z) {
  z ^= z >> 30;
  z *= 0xBF58476D1CE4E5B9ull;
  z ^= z >> 27;
  z *= 0x94D049BB133111EBull;
  z ^= z >> 31;
  return z;
}

} // namespace parley::mix
