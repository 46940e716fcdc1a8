// Trellis' CUDA support as the rest of the library sees it, without any CUDA header: whether it was
// built in, whether a driver is usable here, what kind of memory a pointer is, and stream waits.
// With TRELLIS_WITH_CUDA=OFF (or no toolkit at build time) the same functions say "not built with
// CUDA" and treat every pointer as host memory (device_off.cc).
//
// A pointer's kind comes from the driver's pointer attributes (CU_POINTER_ATTRIBUTE_MEMORY_TYPE),
// never from whether the caller passed a stream. Trellis never initialises CUDA itself to answer:
// when no code in the process has called cuInit, no CUDA allocation can exist, so every pointer is
// host memory; a host-only program on a GPU machine therefore never touches the GPU (and may fork).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/status.h"

namespace trellis::cuda {

/// True when this library was built with CUDA support (TRELLIS_WITH_CUDA).
bool builtWithCuda();

/// OK when the CUDA driver is loaded and usable in this process; otherwise why not ("no CUDA driver:
/// dlopen(\"libcuda.so.1\") failed: ...", "has no symbol ...", "built without CUDA", "disabled by
/// TRELLIS_CUDA_DISABLE", "CUDA was initialised in the parent before fork()"). Never calls cuInit.
Status driverStatus();

/// False when no pointer of this process can be CUDA memory: no usable driver, or no code has
/// initialised CUDA yet. Cheap (no allocation; one driver call until CUDA is initialised), for the
/// host-buffer fast path.
bool mayHaveCudaMemory();

/// Where memory lives, as CUDA sees it.
enum class MemKind {
  kHost,      ///< not known to CUDA (pageable memory, or no driver, or CUDA not initialised)
  kCudaHost,  ///< host memory allocated or registered through CUDA (pinned)
  kDevice,    ///< device memory (cuMemAlloc, cudaMalloc, VMM mappings) or managed memory
};
/// "host", "cuda-host", "device".
const char* memKindName(MemKind kind);

/// A pointer's kind and, for CUDA memory, the allocation it lies in.
struct PointerInfo {
  MemKind kind = MemKind::kHost;
  uintptr_t rangeStart = 0;  ///< start of the allocation (CUDA memory only)
  size_t rangeSize = 0;      ///< its size in bytes (0: unknown)
  int device = -1;           ///< CUDA device ordinal of the allocation (-1: not CUDA memory)
};

/// What `p` points to. Without a usable driver, or before any cuInit in this process, every pointer
/// is kHost. Fails only when the driver rejects the query (the error names the pointer and result).
Result<PointerInfo> pointerInfo(const void* p);

/// Blocks until the work enqueued on `stream` (a CUstream; nullptr: the legacy default stream) so
/// far has completed.
Status streamSynchronize(void* stream);

/// Number of CUDA devices, calling cuInit (GPU tests and tools only: the library never does). Fails
/// with the driver's reason ("no CUDA driver: ...", "CUDA_ERROR_NO_DEVICE ...").
Result<int> deviceCount();

}  // namespace trellis::cuda
