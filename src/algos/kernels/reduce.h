// CPU reduction kernels for every datatype and op, with the SIMD path (AVX-512, AVX2, scalar)
// chosen once at run time from the CPU (never compiled with -march=native). float16 and bfloat16
// are widened to float32, combined, and rounded once (round to nearest even), identically in every
// path. Integer Sum/Prod wrap (computed in the unsigned type). Max/Min use `a < b ? b : a` and
// `b < a ? b : a`: with a NaN operand the result is the second operand.
#pragma once

#include <cstddef>
#include <cstdint>

#include "trellis/trellis.h"

namespace trellis::algos {

/// Bytes per element; 0 for an invalid datatype.
size_t dtypeSize(trellisDataType_t dt);
/// "int8", "uint8", "int32", "uint32", "int64", "uint64", "float16", "float32", "float64", "bfloat16".
const char* dtypeName(trellisDataType_t dt);
/// "sum", "prod", "max", "min", "avg".
const char* opName(trellisRedOp_t op);

/// dst[i] = a[i] OP b[i] for i < n. dst may alias a and/or b exactly. Avg behaves as Sum.
void reduce2(void* dst, const void* a, const void* b, size_t n, trellisDataType_t dt, trellisRedOp_t op);
/// dst[i] = OP over j < k of srcs[j][i] (k >= 1); dst may alias srcs[0]. float16/bfloat16 accumulate
/// in float32 across all k inputs and round once. Avg behaves as Sum.
void reduceMany(void* dst, const void* const* srcs, int k, size_t n, trellisDataType_t dt, trellisRedOp_t op);
/// Avg's final step: dst[i] /= divisor (integers: C truncating division; floats: true division,
/// float16/bfloat16 computed in float32 and rounded once).
void divideInPlace(void* dst, size_t n, trellisDataType_t dt, int divisor);

/// IEEE half <-> float, round to nearest even, NaN kept (quieted), as the F16C instructions do.
float halfToFloat(uint16_t h);
uint16_t floatToHalf(float f);
/// bfloat16 <-> float, round to nearest even, NaN kept (quieted).
float bf16ToFloat(uint16_t b);
uint16_t floatToBf16(float f);

/// The SIMD path in use: "avx512", "avx2" or "scalar".
const char* reduceIsaName();

namespace detail {
/// Forces a path ("avx512", "avx2", "scalar"; "auto" restores the CPU's best); false when the CPU
/// lacks it.
bool setIsaForTesting(const char* name);
}  // namespace detail

}  // namespace trellis::algos
