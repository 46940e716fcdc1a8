// Internal: bfloat16 <-> float bit manipulation shared by the public helpers (convert.cc) and the
// kernel loops, so that every path rounds identically. bfloat16 is the top half of a float32.
#pragma once

#include <bit>
#include <cstdint>

namespace trellis::algos {

inline float bf16Widen(uint16_t b) { return std::bit_cast<float>(static_cast<uint32_t>(b) << 16); }

// Round to nearest, ties to even: add 0x7fff plus the lowest kept bit, then truncate. Cannot
// overflow for non-NaN inputs (the largest, -inf, is 0xff800000). NaN keeps its sign and top
// payload bits and is quieted (bit 6 of the bfloat16), as the AVX-512 BF16 instructions do.
inline uint16_t bf16Narrow(float f) {
  const uint32_t u = std::bit_cast<uint32_t>(f);
  const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  const uint32_t quietNan = (u >> 16) | 0x40u;
  return static_cast<uint16_t>((u & 0x7fffffffu) > 0x7f800000u ? quietNan : rounded);
}

}  // namespace trellis::algos
