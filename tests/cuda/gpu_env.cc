#include "gpu_env.h"

#include <cstdio>
#include <cstdlib>

#include "cuda/device.h"

namespace trellis::cuda::testing {

std::string noDeviceReason() {
  Result<int> n = deviceCount();
  if (!n) return n.status().message();
  if (n.value() < 1) return "the driver reports 0 devices";
  return "";
}

const Driver& drv() {
  Result<const Driver*> d = driver();
  if (!d) {
    std::fprintf(stderr, "no CUDA driver: %s\n", d.status().message().c_str());
    std::abort();
  }
  return *d.value();
}

std::string check(CUresult r, const char* what) {
  if (r == CUDA_SUCCESS) return "";
  return std::string(what) + " failed: " + errorText(drv(), r);
}

std::string useDevice(int ordinal) {
  const Driver& d = drv();
  for (const void* fn : {reinterpret_cast<const void*>(d.cuDeviceGet), reinterpret_cast<const void*>(d.cuDevicePrimaryCtxRetain),
                         reinterpret_cast<const void*>(d.cuCtxSetCurrent)})
    if (fn == nullptr) return "the driver lacks cuDeviceGet/cuDevicePrimaryCtxRetain/cuCtxSetCurrent";
  if (std::string e = check(d.cuInit(0), "cuInit"); !e.empty()) return e;
  CUdevice dev = 0;
  if (std::string e = check(d.cuDeviceGet(&dev, ordinal), "cuDeviceGet"); !e.empty()) return e;
  CUcontext ctx = nullptr;
  if (std::string e = check(d.cuDevicePrimaryCtxRetain(&ctx, dev), "cuDevicePrimaryCtxRetain"); !e.empty()) return e;
  return check(d.cuCtxSetCurrent(ctx), "cuCtxSetCurrent");
}

DeviceBuffer::DeviceBuffer(size_t bytes) : size_(bytes) {
  CUresult r = drv().cuMemAlloc(&p_, bytes == 0 ? 1 : bytes);
  if (r != CUDA_SUCCESS) {
    std::fprintf(stderr, "cuMemAlloc(%zu): %s\n", bytes, errorText(drv(), r).c_str());
    std::abort();
  }
}

DeviceBuffer::~DeviceBuffer() {
  if (p_ != 0) drv().cuMemFree(p_);
}

void DeviceBuffer::upload(const void* src, size_t n, size_t offset) {
  if (n == 0) return;
  CUresult r = drv().cuMemcpyHtoD(p_ + offset, src, n);
  if (r != CUDA_SUCCESS) {
    std::fprintf(stderr, "cuMemcpyHtoD(%zu): %s\n", n, errorText(drv(), r).c_str());
    std::abort();
  }
}

void DeviceBuffer::download(void* dst, size_t n, size_t offset) const {
  if (n == 0) return;
  CUresult r = drv().cuMemcpyDtoH(dst, p_ + offset, n);
  if (r != CUDA_SUCCESS) {
    std::fprintf(stderr, "cuMemcpyDtoH(%zu): %s\n", n, errorText(drv(), r).c_str());
    std::abort();
  }
}

}  // namespace trellis::cuda::testing
