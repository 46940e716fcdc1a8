// The CUDA driver API, loaded at run time with dlopen (libcuda.so.1, or TRELLIS_CUDA_LIBRARY), so
// that libtrellis.so has no link-time dependency on any NVIDIA library and loads where no driver is
// installed. Internal to src/cuda and the GPU tests: it includes <cuda.h>, which only builds with
// TRELLIS_WITH_CUDA. The rest of Trellis uses the CUDA-free interface in cuda/device.h.
//
// Entry points are declared with the toolkit header's own types and resolved by the versioned names
// the header maps them to (cuMemcpyDtoHAsync -> "cuMemcpyDtoHAsync_v2"), so every call is checked by
// the compiler against the real prototype and reaches the ABI version that prototype describes.
#pragma once

#include <cuda.h>

#include <string>

#include "core/status.h"

namespace trellis::cuda {

// What the library itself calls: a driver that lacks one of these is reported as unusable.
#define TRELLIS_CUDA_REQUIRED(X)                                                                    \
  X(cuGetErrorString)                                                                              \
  X(cuGetErrorName) X(cuInit) X(cuDriverGetVersion) X(cuCtxGetCurrent) X(cuCtxPushCurrent)          \
  X(cuCtxPopCurrent) X(cuCtxGetDevice) X(cuDeviceGetAttribute) X(cuPointerGetAttributes)            \
  X(cuStreamGetCtx) X(cuStreamSynchronize) X(cuStreamIsCapturing)                                   \
  X(cuThreadExchangeStreamCaptureMode) X(cuMemcpyDtoHAsync) X(cuMemcpyHtoDAsync) X(cuMemHostAlloc) \
  X(cuMemFreeHost) X(cuMemHostGetDevicePointer) X(cuLaunchHostFunc) X(cuStreamWaitValue32)         \
  X(cuModuleLoadData) X(cuModuleUnload) X(cuModuleGetFunction) X(cuLaunchKernel)

// What only the GPU tests and measurements call: resolved when present, null otherwise (the caller
// names the missing one through requireOptional).
#define TRELLIS_CUDA_OPTIONAL(X)                                                                   \
  X(cuDeviceGet)                                                                                   \
  X(cuDeviceGetCount) X(cuDeviceGetName) X(cuDevicePrimaryCtxRetain) X(cuDevicePrimaryCtxRelease) \
  X(cuCtxSetCurrent) X(cuCtxSynchronize) X(cuMemAlloc) X(cuMemFree) X(cuMemcpyHtoD)               \
  X(cuMemcpyDtoH) X(cuMemcpyDtoDAsync) X(cuMemsetD8Async) X(cuStreamCreate) X(cuStreamDestroy)     \
  X(cuStreamBeginCapture) X(cuStreamEndCapture) X(cuGraphInstantiateWithFlags) X(cuGraphLaunch)   \
  X(cuGraphExecDestroy) X(cuGraphDestroy) X(cuEventCreate) X(cuEventRecord)                       \
  X(cuEventSynchronize) X(cuEventElapsedTime) X(cuEventDestroy) X(cuStreamWaitEvent) X(cuMemAllocHost)

/// The resolved entry points (members carry the header's versioned names: d.cuMemAlloc expands to
/// d.cuMemAlloc_v2, like the call it replaces).
struct Driver {
#define TRELLIS_CUDA_MEMBER(fn) decltype(&::fn) fn = nullptr;
  TRELLIS_CUDA_REQUIRED(TRELLIS_CUDA_MEMBER)
  TRELLIS_CUDA_OPTIONAL(TRELLIS_CUDA_MEMBER)
#undef TRELLIS_CUDA_MEMBER
  std::string library;  ///< what was dlopen'ed
  int version = 0;      ///< cuDriverGetVersion: 1000 * major + 10 * minor
  void* handle = nullptr;
};

/// The process's driver, loaded on first use (dlopen + every required symbol; never cuInit). The
/// error names the library and dlerror's reason, or the first missing symbol. After fork() in a
/// process where CUDA was initialised it reports that the child cannot use CUDA.
Result<const Driver*> driver();

/// driver() without the reason: null when the driver is not usable (no allocation; the per-call
/// check of the host-buffer path).
const Driver* usableDriver();

/// True when some code in this process has called cuInit (CUDA memory can exist only then). Does
/// not initialise CUDA itself.
bool cudaInitialized(const Driver& d);

/// "CUDA_ERROR_INVALID_VALUE (invalid argument)".
std::string errorText(const Driver& d, CUresult r);

/// A kCudaError Status: "<what>: CUDA_ERROR_... (text)".
Status cuError(const Driver& d, CUresult r, const std::string& what);

/// Fails naming `name` when an optional entry point (tests, measurements) is missing.
Status requireOptional(const void* fn, const char* name, const Driver& d);

/// Makes `ctx` current on this thread for the guard's lifetime (when it is not already).
class ScopedContext {
 public:
  ScopedContext(const Driver& d, CUcontext ctx);
  ~ScopedContext();
  ScopedContext(const ScopedContext&) = delete;
  ScopedContext& operator=(const ScopedContext&) = delete;
  Status status() const { return status_; }

 private:
  const Driver& d_;
  bool pushed_ = false;
  Status status_;
};

/// Switches this thread to relaxed stream-capture mode for the guard's lifetime, so that the pinned
/// allocations Trellis makes while some stream captures a CUDA graph do not invalidate the capture.
class RelaxedCapture {
 public:
  explicit RelaxedCapture(const Driver& d);
  ~RelaxedCapture();
  RelaxedCapture(const RelaxedCapture&) = delete;
  RelaxedCapture& operator=(const RelaxedCapture&) = delete;

 private:
  const Driver& d_;
  CUstreamCaptureMode saved_ = CU_STREAM_CAPTURE_MODE_RELAXED;
  bool ok_ = false;
};

namespace detail {
/// Loads the driver from `library` into a new table (tests: a missing library, a library without
/// the symbols). Does not touch the process's driver().
Result<Driver*> loadDriver(const std::string& library);
}  // namespace detail

}  // namespace trellis::cuda
