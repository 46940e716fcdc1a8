// The parts of the CUDA support that need no CUDA header and are built in every configuration:
// names and the reduction launcher's argument checks.
#include <algorithm>

#include "cuda/device.h"
#include "cuda/reduce_launch.h"

namespace trellis::cuda {

namespace {
// The cuda layer sits below algos, so it keeps its own copy of the element sizes and names.
size_t elemBytes(trellisDataType_t dt) {
  static const size_t kSizes[trellisNumTypes] = {1, 1, 4, 4, 8, 8, 2, 4, 8, 2};
  return static_cast<int>(dt) >= 0 && dt < trellisNumTypes ? kSizes[dt] : 0;
}
const char* typeName(trellisDataType_t dt) {
  static const char* kNames[trellisNumTypes] = {"int8",  "uint8",   "int32",   "uint32", "int64",
                                                "uint64", "float16", "float32", "float64", "bfloat16"};
  return static_cast<int>(dt) >= 0 && dt < trellisNumTypes ? kNames[dt] : "invalid";
}
}  // namespace

const char* memKindName(MemKind kind) {
  switch (kind) {
    case MemKind::kCudaHost:
      return "cuda-host";
    case MemKind::kDevice:
      return "device";
    default:
      return "host";
  }
}

std::string reduceKernelName(trellisDataType_t dt, trellisRedOp_t op) {
  const int d = static_cast<int>(dt), o = static_cast<int>(op);
  if (d < 0 || d >= trellisNumTypes || o < 0 || o >= trellisNumOps) return "";
  return std::string("trellis_reduce_") + kReduceTypeSuffix[d] + "_" + kReduceOpSuffix[o];
}

Status checkReduce(const DeviceReduce& r) {
  const int d = static_cast<int>(r.dtype), o = static_cast<int>(r.op);
  if (d < 0 || d >= trellisNumTypes) return invalidArgument("device reduce: datatype %d is not a trellisDataType_t", d);
  if (o < 0 || o >= trellisNumOps) return invalidArgument("device reduce: op %d is not a trellisRedOp_t", o);
  if (r.k < 1 || r.k > kMaxReduceSrcs)
    return invalidArgument("device reduce: %d inputs, must be 1..%d", r.k, kMaxReduceSrcs);
  if (r.divisor < 1) return invalidArgument("device reduce: divisor %d must be >= 1", r.divisor);
  const size_t es = elemBytes(r.dtype);
  if (r.count > SIZE_MAX / es) return invalidArgument("device reduce: %zu elements of %s overflow", r.count, typeName(r.dtype));
  if (r.count == 0) return Status::ok();
  auto misaligned = [&](const void* p) { return reinterpret_cast<uintptr_t>(p) % es != 0; };
  if (r.dst == nullptr) return invalidArgument("device reduce: dst is NULL with count %zu", r.count);
  if (misaligned(r.dst))
    return invalidArgument("device reduce: dst %p is not aligned to its %zu-byte %s elements", r.dst, es,
                           typeName(r.dtype));
  for (int j = 0; j < r.k; ++j) {
    if (r.srcs[j] == nullptr) return invalidArgument("device reduce: input %d of %d is NULL with count %zu", j, r.k, r.count);
    if (misaligned(r.srcs[j]))
      return invalidArgument("device reduce: input %d (%p) is not aligned to its %zu-byte %s elements", j, r.srcs[j],
                             es, typeName(r.dtype));
  }
  return Status::ok();
}

unsigned reduceGridBlocks(size_t count, trellisDataType_t dt, bool vec16, int sms) {
  const size_t es = std::max<size_t>(elemBytes(dt), 1);
  const size_t perThread = vec16 ? 16 / es : 1;
  const size_t threads = (count + perThread - 1) / perThread;
  const size_t blocks = (threads + kReduceBlockThreads - 1) / kReduceBlockThreads;
  const size_t cap = static_cast<size_t>(std::max(sms, 1)) * 8;
  return static_cast<unsigned>(std::clamp<size_t>(blocks, 1, cap));
}

}  // namespace trellis::cuda
