// Cross-checks the plugin's own ABI declarations (plugins/nccl-net/abi/nccl_abi.h) against the NCCL
// headers installed with CUDA, for everything those headers declare: ncclResult_t values, the
// net device types and the device-handle layout (nccl_device/net_device.h). The struct layouts
// NCCL installs no header for (ncclNet_vN_t, properties, tuner) are pinned by static_asserts in
// nccl_abi.h itself. This file is only built when the headers are found; it checks at compile time.
#include <nccl.h>
#include <nccl_device/net_device.h>

#include <cstddef>
#include <cstdio>

#include "abi/nccl_abi.h"

namespace a = trellis::nccl_abi;

static_assert(static_cast<int>(ncclSuccess) == a::kSuccess);
static_assert(static_cast<int>(ncclUnhandledCudaError) == a::kUnhandledCudaError);
static_assert(static_cast<int>(ncclSystemError) == a::kSystemError);
static_assert(static_cast<int>(ncclInternalError) == a::kInternalError);
static_assert(static_cast<int>(ncclInvalidArgument) == a::kInvalidArgument);
static_assert(static_cast<int>(ncclInvalidUsage) == a::kInvalidUsage);
static_assert(static_cast<int>(ncclRemoteError) == a::kRemoteError);
static_assert(static_cast<int>(ncclInProgress) == a::kInProgress);
static_assert(sizeof(ncclResult_t) == sizeof(a::Result));

static_assert(static_cast<int>(NCCL_NET_DEVICE_HOST) == a::kDeviceHost);
static_assert(static_cast<int>(NCCL_NET_DEVICE_UNPACK) == a::kDeviceUnpack);
static_assert(static_cast<int>(NCCL_NET_DEVICE_GIN_PROXY) == a::kDeviceGinProxy);
static_assert(static_cast<int>(NCCL_NET_DEVICE_GIN_GDAKI) == a::kDeviceGinGdaki);
static_assert(sizeof(ncclNetDeviceType) == sizeof(a::NetDeviceType));

static_assert(sizeof(ncclNetDeviceHandle_v11_t) == sizeof(a::NetDeviceHandle));
static_assert(offsetof(ncclNetDeviceHandle_v11_t, netDeviceType) ==
              offsetof(a::NetDeviceHandle, netDeviceType));
static_assert(offsetof(ncclNetDeviceHandle_v11_t, netDeviceVersion) ==
              offsetof(a::NetDeviceHandle, netDeviceVersion));
static_assert(offsetof(ncclNetDeviceHandle_v11_t, handle) == offsetof(a::NetDeviceHandle, handle));
static_assert(offsetof(ncclNetDeviceHandle_v11_t, size) == offsetof(a::NetDeviceHandle, size));
static_assert(offsetof(ncclNetDeviceHandle_v11_t, needsProxyProgress) ==
              offsetof(a::NetDeviceHandle, needsProxyProgress));
static_assert(sizeof(ncclNetDeviceHandle_v7_t) == sizeof(a::NetDeviceHandle));

int main() {
  std::printf(
      "ABI cross-check against nccl.h %d (NCCL_VERSION_CODE) compiled: results, device types and "
      "the "
      "device handle match\n",
      NCCL_VERSION_CODE);
  return 0;
}
