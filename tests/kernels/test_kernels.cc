// Reduction kernels on their own: every datatype x op x SIMD path available on this CPU against a
// scalar double/integer reference, odd lengths, unaligned pointers, aliasing, reduceMany, Avg's
// division, and the float16/bfloat16 conversions (edge cases and bit-exactness across paths).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "algos/kernels/reduce.h"

namespace trellis::algos {
namespace {

const char* kIsas[] = {"scalar", "avx2", "avx512"};
const size_t kLengths[] = {0, 1, 7, 31, 33, 1023, 4097};

// Random bytes that are valid inputs: finite values in a modest range for the float types.
std::vector<uint8_t> randomInput(trellisDataType_t dt, size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> out(n * dtypeSize(dt) + 64);
  std::uniform_real_distribution<float> f(-100, 100);
  for (size_t i = 0; i < n; ++i) {
    uint8_t* p = out.data() + i * dtypeSize(dt);
    switch (dt) {
      case trellisFloat16: { uint16_t h = floatToHalf(f(rng)); std::memcpy(p, &h, 2); break; }
      case trellisBfloat16: { uint16_t b = floatToBf16(f(rng)); std::memcpy(p, &b, 2); break; }
      case trellisFloat32: { float v = f(rng); std::memcpy(p, &v, 4); break; }
      case trellisFloat64: { double v = f(rng); std::memcpy(p, &v, 8); break; }
      default:
        for (size_t b = 0; b < dtypeSize(dt); ++b) p[b] = static_cast<uint8_t>(rng());
    }
  }
  return out;
}

// Reference for one element, computed on the widened value with the same rounding rules.
template <typename T>
T refInt(T a, T b, trellisRedOp_t op) {
  using U = std::make_unsigned_t<T>;
  switch (op) {
    case trellisProd: return static_cast<T>(static_cast<U>(static_cast<U>(a) * static_cast<U>(b)));
    case trellisMax: return a < b ? b : a;
    case trellisMin: return b < a ? b : a;
    default: return static_cast<T>(static_cast<U>(static_cast<U>(a) + static_cast<U>(b)));
  }
}
template <typename F>
F refFloat(F a, F b, trellisRedOp_t op) {
  switch (op) {
    case trellisProd: return a * b;
    case trellisMax: return a < b ? b : a;
    case trellisMin: return b < a ? b : a;
    default: return a + b;
  }
}

void reference(void* d, const void* a, const void* b, size_t n, trellisDataType_t dt, trellisRedOp_t op) {
  for (size_t i = 0; i < n; ++i) {
#define INT_CASE(TT, T)                                                                       \
  case TT: static_cast<T*>(d)[i] = refInt<T>(static_cast<const T*>(a)[i], static_cast<const T*>(b)[i], op); break;
    switch (dt) {
      INT_CASE(trellisInt8, int8_t)
      INT_CASE(trellisUint8, uint8_t)
      INT_CASE(trellisInt32, int32_t)
      INT_CASE(trellisUint32, uint32_t)
      INT_CASE(trellisInt64, int64_t)
      INT_CASE(trellisUint64, uint64_t)
      case trellisFloat32: static_cast<float*>(d)[i] = refFloat(static_cast<const float*>(a)[i], static_cast<const float*>(b)[i], op); break;
      case trellisFloat64: static_cast<double*>(d)[i] = refFloat(static_cast<const double*>(a)[i], static_cast<const double*>(b)[i], op); break;
      case trellisFloat16:
        static_cast<uint16_t*>(d)[i] = floatToHalf(refFloat(halfToFloat(static_cast<const uint16_t*>(a)[i]), halfToFloat(static_cast<const uint16_t*>(b)[i]), op));
        break;
      case trellisBfloat16:
        static_cast<uint16_t*>(d)[i] = floatToBf16(refFloat(bf16ToFloat(static_cast<const uint16_t*>(a)[i]), bf16ToFloat(static_cast<const uint16_t*>(b)[i]), op));
        break;
      default: break;
    }
#undef INT_CASE
  }
}

TEST(Kernels, EveryTypeOpPathLengthAlignmentAndAlias) {
  int paths = 0;
  for (const char* isa : kIsas) {
    if (!detail::setIsaForTesting(isa)) continue;  // this CPU lacks it
    ++paths;
    for (int d = 0; d < trellisNumTypes; ++d)
      for (int o = 0; o < trellisNumOps; ++o)
        for (size_t n : kLengths)
          for (size_t misalign : {size_t{0}, size_t{1}, size_t{3}}) {
            auto dt = static_cast<trellisDataType_t>(d);
            auto op = static_cast<trellisRedOp_t>(o);
            const size_t es = dtypeSize(dt), off = misalign * es % 64;
            auto a = randomInput(dt, n + misalign, 11 + d * 7 + o), b = randomInput(dt, n + misalign, 99 + d);
            std::vector<uint8_t> want(n * es + 64), got(n * es + 64, 0xcd);
            reference(want.data(), a.data() + off, b.data() + off, n, dt, op);
            reduce2(got.data() + off, a.data() + off, b.data() + off, n, dt, op);
            ASSERT_EQ(std::memcmp(want.data(), got.data() + off, n * es), 0)
                << isa << " " << dtypeName(dt) << " " << opName(op) << " n=" << n << " misalign=" << misalign;
            EXPECT_EQ(got[off + n * es], 0xcd) << "wrote past the end";
            // dst aliasing a, then b.
            std::vector<uint8_t> x(a);
            reduce2(x.data() + off, x.data() + off, b.data() + off, n, dt, op);
            ASSERT_EQ(std::memcmp(want.data(), x.data() + off, n * es), 0) << isa << " alias a " << dtypeName(dt);
            std::vector<uint8_t> y(b);
            reduce2(y.data() + off, a.data() + off, y.data() + off, n, dt, op);
            ASSERT_EQ(std::memcmp(want.data(), y.data() + off, n * es), 0) << isa << " alias b " << dtypeName(dt);
          }
  }
  detail::setIsaForTesting("auto");
  EXPECT_GE(paths, 1);
  std::printf("checked %d SIMD paths; auto picks %s\n", paths, reduceIsaName());
}

TEST(Kernels, ReduceManyAccumulatesHalfTypesInFloat) {
  // 1 + 9 * 2^-11 in float16: adding 2^-11 one at a time rounds away each time (ties to even), but
  // accumulating in float32 first keeps it.
  const int k = 9;
  std::vector<uint16_t> one(5, floatToHalf(1.0f)), tiny(5, floatToHalf(std::ldexp(1.0f, -11)));
  std::vector<const void*> srcs = {one.data()};
  for (int j = 1; j < k; ++j) srcs.push_back(tiny.data());
  std::vector<uint16_t> out(5);
  reduceMany(out.data(), srcs.data(), k, 5, trellisFloat16, trellisSum);
  EXPECT_EQ(halfToFloat(out[4]), halfToFloat(floatToHalf(1.0f + 8 * std::ldexp(1.0f, -11))));
  // Integers: same as chained reduce2.
  std::vector<int32_t> v[4];
  std::vector<const void*> p;
  for (int j = 0; j < 4; ++j) {
    v[j].assign(10000, j * 3 - 4);
    p.push_back(v[j].data());
  }
  std::vector<int32_t> r(10000);
  reduceMany(r.data(), p.data(), 4, r.size(), trellisInt32, trellisSum);
  EXPECT_EQ(r[9999], -4 + -1 + 2 + 5);
}

TEST(Kernels, AvgDivision) {
  std::vector<int32_t> i = {7, -7, 8};
  divideInPlace(i.data(), 3, trellisInt32, 2);
  EXPECT_EQ(i, (std::vector<int32_t>{3, -3, 4}));
  std::vector<float> f = {1, 2, 3};
  divideInPlace(f.data(), 3, trellisFloat32, 3);
  EXPECT_FLOAT_EQ(f[0], 1.0f / 3);
  uint16_t h = floatToHalf(3.0f);
  divideInPlace(&h, 1, trellisFloat16, 2);
  EXPECT_EQ(halfToFloat(h), 1.5f);
}

TEST(Kernels, HalfAndBf16Conversions) {
  EXPECT_EQ(floatToHalf(1.0f), 0x3c00);
  EXPECT_EQ(floatToHalf(65504.0f), 0x7bff);
  EXPECT_EQ(floatToHalf(65520.0f), 0x7c00);  // rounds to infinity
  EXPECT_EQ(floatToHalf(-INFINITY), 0xfc00);
  EXPECT_EQ(floatToHalf(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(floatToHalf(std::ldexp(1.0f, -25)), 0x0000);  // tie to even -> 0
  EXPECT_EQ(floatToHalf(std::ldexp(3.0f, -26)), 0x0001);  // above the tie -> 1
  EXPECT_TRUE(std::isnan(halfToFloat(floatToHalf(NAN))));
  EXPECT_EQ(halfToFloat(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(halfToFloat(0x3555), 0.333251953125f);
  // Ties to even in the normal range: 1 + 2^-11 is halfway between 1 and 1 + 2^-10.
  EXPECT_EQ(floatToHalf(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  EXPECT_EQ(floatToHalf(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  EXPECT_EQ(floatToBf16(1.0f), 0x3f80);
  EXPECT_EQ(floatToBf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);       // tie -> even
  EXPECT_EQ(floatToBf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);   // tie -> even (up)
  EXPECT_TRUE(std::isnan(bf16ToFloat(floatToBf16(NAN))));
  // Every half value round-trips exactly through float.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue;  // NaNs: quieted, checked above
    ASSERT_EQ(floatToHalf(halfToFloat(static_cast<uint16_t>(h))), h) << std::hex << h;
  }
}

}  // namespace
}  // namespace trellis::algos
