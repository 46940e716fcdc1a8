// cuda/device.h over the dlopen'ed driver (builds with TRELLIS_WITH_CUDA).
#include "cuda/device.h"

#include "core/log.h"
#include "cuda/driver.h"

namespace trellis::cuda {

bool builtWithCuda() { return true; }

Status driverStatus() { return driver().status(); }

bool mayHaveCudaMemory() {
  const Driver* d = usableDriver();
  return d != nullptr && cudaInitialized(*d);
}

Result<PointerInfo> pointerInfo(const void* p) {
  PointerInfo info;
  const Driver* dp = usableDriver();
  if (dp == nullptr || p == nullptr) return info;
  const Driver& d = *dp;
  if (!cudaInitialized(d)) return info;
  unsigned int memType = 0, managed = 0;
  int ordinal = -1;
  CUdeviceptr start = 0;
  size_t size = 0;
  CUpointer_attribute attrs[] = {CU_POINTER_ATTRIBUTE_MEMORY_TYPE, CU_POINTER_ATTRIBUTE_IS_MANAGED,
                                 CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, CU_POINTER_ATTRIBUTE_RANGE_START_ADDR,
                                 CU_POINTER_ATTRIBUTE_RANGE_SIZE};
  void* data[] = {&memType, &managed, &ordinal, &start, &size};
  // Unlike cuPointerGetAttribute, this succeeds for memory CUDA does not know (attributes zeroed).
  CUresult r = d.cuPointerGetAttributes(5, attrs, data, reinterpret_cast<CUdeviceptr>(p));
  // The documentation allows these two for memory no CUDA context knows: host memory.
  if (r == CUDA_ERROR_INVALID_VALUE || r == CUDA_ERROR_INVALID_CONTEXT) {
    TRELLIS_TRACE(kCuda, "cuPointerGetAttributes(%p): %s: host memory", p, errorText(d, r).c_str());
    return info;
  }
  if (r != CUDA_SUCCESS) return cuError(d, r, formatString("cuPointerGetAttributes(%p)", p));
  if (managed != 0 || memType == CU_MEMORYTYPE_DEVICE || memType == CU_MEMORYTYPE_ARRAY ||
      memType == CU_MEMORYTYPE_UNIFIED)
    info.kind = MemKind::kDevice;
  else if (memType == CU_MEMORYTYPE_HOST)
    info.kind = MemKind::kCudaHost;
  else
    return info;  // not CUDA memory: the attributes carry nothing
  info.rangeStart = static_cast<uintptr_t>(start);
  info.rangeSize = size;
  info.device = ordinal;
  return info;
}

Status streamSynchronize(void* stream) {
  TRELLIS_ASSIGN_OR_RETURN(const Driver* d, driver());
  CUresult r = d->cuStreamSynchronize(static_cast<CUstream>(stream));
  if (r != CUDA_SUCCESS) return cuError(*d, r, formatString("cuStreamSynchronize(stream %p)", stream));
  return Status::ok();
}

Result<int> deviceCount() {
  TRELLIS_ASSIGN_OR_RETURN(const Driver* d, driver());
  TRELLIS_TRY(requireOptional(reinterpret_cast<const void*>(d->cuDeviceGetCount), "cuDeviceGetCount", *d));
  CUresult r = d->cuInit(0);
  if (r != CUDA_SUCCESS) return cuError(*d, r, "cuInit");
  int n = 0;
  r = d->cuDeviceGetCount(&n);
  if (r != CUDA_SUCCESS) return cuError(*d, r, "cuDeviceGetCount");
  return n;
}

}  // namespace trellis::cuda
