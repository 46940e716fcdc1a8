// Test-side reference for the reduction kernels: one element at a time, in double for the floating
// types and in the 64-bit unsigned type for integers. Rounding a single double operation on two
// float (or float16/bfloat16) operands back to float gives exactly the float result (53 >= 2*24+2:
// double rounding is innocuous), so the reference is bit-exact, not approximate.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "algos/kernels/reduce.h"

namespace trellis::algos::testing {

/// The SIMD paths this test binary tries; setIsaForTesting says which the CPU has.
inline const char* const kIsas[] = {"scalar", "avx2", "avx512"};

inline bool isFloatType(trellisDataType_t dt) {
  return dt == trellisFloat16 || dt == trellisBfloat16 || dt == trellisFloat32 ||
         dt == trellisFloat64;
}

/// Element i of a buffer of type dt as double (integers: exact only up to 2^53, use the raw bits).
inline double loadAsDouble(const void* p, size_t i, trellisDataType_t dt) {
  const auto* b = static_cast<const uint8_t*>(p) + i * dtypeSize(dt);
  switch (dt) {
    case trellisFloat16: {
      uint16_t h;
      std::memcpy(&h, b, 2);
      return halfToFloat(h);
    }
    case trellisBfloat16: {
      uint16_t h;
      std::memcpy(&h, b, 2);
      return bf16ToFloat(h);
    }
    case trellisFloat32: {
      float f;
      std::memcpy(&f, b, 4);
      return f;
    }
    case trellisFloat64: {
      double d;
      std::memcpy(&d, b, 8);
      return d;
    }
    default:
      return 0;
  }
}

/// Stores v rounded to dt (float16/bfloat16 through float: innocuous double rounding, see above).
inline void storeFromDouble(void* p, size_t i, trellisDataType_t dt, double v) {
  auto* b = static_cast<uint8_t*>(p) + i * dtypeSize(dt);
  switch (dt) {
    case trellisFloat16: {
      uint16_t h = floatToHalf(static_cast<float>(v));
      std::memcpy(b, &h, 2);
      break;
    }
    case trellisBfloat16: {
      uint16_t h = floatToBf16(static_cast<float>(v));
      std::memcpy(b, &h, 2);
      break;
    }
    case trellisFloat32: {
      float f = static_cast<float>(v);
      std::memcpy(b, &f, 4);
      break;
    }
    case trellisFloat64:
      std::memcpy(b, &v, 8);
      break;
    default:
      break;
  }
}

/// The documented float Max/Min: NaN-propagating (b's NaN when both are), else plain comparison.
inline double refFloatOp(double a, double b, trellisRedOp_t op) {
  switch (op) {
    case trellisProd:
      return a * b;
    case trellisMax:
      return std::isnan(b) ? b : std::isnan(a) ? a : (a < b ? b : a);
    case trellisMin:
      return std::isnan(b) ? b : std::isnan(a) ? a : (b < a ? b : a);
    default:
      return a + b;
  }
}

/// Integers as raw two's-complement bits in uint64_t; wraps to the type's width on store.
inline uint64_t loadBits(const void* p, size_t i, trellisDataType_t dt) {
  uint64_t v = 0;
  std::memcpy(&v, static_cast<const uint8_t*>(p) + i * dtypeSize(dt), dtypeSize(dt));
  return v;
}
inline int64_t signExtend(uint64_t v, trellisDataType_t dt) {
  const int bits = static_cast<int>(dtypeSize(dt) * 8);
  if (bits == 64) return static_cast<int64_t>(v);
  const uint64_t sign = uint64_t{1} << (bits - 1);
  return static_cast<int64_t>((v ^ sign) - sign);
}
inline bool isSigned(trellisDataType_t dt) {
  return dt == trellisInt8 || dt == trellisInt32 || dt == trellisInt64;
}
inline uint64_t refIntOp(uint64_t a, uint64_t b, trellisDataType_t dt, trellisRedOp_t op) {
  switch (op) {
    case trellisProd:
      return a * b;  // low bits of the product are the same signed or not
    case trellisMax:
    case trellisMin: {
      bool less = isSigned(dt) ? signExtend(a, dt) < signExtend(b, dt) : a < b;
      if (op == trellisMax) return less ? b : a;
      return less ? a : b;
    }
    default:
      return a + b;
  }
}

/// acc = acc OP src, element i, in the reference arithmetic (float16/bfloat16 accumulate in float).
struct RefAcc {
  trellisDataType_t dt;
  trellisRedOp_t op;
  double f = 0;
  uint64_t u = 0;
  void init(const void* p, size_t i) {
    if (isFloatType(dt))
      f = loadAsDouble(p, i, dt);
    else
      u = loadBits(p, i, dt);
  }
  void add(const void* p, size_t i) {
    if (!isFloatType(dt)) {
      u = refIntOp(u, loadBits(p, i, dt), dt, op);
      return;
    }
    double r = refFloatOp(f, loadAsDouble(p, i, dt), op);
    // float16/bfloat16 and float32 accumulate in float32: round after every operation.
    f = dt == trellisFloat64 ? r : static_cast<double>(static_cast<float>(r));
  }
  void store(void* p, size_t i) const {
    if (isFloatType(dt))
      storeFromDouble(p, i, dt, f);
    else
      std::memcpy(static_cast<uint8_t*>(p) + i * dtypeSize(dt), &u, dtypeSize(dt));
  }
};

/// Equal bit patterns, or both NaN (which NaN a Sum/Prod of two NaNs returns is not specified:
/// compilers may commute the operands).
inline bool sameElement(const void* x, const void* y, size_t i, trellisDataType_t dt) {
  const size_t es = dtypeSize(dt);
  const auto* a = static_cast<const uint8_t*>(x) + i * es;
  const auto* b = static_cast<const uint8_t*>(y) + i * es;
  if (std::memcmp(a, b, es) == 0) return true;
  return isFloatType(dt) && std::isnan(loadAsDouble(x, i, dt)) &&
         std::isnan(loadAsDouble(y, i, dt));
}

/// n random elements of dt. Floats: mostly in [-100, 100], with `specials` of them drawn from
/// NaN, +-inf, +-0, subnormals and the largest finite values.
inline std::vector<uint8_t> randomBuffer(trellisDataType_t dt, size_t n, uint32_t seed,
                                         bool specials = true) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> out(n * dtypeSize(dt) + 64);
  std::uniform_real_distribution<double> uni(-100, 100);
  const double kSpecial[] = {NAN,
                             -NAN,
                             INFINITY,
                             -INFINITY,
                             0.0,
                             -0.0,
                             5.9604644775390625e-08 /*half subnormal*/,
                             1e-40 /*float subnormal*/,
                             65504.0,
                             3.0e38,
                             1e-310};
  for (size_t i = 0; i < n; ++i) {
    if (!isFloatType(dt)) {
      uint64_t v = (static_cast<uint64_t>(rng()) << 32) | rng();
      std::memcpy(out.data() + i * dtypeSize(dt), &v, dtypeSize(dt));
      continue;
    }
    double v = uni(rng);
    if (specials && rng() % 16 == 0) v = kSpecial[rng() % std::size(kSpecial)];
    storeFromDouble(out.data(), i, dt, v);
  }
  return out;
}

}  // namespace trellis::algos::testing
