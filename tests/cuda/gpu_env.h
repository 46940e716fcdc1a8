// Helpers of the GPU tests and measurements (tests/cuda): open a device through Trellis' own
// dlopen'ed driver (no CUDA runtime), device buffers, and the "skipped: no CUDA device" rule.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "cuda/driver.h"

namespace trellis::cuda::testing {

/// "" when this machine has a usable CUDA device; otherwise the reason, for "skipped: no CUDA
/// device (<reason>)". Calls cuInit.
std::string noDeviceReason();

/// Exit code of a skipped program (ctest SKIP_RETURN_CODE).
constexpr int kSkipExit = 77;

/// The driver (aborts with a message when there is none: call noDeviceReason() first).
const Driver& drv();

/// Makes device `ordinal`'s primary context current on this thread. Returns "" or the error.
std::string useDevice(int ordinal);

/// "<what> failed: CUDA_ERROR_..." or "" when r == CUDA_SUCCESS.
std::string check(CUresult r, const char* what);

/// Device memory (cuMemAlloc), freed on destruction.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t bytes);
  ~DeviceBuffer();
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void* ptr() const { return reinterpret_cast<void*>(p_); }
  char* bytes() const { return reinterpret_cast<char*>(p_); }
  size_t size() const { return size_; }
  /// Synchronous copies (on the legacy default stream).
  void upload(const void* src, size_t n, size_t offset = 0);
  void download(void* dst, size_t n, size_t offset = 0) const;

 private:
  CUdeviceptr p_ = 0;
  size_t size_ = 0;
};

}  // namespace trellis::cuda::testing
