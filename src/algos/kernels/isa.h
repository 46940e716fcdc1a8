// Internal: one table of kernel entry points per SIMD path. The loops are written once in
// kernels_impl.inc and compiled three times in isa_kernels.cc, each time inside functions carrying
// a different __attribute__((target(...))); reduce.cc picks one table at run time.
#pragma once

#include <cstddef>
#include <cstdint>

#include "trellis/trellis.h"

namespace trellis::algos {

struct KernelTable {
  const char* name;  // "scalar", "avx2", "avx512"
  void (*reduce2)(void* dst, const void* a, const void* b, size_t n, trellisDataType_t dt,
                  trellisRedOp_t op);
  void (*reduceMany)(void* dst, const void* const* srcs, int k, size_t n, trellisDataType_t dt,
                     trellisRedOp_t op);
  void (*divide)(void* dst, size_t n, trellisDataType_t dt, int divisor);  // divisor >= 2
  // float16/bfloat16 arrays <-> float arrays (dt selects which), bit-identical across tables.
  void (*widen)(float* dst, const uint16_t* src, size_t n, trellisDataType_t dt);
  void (*narrow)(uint16_t* dst, const float* src, size_t n, trellisDataType_t dt);
};

/// Baseline x86-64 (SSE2, what the compiler vectorises without flags; software float16).
const KernelTable& scalarKernels();
/// AVX2 + FMA + F16C.
const KernelTable& avx2Kernels();
/// AVX-512 F/BW/VL/DQ + F16C, 512-bit vectors.
const KernelTable& avx512Kernels();

}  // namespace trellis::algos
