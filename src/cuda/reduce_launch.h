// Host-side launcher of the CUDA reduction kernels (reduce_kernels.cu): argument checks, the
// per-context module of the embedded fatbin, grid sizing, cuLaunchKernel. CUDA-free header: a
// stream is passed as void* (a CUstream).
#pragma once

#include <cstddef>
#include <string>

#include "core/status.h"
#include "cuda/reduce_kernels.h"
#include "trellis/trellis.h"

namespace trellis::cuda {

/// One reduction of device buffers: dst[i] = OP over j < k of srcs[j][i] (applied in order j = 0,
/// 1, ...), then dst[i] /= divisor when divisor > 1 (Avg's last step). The host kernels' semantics
/// (src/algos/kernels/reduce.h): Avg alone behaves as Sum. dst may alias srcs[0] exactly.
struct DeviceReduce {
  void* dst = nullptr;
  const void* srcs[kMaxReduceSrcs] = {};
  int k = 0;
  size_t count = 0;  ///< elements
  trellisDataType_t dtype = trellisFloat32;
  trellisRedOp_t op = trellisSum;
  int divisor = 1;
};

/// The checks launchReduce makes before touching the GPU: k in [1, kMaxReduceSrcs], a valid
/// datatype and op, divisor >= 1, non-null element-aligned pointers when count > 0, and a byte size
/// that fits. Messages name the bad value.
Status checkReduce(const DeviceReduce& r);

/// "trellis_reduce_f32_sum" for (trellisFloat32, trellisSum); Avg maps to the sum kernel; "" for an
/// invalid datatype or op.
std::string reduceKernelName(trellisDataType_t dt, trellisRedOp_t op);

/// Enqueues the reduction on `stream` (a CUstream of the current or another context; nullptr: the
/// legacy default stream of the current context) and returns without waiting. count == 0 does
/// nothing. Loads the kernels into the stream's context on first use.
Status launchReduce(const DeviceReduce& r, void* stream);

/// Blocks of kReduceBlockThreads launchReduce uses for `count` elements of `dt` on a GPU with `sms`
/// multiprocessors (at most 8 resident blocks per SM, at least 1).
unsigned reduceGridBlocks(size_t count, trellisDataType_t dt, bool vec16, int sms);

}  // namespace trellis::cuda
