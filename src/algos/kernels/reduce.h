// CPU reduction kernels used by every collective algorithm on arrived chunks.
//
// Three implementations of the same loops (AVX-512, AVX2+F16C, baseline x86-64) are compiled into
// the library; one is chosen once at run time from the CPU, or forced with TRELLIS_REDUCE_ISA
// (never by compiling with -march=native). All paths give bit-identical results:
//  - integers: Sum and Prod wrap modulo 2^bits (computed in the unsigned type, no signed-overflow
//  UB);
//  - float16/bfloat16: widened to float32, combined, rounded once to nearest even;
//  - floating Max/Min propagate NaN: if either operand is NaN the result is NaN (b's when both
//  are),
//    unlike NCCL's plain comparison whose result depends on operand order. Otherwise
//    max = a < b ? b : a, min = b < a ? b : a (so for +0/-0 the result is a).
#pragma once

#include <cstddef>
#include <cstdint>

#include "trellis/trellis.h"

namespace trellis::algos {

/// Bytes per element; 0 for an invalid datatype.
size_t dtypeSize(trellisDataType_t dt);
/// "int8", "uint8", "int32", "uint32", "int64", "uint64", "float16", "float32", "float64",
/// "bfloat16"; "invalid" otherwise.
const char* dtypeName(trellisDataType_t dt);
/// "sum", "prod", "max", "min", "avg"; "invalid" otherwise.
const char* opName(trellisRedOp_t op);

/// dst[i] = a[i] OP b[i] for i < n elements. dst may alias a and/or b exactly (not partially).
/// Avg behaves as Sum (divideInPlace finishes it). No alignment needed beyond the element type's.
void reduce2(void* dst, const void* a, const void* b, size_t n, trellisDataType_t dt,
             trellisRedOp_t op);

/// dst[i] = OP over j < k of srcs[j][i], applied in order j = 0, 1, ... (k >= 1; k <= 0 does
/// nothing). dst may alias srcs[0] exactly. float16/bfloat16 accumulate in float32 across all k
/// inputs and round once (so the result can differ from chained reduce2 calls, by design). Avg
/// behaves as Sum.
void reduceMany(void* dst, const void* const* srcs, int k, size_t n, trellisDataType_t dt,
                trellisRedOp_t op);

/// Avg's final step: dst[i] = dst[i] / divisor. Integers: C truncating division; floats: true
/// division, correctly rounded (never a multiply by 1/divisor); float16/bfloat16: divided in
/// float32 and rounded once. divisor is a rank count: divisor < 1 leaves dst unchanged (warning).
void divideInPlace(void* dst, size_t n, trellisDataType_t dt, int divisor);

/// IEEE half -> float (exact; NaN keeps its payload and is quieted, as F16C does).
float halfToFloat(uint16_t h);
/// float -> IEEE half, round to nearest even, overflow to infinity, NaN quieted with its top
/// payload bits kept: bit-identical to F16C's VCVTPS2PH with round-to-nearest.
uint16_t floatToHalf(float f);
/// bfloat16 -> float (exact).
float bf16ToFloat(uint16_t b);
/// float -> bfloat16, round to nearest even, NaN quieted with its top payload bits kept.
uint16_t floatToBf16(float f);

/// The SIMD path in use: "avx512", "avx2" or "scalar".
const char* reduceIsaName();

namespace detail {
/// Forces a path ("avx512", "avx2", "scalar"; "auto" returns to TRELLIS_REDUCE_ISA's choice) for
/// tests and benchmarks; false (and no change) when the name is unknown or the CPU lacks the path.
/// Not thread-safe with respect to which path concurrent calls use (all give identical results).
bool setIsaForTesting(const char* name);
/// Array conversions through the current path (dt: trellisFloat16 or trellisBfloat16; other types
/// do nothing), to check the vector conversions against the scalar helpers bit for bit.
void lowpToFloat(float* dst, const uint16_t* src, size_t n, trellisDataType_t dt);
void floatToLowp(uint16_t* dst, const float* src, size_t n, trellisDataType_t dt);
}  // namespace detail

}  // namespace trellis::algos
