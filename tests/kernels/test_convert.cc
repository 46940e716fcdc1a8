// float16/bfloat16 conversions: known values and edge cases of the scalar helpers (subnormals, inf,
// NaN, ties to even), and every SIMD path's vector conversion bit-identical to them: every float16
// and bfloat16 value exhaustively, and floats around every rounding boundary.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <random>
#include <vector>

#include "algos/kernels/reduce.h"
#include "kernel_reference.h"

namespace trellis::algos {
namespace {

using testing::kIsas;

TEST(Convert, HalfKnownValuesAndEdgeCases) {
  EXPECT_EQ(floatToHalf(1.0f), 0x3c00);
  EXPECT_EQ(floatToHalf(-2.0f), 0xc000);
  EXPECT_EQ(floatToHalf(0.0f), 0x0000);
  EXPECT_EQ(floatToHalf(-0.0f), 0x8000);
  EXPECT_EQ(floatToHalf(65504.0f), 0x7bff);    // largest finite
  EXPECT_EQ(floatToHalf(65519.996f), 0x7bff);  // just below the halfway point to 2^16
  EXPECT_EQ(floatToHalf(65520.0f), 0x7c00);    // halfway: ties to even, which is infinity
  EXPECT_EQ(floatToHalf(INFINITY), 0x7c00);
  EXPECT_EQ(floatToHalf(-INFINITY), 0xfc00);
  EXPECT_EQ(floatToHalf(1e30f), 0x7c00);
  EXPECT_EQ(floatToHalf(std::ldexp(1.0f, -14)), 0x0400);             // smallest normal
  EXPECT_EQ(floatToHalf(std::ldexp(1023.0f, -24)), 0x03ff);          // largest subnormal
  EXPECT_EQ(floatToHalf(std::ldexp(1.0f, -24)), 0x0001);             // smallest subnormal
  EXPECT_EQ(floatToHalf(std::ldexp(1.0f, -25)), 0x0000);             // tie -> even (0)
  EXPECT_EQ(floatToHalf(std::ldexp(3.0f, -25)), 0x0002);             // 1.5 ulp: tie -> even (2)
  EXPECT_EQ(floatToHalf(std::ldexp(3.0f, -26)), 0x0001);             // above the tie -> 1
  EXPECT_EQ(floatToHalf(-std::ldexp(1.0f, -26)), 0x8000);            // underflows to -0
  EXPECT_EQ(floatToHalf(1e-40f), 0x0000);                            // float subnormal
  EXPECT_EQ(floatToHalf(1.0f + std::ldexp(1.0f, -11)), 0x3c00);      // tie -> even (down)
  EXPECT_EQ(floatToHalf(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);  // tie -> even (up)
  EXPECT_EQ(floatToHalf(std::nextafter(1.0f + std::ldexp(1.0f, -11), 2.0f)),
            0x3c01);  // just above a tie
  // NaN: quieted, sign and top payload bits kept.
  EXPECT_EQ(floatToHalf(std::bit_cast<float>(0x7fc00000u)), 0x7e00);
  EXPECT_EQ(floatToHalf(std::bit_cast<float>(0xff800001u)),
            0xfe00);  // signalling, low payload lost
  EXPECT_EQ(floatToHalf(std::bit_cast<float>(0x7fa02000u)), 0x7f01);
  EXPECT_EQ(std::bit_cast<uint32_t>(halfToFloat(0x7c01)), 0x7fc02000u);  // signalling -> quiet
  EXPECT_EQ(halfToFloat(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(halfToFloat(0x03ff), std::ldexp(1023.0f, -24));
  EXPECT_EQ(halfToFloat(0x8000), -0.0f);
  EXPECT_TRUE(std::signbit(halfToFloat(0x8000)));
  EXPECT_EQ(halfToFloat(0xfc00), -INFINITY);
  EXPECT_EQ(halfToFloat(0x3555), 0.333251953125f);
  // Every non-NaN half round-trips exactly through float.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue;
    ASSERT_EQ(floatToHalf(halfToFloat(static_cast<uint16_t>(h))), h) << std::hex << h;
  }
}

TEST(Convert, Bf16KnownValuesAndEdgeCases) {
  EXPECT_EQ(floatToBf16(1.0f), 0x3f80);
  EXPECT_EQ(floatToBf16(-0.0f), 0x8000);
  EXPECT_EQ(floatToBf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);      // tie -> even (down)
  EXPECT_EQ(floatToBf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);  // tie -> even (up)
  EXPECT_EQ(floatToBf16(std::nextafter(1.0f + std::ldexp(1.0f, -8), 2.0f)), 0x3f81);
  EXPECT_EQ(floatToBf16(std::bit_cast<float>(0x7f7fffffu)), 0x7f80);  // largest float rounds to inf
  EXPECT_EQ(floatToBf16(INFINITY), 0x7f80);
  EXPECT_EQ(floatToBf16(-INFINITY), 0xff80);
  EXPECT_EQ(floatToBf16(std::bit_cast<float>(0x00000001u)), 0x0000);  // smallest float subnormal
  EXPECT_EQ(floatToBf16(std::bit_cast<float>(0x00018000u)), 0x0002);  // subnormal tie -> even
  EXPECT_EQ(floatToBf16(std::bit_cast<float>(0x7f800001u)), 0x7fc0);  // signalling NaN quieted
  EXPECT_EQ(floatToBf16(std::bit_cast<float>(0xffc00000u)), 0xffc0);
  EXPECT_EQ(bf16ToFloat(0x3f80), 1.0f);
  EXPECT_EQ(std::bit_cast<uint32_t>(bf16ToFloat(0x0001)), 0x00010000u);  // subnormal, exact
  for (uint32_t b = 0; b < 0x10000; ++b) {
    if ((b & 0x7f80) == 0x7f80 && (b & 0x7f)) continue;
    ASSERT_EQ(floatToBf16(bf16ToFloat(static_cast<uint16_t>(b))), b) << std::hex << b;
  }
}

// Floats that stress rounding: for every 16-bit high part, low parts at and around the half/bf16
// rounding boundaries, plus random ones.
std::vector<float> boundaryFloats() {
  std::vector<float> out;
  std::mt19937 rng(5);
  const uint32_t kLow[] = {0x0000, 0x0001, 0x0fff, 0x1000, 0x1001, 0x1fff,
                           0x2000, 0x7fff, 0x8000, 0x8001, 0xffff};
  for (uint32_t hi = 0; hi < 0x10000; ++hi) {
    for (uint32_t lo : kLow) out.push_back(std::bit_cast<float>(hi << 16 | lo));
    out.push_back(std::bit_cast<float>(hi << 16 | (static_cast<uint32_t>(rng()) & 0xffffu)));
  }
  return out;
}

TEST(Convert, EveryPathMatchesScalarBitForBit) {
  const std::vector<float> floats = boundaryFloats();
  std::vector<uint16_t> all(0x10000);
  for (uint32_t h = 0; h < 0x10000; ++h) all[h] = static_cast<uint16_t>(h);
  int paths = 0;
  for (const char* isa : kIsas) {
    if (!detail::setIsaForTesting(isa)) continue;
    ++paths;
    for (trellisDataType_t dt : {trellisFloat16, trellisBfloat16}) {
      const bool half = dt == trellisFloat16;
      std::vector<float> widened(all.size() + 1, -1.0f);
      detail::lowpToFloat(widened.data() + 1, all.data(), all.size() - 1,
                          dt);  // odd count, unaligned dst
      for (size_t h = 0; h + 1 < all.size(); ++h) {
        const float want = half ? halfToFloat(all[h]) : bf16ToFloat(all[h]);
        ASSERT_EQ(std::bit_cast<uint32_t>(widened[h + 1]), std::bit_cast<uint32_t>(want))
            << isa << " " << dtypeName(dt) << " widen 0x" << std::hex << h;
      }
      std::vector<uint16_t> narrowed(floats.size());
      detail::floatToLowp(narrowed.data(), floats.data(), floats.size(), dt);
      for (size_t i = 0; i < floats.size(); ++i) {
        const uint16_t want = half ? floatToHalf(floats[i]) : floatToBf16(floats[i]);
        ASSERT_EQ(narrowed[i], want) << isa << " " << dtypeName(dt) << " narrow float 0x"
                                     << std::hex << std::bit_cast<uint32_t>(floats[i]);
      }
    }
  }
  detail::setIsaForTesting("auto");
  EXPECT_GE(paths, 1);
}

}  // namespace
}  // namespace trellis::algos
