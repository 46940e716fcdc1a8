// What the CUDA reduction kernels (reduce_kernels.cu, compiled by nvcc into the embedded fatbin) and
// their host launcher (reduce_launch.cc, compiled by the host compiler) share: the parameter block
// passed by value to every kernel, the block size, and the kernel names. Plain C++17 with no CUDA
// header, so both compilers read the same definitions.
//
// One kernel per (datatype, op): trellis_reduce_<type>_<op>, type in i8 u8 i32 u32 i64 u64 f16 f32
// f64 bf16, op in sum prod max min (Avg runs the sum kernel with a divisor). 40 kernels.
#pragma once

#include <stdint.h>

#include "trellis/trellis.h"

namespace trellis::cuda {

/// Most inputs one kernel launch combines (the parameter block holds this many pointers).
constexpr int kMaxReduceSrcs = 8;
/// Threads per block; the kernels are compiled with this as their launch bound.
constexpr int kReduceBlockThreads = 256;

/// The kernels' only argument (by value, 96 bytes): dst[i] = OP over j < k of src[j][i], in order
/// j = 0, 1, ...; then, when divisor > 1, dst[i] /= divisor as the host's divideInPlace does.
/// vec16 = 1 promises that dst and every src are 16-byte aligned (16-byte vector loads and stores).
struct ReduceParams {
  void* dst;
  const void* src[kMaxReduceSrcs];
  uint64_t n;       ///< elements
  int32_t k;        ///< inputs, 1..kMaxReduceSrcs
  int32_t divisor;  ///< > 1: divide the result (Avg's last step)
  int32_t vec16;    ///< 1: all pointers 16-byte aligned
  int32_t pad;
};

/// Kernel name suffix of each datatype, indexed by trellisDataType_t.
inline constexpr const char* kReduceTypeSuffix[trellisNumTypes] = {"i8",  "u8",  "i32", "u32", "i64",
                                                                   "u64", "f16", "f32", "f64", "bf16"};
/// Kernel name suffix of each op, indexed by trellisRedOp_t (Avg uses the sum kernel).
inline constexpr const char* kReduceOpSuffix[trellisNumOps] = {"sum", "prod", "max", "min", "sum"};
/// Kernels per datatype (sum, prod, max, min).
constexpr int kReduceKernelOps = 4;

}  // namespace trellis::cuda
