// Scalar float16/bfloat16 conversions (the reference every SIMD path must match bit for bit) and
// datatype names.
#include <cstring>

#include "algos/kernels/bf16.h"
#include "algos/kernels/reduce.h"

namespace trellis::algos {

size_t dtypeSize(trellisDataType_t dt) {
  static const size_t kSizes[trellisNumTypes] = {1, 1, 4, 4, 8, 8, 2, 4, 8, 2};
  return static_cast<int>(dt) >= 0 && dt < trellisNumTypes ? kSizes[dt] : 0;
}

const char* dtypeName(trellisDataType_t dt) {
  static const char* kNames[trellisNumTypes] = {"int8",    "uint8",   "int32",   "uint32",
                                                "int64",   "uint64",  "float16", "float32",
                                                "float64", "bfloat16"};
  return static_cast<int>(dt) >= 0 && dt < trellisNumTypes ? kNames[dt] : "invalid";
}

const char* opName(trellisRedOp_t op) {
  static const char* kNames[trellisNumOps] = {"sum", "prod", "max", "min", "avg"};
  return static_cast<int>(op) >= 0 && op < trellisNumOps ? kNames[op] : "invalid";
}

static uint32_t bitsOf(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
static float fromBits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

float halfToFloat(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  if (exp == 0) {
    if (mant == 0) return fromBits(sign);
    // Subnormal half: normalise into a float.
    uint32_t e = 113;
    while (!(mant & 0x400)) {
      mant <<= 1;
      --e;
    }
    return fromBits(sign | (e << 23) | ((mant & 0x3ff) << 13));
  }
  if (exp == 31) return fromBits(sign | 0x7f800000 | (mant ? 0x400000 | (mant << 13) : 0));
  return fromBits(sign | ((exp + 112) << 23) | (mant << 13));
}

uint16_t floatToHalf(float f) {
  uint32_t x = bitsOf(f);
  uint32_t sign = (x >> 16) & 0x8000, ax = x & 0x7fffffff;
  if (ax >= 0x7f800000) {  // inf or NaN (quieted, top payload bits kept)
    if (ax > 0x7f800000) return static_cast<uint16_t>(sign | 0x7e00 | ((ax >> 13) & 0x3ff));
    return static_cast<uint16_t>(sign | 0x7c00);
  }
  if (ax >= 0x477ff000) return static_cast<uint16_t>(sign | 0x7c00);  // rounds to infinity
  if (ax < 0x38800000) {  // below the smallest normal half: subnormal or zero
    uint32_t e = ax >> 23;
    uint32_t shift = 126 - e;
    if (shift > 24) return static_cast<uint16_t>(sign);
    uint32_t mant = (ax & 0x7fffff) | 0x800000;
    uint32_t q = mant >> shift, rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1))) ++q;
    return static_cast<uint16_t>(sign | q);
  }
  uint32_t r = ax - (112u << 23);
  uint32_t q = r >> 13, rem = r & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (q & 1))) ++q;
  return static_cast<uint16_t>(sign | q);
}

float bf16ToFloat(uint16_t b) { return bf16Widen(b); }

uint16_t floatToBf16(float f) { return bf16Narrow(f); }

}  // namespace trellis::algos
